"""A letters task in MNIST's modality: capital letters rendered from matplotlib's fonts.

Each image is made by this recipe (version :data:`RECIPE_VERSION`), all draws from
``numpy.random.default_rng([RECIPE_VERSION, seed])``:

1. pick a font from :data:`FONTS` (the TrueType fonts matplotlib ships that hold Latin
   capitals — DejaVu, STIX, Computer Modern) and render the letter white on black with
   Pillow at 32 px, with an outline of 0 or 1 px (the stroke width varies);
2. apply a random affine map about the centre: rotation ``U(-15, 15)`` degrees, shear
   ``U(-0.3, 0.3)``, scale ``U(0.8, 1.2)`` on each axis;
3. crop to the ink, fit it in a ``U{16..20}`` pixel box and centre it by mass in a 28x28
   frame, moved by up to 2 px (``geometry.fit_in_box``/``centre_by_mass``, as MNIST);
4. blur (Gaussian, sigma ``U(0.3, 0.8)``) and add noise ``|N(0, s^2)|``, ``s ~ U(0, 0.05)``,
   clipped to [0, 1].

The result looks like MNIST (white glyph, black background, 28x28, centred) but holds a
new task: a source of "handwriting-like" strokes with different classes. Built once per
(seed, letters, size) in a few seconds and cached under ``tlcourse.paths.subdir("data")``.

>>> ds = load_letters(seed=0)             # doctest: +SKIP
>>> ds.x_train.shape, ds.classes[:3]       # doctest: +SKIP
((4000, 28, 28), ['A', 'B', 'C'])
"""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np

from tlcourse.datasets.base import ImageSet, make_imageset
from tlcourse.datasets.cache import cached
from tlcourse.datasets.geometry import centre_by_mass, fit_in_box
from tlcourse.datasets.sampling import stratified_split

RECIPE_VERSION = 1
FONTS = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf",
    "DejaVuSansMono-BoldOblique.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf", "STIXGeneral.ttf",
    "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf",
    "cmr10.ttf", "cmb10.ttf", "cmti10.ttf", "cmss10.ttf", "cmtt10.ttf", "cmmi10.ttf", "cmsy10.ttf",
)
"""Fonts in ``matplotlib.get_data_path()/fonts/ttf`` with the 26 Latin capitals (the others
hold symbols only: STIXSize*, STIXNonUni*, cmex10, *Display, LastResort)."""
DEFAULT_LETTERS = "ABCDEFGHIJ"
_CANVAS, _POINTS = 64, 32


def font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def available_fonts() -> list[str]:
    """The fonts of :data:`FONTS` present in this matplotlib (all of them, normally)."""
    folder = font_dir()
    return [f for f in FONTS if (folder / f).exists()]


def render_glyph(font_file: str, letter: str, stroke: int = 0) -> np.ndarray:
    """A letter rendered white on black, float ``(64, 64)`` in [0, 1], centred."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(font_dir() / font_file), _POINTS)
    canvas = Image.new("L", (_CANVAS, _CANVAS), 0)
    ImageDraw.Draw(canvas).text((_CANVAS // 2, _CANVAS // 2), letter, fill=255, font=font,
                                anchor="mm", stroke_width=stroke, stroke_fill=255)
    return np.asarray(canvas, dtype=np.float64) / 255.0


def affine_matrix(rotation_deg: float, shear: float, scale) -> np.ndarray:
    """The 2x2 map ``A = R(rotation) @ [[1, shear], [0, 1]] @ diag(scale)`` in (x, y).

    >>> affine_matrix(90, 0.0, (1, 1)).round(6).tolist()
    [[0.0, -1.0], [1.0, 0.0]]
    """
    t = np.deg2rad(rotation_deg)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return rot @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag(np.asarray(scale, dtype=float))


def random_affine(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Map a grey image by :func:`affine_matrix` about its centre (bilinear): rotation
    ``U(-15, 15)`` degrees, shear ``U(-0.3, 0.3)``, scale ``U(0.8, 1.2)`` per axis."""
    from scipy.ndimage import affine_transform

    forward = affine_matrix(rng.uniform(-15, 15), rng.uniform(-0.3, 0.3), rng.uniform(0.8, 1.2, size=2))
    inverse = np.linalg.inv(forward)[::-1, ::-1]  # (x, y) -> (row, col) order
    centre = (np.array(img.shape) - 1) / 2
    return affine_transform(img, inverse, offset=centre - inverse @ centre, order=1, cval=0.0)


def _check_letters(letters: str) -> str:
    if not isinstance(letters, str) or not letters:
        raise TypeError(f"letters must be a non-empty string of capitals, e.g. 'ABCDEFGHIJ', got {letters!r}")
    bad = sorted(set(letters) - set(string.ascii_uppercase))
    if bad:
        raise ValueError(f"letters may only hold the capitals A-Z; got {bad}")
    if len(set(letters)) != len(letters):
        raise ValueError(f"letters must not repeat a letter: {letters!r}")
    if len(letters) < 2:
        raise ValueError("a classification task needs at least 2 letters")
    return letters


def _build(seed: int, letters: str, per_class: int, fonts: list[str]) -> dict[str, np.ndarray]:
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng([RECIPE_VERSION, seed])
    labels = np.repeat(np.arange(len(letters)), per_class)
    font_idx = rng.integers(len(fonts), size=labels.size)
    strokes = rng.integers(0, 2, size=labels.size)
    glyphs: dict[tuple[int, int, int], np.ndarray] = {}
    images = np.empty((labels.size, 28, 28), dtype=np.uint8)
    for i, (lab, f, s) in enumerate(zip(labels, font_idx, strokes, strict=True)):
        key = (int(lab), int(f), int(s))
        if key not in glyphs:
            glyphs[key] = render_glyph(fonts[f], letters[lab], stroke=int(s))
        warped = random_affine(glyphs[key], rng)
        small = fit_in_box(warped, int(rng.integers(16, 21)))
        img = centre_by_mass(small, 28, shift=tuple(rng.integers(-2, 3, size=2)))
        img = gaussian_filter(img, rng.uniform(0.3, 0.8))
        img = img / max(img.max(), 1e-6)
        img = img + np.abs(rng.normal(0.0, rng.uniform(0.0, 0.05), size=img.shape))
        images[i] = np.rint(np.clip(img, 0.0, 1.0) * 255)
    return {"images": images, "labels": labels, "font": font_idx}


def load_letters(
    seed: int = 0,
    letters: str = DEFAULT_LETTERS,
    per_class: int = 500,
    n_train: int | None = None,
    n_test: int | None = None,
) -> ImageSet:
    """Rendered capitals, float32 ``(N, 28, 28)`` in [0, 1]; classes are the ``letters``.

    ``per_class`` images of each letter are built (500: as many as MNIST-5k has digits);
    the stratified split holds ``n_test`` test images (default 20%) and ``n_train``
    training images (default: the rest). ``extra["font_train"]``/``["font_test"]`` name
    each image's font.
    """
    letters = _check_letters(letters)
    if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)) or per_class < 2:
        raise ValueError(f"per_class must be a whole number >= 2, got {per_class!r}")
    fonts = available_fonts()
    if len(fonts) < 5:
        raise RuntimeError(f"matplotlib's fonts were not found in {font_dir()} (found {fonts})")
    params = {"seed": int(seed), "letters": letters, "per_class": int(per_class), "fonts": fonts}
    arrays, cache = cached("letters", RECIPE_VERSION, params,
                           lambda: _build(int(seed), letters, int(per_class), fonts))
    labels = arrays["labels"]
    total = labels.size
    n_test = total // 5 if n_test is None else n_test
    train, test = stratified_split(labels, n_test=n_test, n_train=n_train, seed=seed)
    x = arrays["images"].astype(np.float32) / np.float32(255.0)
    font = np.asarray(fonts)[arrays["font"]]
    extra = {"seed": seed, "font_train": font[train], "font_test": font[test], **cache}
    return make_imageset("letters", x, labels, train, test, classes=list(letters), extra=extra)
