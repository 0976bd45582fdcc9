"""MNIST-M-style digits: MNIST strokes blended over colour patches of bundled photographs.

Ganin & Lempitsky (2015, "Unsupervised domain adaptation by backpropagation") built
MNIST-M by blending each MNIST digit over a random patch of a BSDS500 photo:

    out[i, j, c] = | patch[i, j, c] - digit[i, j] |      (all in [0, 1])

so the strokes invert the colours of the patch beneath them. tlcourse follows the same
recipe with the photographs that scikit-image and scikit-learn ship (:data:`PHOTOS`),
each first shrunk so that its shorter side is :data:`PHOTO_SIDE` pixels, and patches
that are randomly placed 28x28 crops, randomly mirrored. Every one of the 5,000 MNIST-5k
digits gets a patch; ``load_mnist_m(seed)`` uses the same train/test split as
``load_mnist(seed)``, so its test set holds the same digits on new backgrounds.

The images are built once per seed (a few seconds) and cached as uint8 in
``tlcourse.paths.subdir("data")``; the cache key holds :data:`RECIPE_VERSION` and the seed.

>>> ds = load_mnist_m(seed=0)          # doctest: +SKIP
>>> ds.x_train.shape, ds.x_train.dtype  # doctest: +SKIP
((4000, 28, 28, 3), dtype('float32'))
"""

from __future__ import annotations

import numpy as np

from tlcourse.datasets.base import ImageSet, make_imageset
from tlcourse.datasets.cache import cached
from tlcourse.datasets.mnist import mnist_raw, split_indices
from tlcourse.datasets.photos import load_photo

RECIPE_VERSION = 1
PHOTO_SIDE = 200
PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "retina",
    "china", "flower",
)
"""Colour photographs: names of ``skimage.data`` functions, and ``china``/``flower``
(``sklearn.datasets.load_sample_images``)."""


def _shrunk(img: np.ndarray, side: int) -> np.ndarray:
    from skimage.transform import rescale

    factor = side / min(img.shape[:2])
    return np.clip(rescale(img, factor, channel_axis=2, anti_aliasing=True, order=1), 0, 1)


def blend(digits: np.ndarray, patches: np.ndarray) -> np.ndarray:
    """Ganin & Lempitsky's blend ``|patch - digit|``: digits ``(N, H, W)``, patches ``(N, H, W, 3)``.

    >>> blend(np.array([[[1.0]]]), np.array([[[[0.2, 0.5, 1.0]]]])).round(2).tolist()
    [[[[0.8, 0.5, 0.0]]]]
    """
    digits = np.asarray(digits, dtype=np.float64)
    patches = np.asarray(patches, dtype=np.float64)
    if patches.shape != (*digits.shape, 3):
        raise ValueError(f"patches must have shape {(*digits.shape, 3)} to match the digits, got {patches.shape}")
    return np.abs(patches - digits[..., None])


def random_patches(n: int, rng: np.random.Generator, size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random ``size x size`` colour crops of :data:`PHOTOS` (mirrored at random) and
    the index of the photo each came from."""
    photos = [_shrunk(load_photo(p), PHOTO_SIDE) for p in PHOTOS]
    which = rng.integers(len(photos), size=n)
    out = np.empty((n, size, size, 3))
    for i, p in enumerate(which):
        img = photos[p]
        top = rng.integers(img.shape[0] - size + 1)
        left = rng.integers(img.shape[1] - size + 1)
        patch = img[top : top + size, left : left + size]
        out[i] = patch[:, ::-1] if rng.random() < 0.5 else patch
    return out, which


def _build(seed: int) -> dict[str, np.ndarray]:
    digits, labels = mnist_raw()
    rng = np.random.default_rng([RECIPE_VERSION, seed])
    patches, which = random_patches(len(digits), rng)
    images = blend(digits / 255.0, patches)
    return {"images": np.rint(images * 255).astype(np.uint8), "labels": labels, "photo": which}


def load_mnist_m(seed: int = 0, n_train: int = 4000, n_test: int = 1000) -> ImageSet:
    """MNIST-M-style digits, float32 ``(N, 28, 28, 3)`` in [0, 1]; same split as ``mnist``.

    ``extra["photo"]`` names the photograph behind each training and test image.
    """
    arrays, cache = cached("mnist-m", RECIPE_VERSION, {"seed": int(seed)}, lambda: _build(seed))
    labels = arrays["labels"]
    train, test = split_indices(labels, seed, n_train, n_test)
    x = arrays["images"].astype(np.float32) / np.float32(255.0)
    photo = np.asarray(PHOTOS)[arrays["photo"]]
    extra = {"seed": seed, "photo_train": photo[train], "photo_test": photo[test], **cache}
    return make_imageset("mnist-m", x, labels, train, test, extra=extra)
