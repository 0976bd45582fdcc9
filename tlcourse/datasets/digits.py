"""scikit-learn's 1,797 handwritten digits (8x8), natively or in MNIST's 28x28 geometry.

The images come from the UCI "Optical Recognition of Handwritten Digits" set: 32x32
bitmaps of 43 writers, reduced to 8x8 counts of 0..16 set pixels. They are scaled to
[0, 1] by ``x / 16``.

With ``size=28`` each digit is laid out the way MNIST was made (LeCun et al.): the 8x8
image (already size-normalized by UCI's preprocessing) is enlarged to 20x20 (cubic
spline) and placed in a 28x28 frame so that its centre of mass sits at the frame's centre
(:mod:`tlcourse.datasets.geometry`). The result looks like
MNIST at a glance but differs in stroke width, blur and writers — a shifted domain for
MNIST -> digits adaptation, like the classic MNIST -> USPS.

>>> ds = load_digits(size=28, seed=0)   # doctest: +SKIP
>>> ds.x_train.shape                      # doctest: +SKIP
(1437, 28, 28)
"""

from __future__ import annotations

import numpy as np

from tlcourse.datasets.base import ImageSet, make_imageset
from tlcourse.datasets.cache import cached
from tlcourse.datasets.geometry import centre_by_mass
from tlcourse.datasets.sampling import stratified_split

SIZES = (8, 28)
RECIPE_VERSION = 1


def mnist_geometry(images: np.ndarray, box: int = 20, frame: int = 28) -> np.ndarray:
    """Enlarge grey images ``(N, h, w)`` in [0, 1] into a ``box`` and centre them by mass.

    Each image is enlarged (cubic spline) so that its longer side is ``box`` and placed
    with its centre of mass at the centre of a ``frame x frame`` image.

    >>> out = mnist_geometry(np.ones((1, 8, 8)))
    >>> out.shape, round(float(out[0, 14, 14]), 2), float(out[0, 0, 0])
    ((1, 28, 28), 0.99, 0.0)
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 3:
        raise ValueError(f"expected grey images (N, h, w), got shape {images.shape}")
    if box > frame:
        raise ValueError(f"box ({box}) must fit in the frame ({frame})")
    from scipy import ndimage

    zoom = box / max(images.shape[1:])
    big = ndimage.zoom(images, (1, zoom, zoom), order=3, grid_mode=True, mode="grid-constant")
    return np.stack([centre_by_mass(img, frame) for img in np.clip(big, 0.0, 1.0)])


def _build(size: int) -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = bunch.images / 16.0
    if size == 28:
        x = mnist_geometry(x)
    return {"images": x.astype(np.float32), "labels": bunch.target.astype(np.int64)}


def load_digits(seed: int = 0, size: int = 8, n_train: int | None = None, n_test: int = 360) -> ImageSet:
    """The 1,797 digits, float32 in [0, 1]: ``(N, 8, 8)``, or ``(N, 28, 28)`` with ``size=28``.

    A stratified, seed-shuffled split: ``n_test`` test images, ``n_train`` training images
    (all the rest by default). The images are cached on first use (importing
    scikit-learn takes a few seconds).
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES} (8: native, 28: MNIST geometry), got {size!r}")
    arrays, cache = cached("digits", RECIPE_VERSION, {"size": size}, lambda: _build(size), quiet=True)
    y = arrays["labels"]
    train, test = stratified_split(y, n_test=n_test, n_train=n_train, seed=seed)
    return make_imageset("digits", arrays["images"], y, train, test,
                         extra={"seed": seed, "size": size, **cache})
