"""Datasets cut from the photographs that scikit-image and scikit-learn ship.

``textures`` — a new image task for an ImageNet-pretrained network: square patches of
eight texture-like photographs (:data:`TEXTURE_PHOTOS`), resized to ``size`` pixels
(96 by default; 224 works, but the default 640 patches then take 385 MB as float32 —
ask for fewer with ``train_per_class``/``test_per_class`` on a small machine). No leakage between
train and test: each photograph is cut in two along its longer side — the first
:data:`TRAIN_SHARE` (70%) is the *training region*, the rest the *test region* — and a
patch lies wholly inside one region, so no training pixel appears in a test patch.
A patch is a random square of 48–96 photo pixels (so the scale varies), randomly
mirrored and transposed, then resized (anti-aliased) to ``size``. Grey photographs are
repeated over three channels, so every patch is ``(size, size, 3)``.

``faces`` — ``skimage.data.lfw_subset()``: 100 faces cropped from Labeled Faces in the
Wild and 100 non-face patches of the same photos' backgrounds, 25x25 grey; class 1 is
"face".

>>> ds = load_textures(seed=0)                      # doctest: +SKIP
>>> ds.x_train.shape, ds.classes[:3]                 # doctest: +SKIP
((480, 96, 96, 3), ['brick', 'grass', 'gravel'])
"""

from __future__ import annotations

import numpy as np

from tlcourse.datasets.base import ImageSet, make_imageset
from tlcourse.datasets.cache import cached
from tlcourse.datasets.sampling import stratified_split

RECIPE_VERSION = 1
TRAIN_SHARE = 0.7
PATCH_PIXELS = (48, 96)
TEXTURE_PHOTOS = {
    "brick": "brick",
    "grass": "grass",
    "gravel": "gravel",
    "moon": "moon",
    "text": "page",
    "stars": "hubble_deep_field",
    "tissue": "immunohistochemistry",
    "retina": "retina",
}
"""Class name -> bundled photograph (``skimage.data`` function name)."""

_CROPS = {"retina": (0.2, 0.8)}  # the square inside the eye's disc (the corners are black)


def load_photo(name: str) -> np.ndarray:
    """A bundled photograph as float ``(H, W, 3)`` in [0, 1]: a ``skimage.data`` image
    (grey ones repeated over 3 channels; ``retina`` cut to the inside of the disc) or
    ``china``/``flower`` from scikit-learn."""
    import skimage.data

    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        img = load_sample_image(f"{name}.jpg")
    else:
        loader = getattr(skimage.data, name, None)
        if loader is None or not callable(loader):
            raise ValueError(f"skimage.data has no image {name!r}")
        img = loader()
    img = np.asarray(img, dtype=np.float64) / 255.0
    if name in _CROPS:
        lo, hi = _CROPS[name]
        h, w = img.shape[:2]
        img = img[int(lo * h) : int(hi * h), int(lo * w) : int(hi * w)]
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return img[..., :3]


def split_regions(shape: tuple[int, ...], share: float = TRAIN_SHARE):
    """``(train, test)`` regions of an image as ``(row_slice, col_slice)``: the image is
    cut across its longer side, the first ``share`` for training.

    >>> split_regions((100, 200))
    ((slice(0, 100, None), slice(0, 140, None)), (slice(0, 100, None), slice(140, 200, None)))
    """
    h, w = shape[:2]
    if w >= h:
        cut = int(round(w * share))
        return (slice(0, h), slice(0, cut)), (slice(0, h), slice(cut, w))
    cut = int(round(h * share))
    return (slice(0, cut), slice(0, w)), (slice(cut, h), slice(0, w))


def random_patch(region: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random square of ``PATCH_PIXELS`` photo pixels inside ``region``, randomly
    mirrored/transposed, resized to ``size x size``."""
    from skimage.transform import resize

    h, w = region.shape[:2]
    side = int(rng.integers(PATCH_PIXELS[0], min(PATCH_PIXELS[1], h, w) + 1))
    top = int(rng.integers(h - side + 1))
    left = int(rng.integers(w - side + 1))
    patch = region[top : top + side, left : left + side]
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    if rng.random() < 0.5:
        patch = patch.transpose(1, 0, 2)
    return resize(patch, (size, size), order=1, anti_aliasing=side > size)


def _build_textures(seed: int, size: int, train_per_class: int, test_per_class: int):
    rng = np.random.default_rng([RECIPE_VERSION, seed])
    images, labels, is_test = [], [], []
    for label, photo in enumerate(TEXTURE_PHOTOS.values()):
        img = load_photo(photo)
        for test, n in ((False, train_per_class), (True, test_per_class)):
            region = img[split_regions(img.shape)[int(test)]]
            images += [random_patch(region, size, rng) for _ in range(n)]
            labels += [label] * n
            is_test += [test] * n
    pixels = np.rint(np.clip(np.stack(images), 0.0, 1.0) * 255).astype(np.uint8)
    return {"images": pixels, "labels": np.array(labels, dtype=np.int64), "is_test": np.array(is_test)}


def _whole(value, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be a whole number >= {low}, got {value!r}")
    return int(value)


def load_textures(
    seed: int = 0, size: int = 96, train_per_class: int = 60, test_per_class: int = 20
) -> ImageSet:
    """Texture patches, float32 ``(N, size, size, 3)`` in [0, 1], 8 classes (see module docs).

    Training patches come from the training region of each photo (the first
    ``TRAIN_SHARE`` of its longer side, :func:`split_regions`), test patches from the rest.
    ``extra["photos"]`` maps each class to its photograph.
    """
    size = _whole(size, "size", 16)
    params = {"seed": int(seed), "size": size,
              "train_per_class": _whole(train_per_class, "train_per_class", 1),
              "test_per_class": _whole(test_per_class, "test_per_class", 1)}
    arrays, cache = cached("textures", RECIPE_VERSION, params,
                           lambda: _build_textures(int(seed), size, int(train_per_class), int(test_per_class)))
    rng = np.random.default_rng(seed)
    train = rng.permutation(np.flatnonzero(~arrays["is_test"]))
    test = rng.permutation(np.flatnonzero(arrays["is_test"]))
    x = arrays["images"].astype(np.float32) / np.float32(255.0)
    extra = {"seed": seed, "photos": dict(TEXTURE_PHOTOS), "train_share": TRAIN_SHARE,
             "split": f"train patches lie in the first {TRAIN_SHARE:.0%} of each photo's longer "
                      "side, test patches in the rest: no pixel is in both", **cache}
    return make_imageset("textures", x, arrays["labels"], train, test, extra=extra)


def load_faces(seed: int = 0, n_test: int = 50) -> ImageSet:
    """``lfw_subset``: 200 grey 25x25 crops, float32 in [0, 1]; 1 = face, 0 = non-face.

    A stratified, seed-shuffled split with ``n_test`` test images.
    """
    import skimage.data

    images = np.asarray(skimage.data.lfw_subset(), dtype=np.float32)
    labels = np.r_[np.ones(100, np.int64), np.zeros(100, np.int64)]  # faces come first
    train, test = stratified_split(labels, n_test=n_test, seed=seed)
    return make_imageset("faces", np.clip(images, 0.0, 1.0), labels, train, test, extra={"seed": seed})
