"""Image geometry shared by the loaders: MNIST's way of sizing and centring a glyph.

MNIST (LeCun et al. 1998) fitted each digit's bounding box into 20x20 pixels, keeping
the aspect ratio, and placed it in a 28x28 frame so that its centre of mass

    (c_y, c_x) = sum_ij I_ij (i, j) / sum_ij I_ij

falls on the frame's centre. :func:`fit_in_box` and :func:`centre_by_mass` do those two
steps for one grey image in [0, 1]; ``digits`` (size 28) and ``letters`` use them.

>>> import numpy as np
>>> img = np.zeros((40, 10)); img[5:35, 2:8] = 1.0
>>> small = fit_in_box(img, 20)
>>> small.shape
(20, 4)
>>> out = centre_by_mass(small, 28)
>>> out.shape, round(float(out.sum()), 1) == round(float(small.sum()), 1)
((28, 28), True)
"""

from __future__ import annotations

import numpy as np


def ink_bbox(img: np.ndarray, threshold: float = 0.05) -> tuple[slice, slice] | None:
    """The rows and columns holding pixels above ``threshold`` (``None`` if blank)."""
    rows = np.flatnonzero(img.max(axis=1) > threshold)
    cols = np.flatnonzero(img.max(axis=0) > threshold)
    if rows.size == 0 or cols.size == 0:
        return None
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def fit_in_box(img: np.ndarray, box: int, order: int = 1) -> np.ndarray:
    """Crop a grey image to its ink and resize it so its longer side is ``box`` pixels."""
    from skimage.transform import resize

    img = np.asarray(img, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"expected one grey image (H, W), got shape {img.shape}")
    bbox = ink_bbox(img)
    if bbox is not None:
        img = img[bbox]
    h, w = img.shape
    scale = box / max(h, w)
    shape = (max(1, round(h * scale)), max(1, round(w * scale)))
    return np.clip(resize(img, shape, order=order, anti_aliasing=scale < 1), 0.0, 1.0)


def centre_by_mass(img: np.ndarray, frame: int = 28, shift: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Place a grey image in a ``frame x frame`` black image with its centre of mass at the
    centre (rounded to whole pixels), moved by ``shift`` = (down, right) pixels.

    Parts pushed past the frame's edge are cut off.
    """
    img = np.asarray(img, dtype=np.float64)
    h, w = img.shape
    if h > frame or w > frame:
        raise ValueError(f"an image of {h}x{w} does not fit a {frame}x{frame} frame")
    mass = img.sum()
    if mass > 0:
        cy = (np.arange(h) * img.sum(axis=1)).sum() / mass
        cx = (np.arange(w) * img.sum(axis=0)).sum() / mass
    else:
        cy, cx = (h - 1) / 2, (w - 1) / 2
    centre = (frame - 1) / 2
    top = int(np.rint(centre - cy)) + int(shift[0])
    left = int(np.rint(centre - cx)) + int(shift[1])
    out = np.zeros((frame, frame))
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + h, frame), min(left + w, frame)
    if r1 > r0 and c1 > c0:
        out[r0:r1, c0:c1] = img[r0 - top : r1 - top, c0 - left : c1 - left]
    return out
