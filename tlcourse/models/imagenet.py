"""ImageNet-1k, framework-neutral: the input pipeline of EfficientNet-Lite, class names, decoding.

Used by both :mod:`tlcourse.models.efficientnet_torch` and :mod:`tlcourse.models.efficientnet_tf`
(NumPy and scikit-image only; no framework is imported).

Preprocessing (:func:`preprocess`)
----------------------------------
The EfficientNet-Lite weights were trained by Google (``tensorflow/tpu``, ``efficientnet/lite``)
with the evaluation pipeline

1. centre-crop a square of side ``0.875 · min(H, W)`` (``224 / (224 + 32)``, "crop padding 32"),
2. resize it to 224 × 224 (we use bilinear interpolation with anti-aliasing),
3. normalize every channel with the *Inception-style* constants, not the usual ImageNet ones::

       x_normalized = (x_uint8 - 127) / 128          # values in [-0.99, 1.0]

   (the Lite models use these for better post-quantization accuracy).

Checked on this network: with ``(x - 127) / 128`` the stem's BatchNorm sees activations whose
per-channel variance matches its running variance (rms log-ratio 0.61 over the bundled photos,
against 1.78 with the ImageNet mean/std ``(0.485, 0.456, 0.406) / (0.229, 0.224, 0.225)`` and
1.39 with ``x / 255``), and its predictions are more confident on the photos it should know
(``skimage.data.coffee()``: espresso 0.95 against 0.78).

Class names (:func:`class_names`)
---------------------------------
``tlcourse/data/imagenet_classes.txt`` holds the 1,000 ILSVRC-2012 classes, one per line, in
the standard class-index order (WordNet ids sorted): ``<wnid> TAB <WordNet lemmas>``, e.g. line
282 is ``n02123045	tabby, tabby cat`` (class 281). Provenance: extracted from the PyPI wheel
``timm-1.0.31-py3-none-any.whl`` (sha256 ``5bd50f7d…b617c7``), files
``timm/data/_info/imagenet_synsets.txt`` (the 1,000 wnids in order) and
``timm/data/_info/imagenet_synset_to_lemma.txt`` (their WordNet lemmas), joined by wnid.
Licence: timm is Apache-2.0; the lemmas are WordNet 3.0's (Princeton WordNet licence,
permissive, attribution). The short name used by :func:`decode` is the first lemma
(``"tabby"``); two short names repeat, as in ImageNet itself: ``crane`` (bird 134, machine 517)
and ``maillot`` (638, 639).

Example
-------
>>> import numpy as np
>>> x = preprocess(np.zeros((300, 400, 3), np.uint8))
>>> x.shape, x.dtype, float(x.min())
((1, 224, 224, 3), dtype('float32'), -0.9921875)
>>> logits = np.zeros(1000); logits[285] = 5.0
>>> [(i, name, round(p, 4)) for i, name, p in decode(logits, k=1)]
[(285, 'Egyptian cat', 0.1293)]
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

IMAGE_SIZE = 224
"""EfficientNet-Lite0's input resolution."""
CROP_FRACTION = 0.875
"""Side of the centre crop as a fraction of the shorter image side (224 / 256)."""
MEAN = 127.0
"""Subtracted from every channel of a 0–255 image."""
STD = 128.0
"""Divides every channel after the mean is subtracted."""
NUM_CLASSES = 1000

_CLASSES_FILE = Path(__file__).resolve().parent.parent / "data" / "imagenet_classes.txt"
_LAYOUTS = ("NHWC", "NCHW")
_CHUNK = 64  # images resized at once: bounds the float64 scratch memory of the resize


@lru_cache(maxsize=1)
def _class_table() -> tuple[tuple[str, str], ...]:
    rows = []
    for line in _CLASSES_FILE.read_text(encoding="utf-8").splitlines():
        wnid, lemmas = line.split("\t", 1)
        rows.append((wnid, lemmas))
    if len(rows) != NUM_CLASSES:
        raise RuntimeError(f"{_CLASSES_FILE} should list {NUM_CLASSES} classes, found {len(rows)}")
    return tuple(rows)


def class_names(full: bool = False) -> list[str]:
    """The 1,000 ImageNet class names in class-index order.

    ``full=False`` gives the short name (the first WordNet lemma, ``"tabby"``); ``full=True``
    gives all lemmas (``"tabby, tabby cat"``).

    >>> class_names()[281], class_names(full=True)[281]
    ('tabby', 'tabby, tabby cat')
    """
    table = _class_table()
    if full:
        return [lemmas for _, lemmas in table]
    return [lemmas.split(",")[0].strip() for _, lemmas in table]


def wnids() -> list[str]:
    """The WordNet ids of the 1,000 classes (``"n01440764"`` … ), in class-index order."""
    return [wnid for wnid, _ in _class_table()]


# --------------------------------------------------------------------------- preprocessing


def _as_uint8_range(image: np.ndarray, where: str) -> np.ndarray:
    """The image as float32 on the 0–255 scale, after checking its dtype and value range."""
    if image.dtype == np.bool_:
        raise TypeError(f"{where}: boolean images are not photographs; expected uint8 or float in [0, 1]")
    if image.dtype == np.uint8:
        return image.astype(np.float32)
    if np.issubdtype(image.dtype, np.integer):
        lo, hi = (int(image.min()), int(image.max())) if image.size else (0, 0)
        if lo < 0 or hi > 255:
            raise ValueError(
                f"{where}: integer images must hold values in 0..255; got {lo}..{hi} "
                f"(dtype {image.dtype})"
            )
        return image.astype(np.float32)
    if np.issubdtype(image.dtype, np.floating):
        if not np.all(np.isfinite(image)):
            raise ValueError(f"{where}: the image contains NaN or infinite values")
        lo, hi = float(image.min()), float(image.max())
        if lo < -1e-3 or hi > 1.0 + 1e-3:
            raise ValueError(
                f"{where}: float images are expected in [0, 1] (scikit-image's convention); "
                f"got values in [{lo:.3g}, {hi:.3g}]. Pass uint8 (0..255) images, or divide by 255."
            )
        return (np.clip(image, 0.0, 1.0) * 255.0).astype(np.float32)
    raise TypeError(f"{where}: expected a uint8 or float image, got dtype {image.dtype}")


def _channels_last_rgb(image: np.ndarray, where: str) -> np.ndarray:
    """(H, W) or (H, W, 1|3|4) -> (H, W, 3); anything else raises with the expected shapes."""
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3:
        raise ValueError(
            f"{where}: expected an image of shape (H, W) or (H, W, 3), got shape {image.shape}"
        )
    channels = image.shape[-1]
    if channels == 3:
        return image
    if channels == 1:
        return np.repeat(image, 3, axis=2)
    if channels == 4:  # RGBA: the alpha channel is dropped
        return image[:, :, :3]
    hint = (
        " It looks channels-first: use np.moveaxis(image, 0, -1)."
        if image.shape[0] in (1, 3, 4)
        else " For a batch of grey images add a channel axis: images[..., None]."
    )
    raise ValueError(
        f"{where}: expected channels-last images (H, W, 3) with 1, 3 or 4 channels; "
        f"got shape {image.shape}.{hint}"
    )


def _split_images(images) -> list[np.ndarray]:
    """A list of single (H, W[, C]) arrays from an array or a sequence of arrays."""
    if isinstance(images, np.ndarray):
        if images.ndim in (2, 3):
            return [images]
        if images.ndim == 4:
            if images.shape[-1] not in (1, 3, 4) and images.shape[1] in (1, 3):
                raise ValueError(
                    "expected channels-last images (N, H, W, 3); got shape "
                    f"{images.shape}, which looks channels-first: use np.moveaxis(images, 1, -1)"
                )
            return list(images)
        raise ValueError(
            "expected one image (H, W) / (H, W, 3) or a batch (N, H, W, 3); "
            f"got an array of shape {images.shape}"
        )
    if isinstance(images, Sequence) and not isinstance(images, (str, bytes)):
        out = [np.asarray(im) for im in images]
        for i, im in enumerate(out):
            if im.ndim not in (2, 3):
                raise ValueError(
                    f"image {i} of the list: expected shape (H, W) or (H, W, 3), got {im.shape}"
                )
        return out
    if hasattr(images, "__array__"):
        return _split_images(np.asarray(images))
    raise TypeError(f"expected a NumPy array or a list of arrays, got {type(images).__name__}")


def _centre_crop(image: np.ndarray, crop: float) -> np.ndarray:
    h, w = image.shape[:2]
    side = max(1, int(round(crop * min(h, w))))
    top, left = (h - side) // 2, (w - side) // 2
    return image[top : top + side, left : left + side]


def preprocess(
    images,
    size: int = IMAGE_SIZE,
    crop: float = CROP_FRACTION,
    layout: str = "NHWC",
) -> np.ndarray:
    """Photographs -> the normalized float32 batch EfficientNet-Lite expects.

    ``x = (resize(centre_crop(image, crop · min(H, W)), size) - 127) / 128`` per channel.

    Parameters
    ----------
    images:
        One image ``(H, W)`` / ``(H, W, C)``, a batch ``(N, H, W, C)``, or a list of images of
        any sizes; **channels last**, C = 1 (grey, repeated), 3 (RGB) or 4 (RGBA, alpha dropped).
        ``uint8`` (0–255) or float in [0, 1] (scikit-image's convention; other integer types
        must hold 0–255).
    size:
        Output side in pixels (224 for EfficientNet-Lite0).
    crop:
        Side of the centre square crop as a fraction of the shorter side; 0.875 is the
        evaluation protocol of the weights, 1.0 keeps the whole (square) image — use it for
        small images whose object fills the frame (digits, textures).
    layout:
        ``"NHWC"`` (Keras, the default) or ``"NCHW"`` (PyTorch).

    Returns
    -------
    numpy.ndarray
        ``float32`` array ``(N, size, size, 3)`` (or ``(N, 3, size, size)``), values in
        [-0.99, 1.0]; N = 1 for a single image.

    Example
    -------
    >>> from skimage import data
    >>> preprocess(data.chelsea(), layout="NCHW").shape
    (1, 3, 224, 224)
    """
    from skimage.transform import resize

    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be one of {_LAYOUTS}, got {layout!r}")
    if not (isinstance(size, (int, np.integer)) and size >= 8):
        raise ValueError(f"size must be an integer >= 8, got {size!r}")
    if not 0.0 < float(crop) <= 1.0:
        raise ValueError(f"crop must be in (0, 1], got {crop!r}")
    singles = _split_images(images)
    if not singles:
        raise ValueError("preprocess needs at least one image")

    out = np.empty((len(singles), size, size, 3), np.float32)
    uniform = len({im.shape for im in singles}) == 1
    step = _CHUNK if uniform else 1
    for start in range(0, len(singles), step):
        chunk = singles[start : start + step]
        where = f"image {start}" if step == 1 else f"images {start}..{start + len(chunk) - 1}"
        batch = np.stack([_channels_last_rgb(_centre_crop(im, crop), where) for im in chunk])
        batch = _as_uint8_range(batch, where)
        if batch.shape[1:3] != (size, size):
            batch = resize(
                batch,
                (len(chunk), size, size, 3),
                order=1,
                mode="edge",
                anti_aliasing=True,
                preserve_range=True,
            )
        out[start : start + len(chunk)] = (batch - MEAN) / STD
    if layout == "NCHW":
        out = np.ascontiguousarray(out.transpose(0, 3, 1, 2))
    return out


def prepared_batches(
    images,
    batch_size: int = 32,
    size: int = IMAGE_SIZE,
    crop: float = CROP_FRACTION,
    layout: str = "NHWC",
):
    """:func:`preprocess` ``batch_size`` images at a time (a generator of float32 arrays).

    Keeps memory at one prepared batch (0.6 MB per 224 × 224 image) for large data sets.

    >>> [b.shape for b in prepared_batches(np.zeros((5, 40, 40, 3), np.uint8), 2, size=16)]
    [(2, 16, 16, 3), (2, 16, 16, 3), (1, 16, 16, 3)]
    """
    if not (isinstance(batch_size, (int, np.integer)) and batch_size >= 1):
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    items = _split_images(images)
    for start in range(0, len(items), batch_size):
        yield preprocess(items[start : start + batch_size], size=size, crop=crop, layout=layout)


def unprocess(x: np.ndarray, layout: str = "NHWC") -> np.ndarray:
    """Undo the normalization for display: ``uint8 = clip(x · 128 + 127)``, channels last.

    >>> unprocess(preprocess(np.full((8, 8, 3), 200, np.uint8), size=8)).max()
    np.uint8(200)
    """
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be one of {_LAYOUTS}, got {layout!r}")
    arr = np.asarray(x, dtype=np.float32)
    if layout == "NCHW":
        arr = np.moveaxis(arr, -3, -1)
    return np.clip(np.rint(arr * STD + MEAN), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- decoding


def _to_numpy(values) -> np.ndarray:
    """NumPy view of a NumPy array, a PyTorch tensor or a TensorFlow tensor (no import)."""
    if hasattr(values, "detach"):  # torch.Tensor, possibly requiring grad
        values = values.detach().cpu().numpy()
    elif hasattr(values, "numpy") and not isinstance(values, np.ndarray):  # tf.Tensor
        values = values.numpy()
    return np.asarray(values, dtype=np.float64)


def softmax(logits, axis: int = -1) -> np.ndarray:
    """``p_i = exp(z_i - max z) / Σ_j exp(z_j - max z)`` along ``axis`` (float64)."""
    z = _to_numpy(logits)
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def decode(logits, k: int = 5, names: Sequence[str] | None = None):
    """The top-``k`` classes of logits: ``[(class_index, name, probability), ...]``.

    Probabilities are the softmax of the logits. One logit vector ``(1000,)`` (or a batch of
    one, ``(1, 1000)``) gives one list; a batch ``(N, 1000)`` with N > 1 gives one list per
    image. Accepts NumPy arrays and PyTorch / TensorFlow tensors. ``names`` overrides the
    ImageNet class names (for a model with a new head).

    >>> z = np.zeros((2, 1000)); z[0, 281] = z[1, 504] = 10.0
    >>> [top[0][:2] for top in decode(z, k=1)]
    [(281, 'tabby'), (504, 'coffee mug')]
    """
    z = _to_numpy(logits)
    if z.ndim == 2 and z.shape[0] == 1:
        z = z[0]
    if z.ndim not in (1, 2):
        raise ValueError(f"logits must have shape (C,) or (N, C), got {z.shape}")
    labels = list(names) if names is not None else class_names()
    if z.shape[-1] != len(labels):
        raise ValueError(
            f"logits have {z.shape[-1]} classes but there are {len(labels)} names"
            + ("" if names is not None else " (ImageNet); pass names=... for another head")
        )
    if not (isinstance(k, (int, np.integer)) and 1 <= k <= len(labels)):
        raise ValueError(f"k must be an integer in 1..{len(labels)}, got {k!r}")
    probs = softmax(z)

    def top(p: np.ndarray) -> list[tuple[int, str, float]]:
        idx = np.argsort(-p, kind="stable")[:k]
        return [(int(i), labels[i], float(p[i])) for i in idx]

    return top(probs) if probs.ndim == 1 else [top(p) for p in probs]


def format_top(top: Sequence[tuple[int, str, float]]) -> str:
    """One line per class: ``"285 Egyptian cat  37.2%"``."""
    return "\n".join(f"{i:4d} {name:<24s} {100 * p:5.1f}%" for i, name, p in top)
