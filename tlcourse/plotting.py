"""One plot style for the whole course, and the few plots every notebook draws.

* :func:`use_style` — the course's matplotlib style (called by every plot helper);
* :func:`image_grid` — a labelled grid of images (datasets' previews, filters);
* :func:`learning_curves` — accuracy against labels per class, mean ± std over seeds;
* :func:`bars` — a labelled bar chart of a few numbers.

Every figure gets a title and labelled axes; helpers return the ``Axes`` so a notebook can
add to them.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
"""Okabe–Ito colours: distinguishable by colour-blind readers, readable on light and dark."""

_STYLE = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 100,
    "savefig.dpi": 120,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.labelsize": 11,
    "legend.frameon": False,
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "image.cmap": "gray",
}


def use_style() -> None:
    """Apply the course style to matplotlib (idempotent)."""
    matplotlib.rcParams.update(_STYLE)
    matplotlib.rcParams["axes.prop_cycle"] = matplotlib.cycler(color=PALETTE)


def _check_images(images) -> np.ndarray:
    arr = np.asarray(images)
    if arr.ndim == 4 and arr.shape[1] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = np.moveaxis(arr, 1, -1)  # NCHW -> NHWC
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (3, 4):
        raise ValueError(
            "images must be N×H×W (grey) or N×H×W×3 / N×3×H×W (colour); "
            f"got shape {np.shape(images)}"
        )
    return arr


def image_grid(
    images,
    labels: Sequence | None = None,
    *,
    ncols: int = 10,
    title: str = "",
    class_names: Sequence[str] | None = None,
    cmap: str = "gray",
    size: float = 1.0,
):
    """Draw images in a grid, each with its label (``class_names[label]`` if given).

    Returns the figure. Values are shown as they are for uint8 images and scaled to the
    image's own range otherwise.
    """
    use_style()
    arr = _check_images(images)
    n = len(arr)
    if n == 0:
        raise ValueError("image_grid needs at least one image")
    if labels is not None and len(labels) != n:
        raise ValueError(f"{n} images but {len(labels)} labels")
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = arr[i]
        if img.dtype != np.uint8:
            lo, hi = float(img.min()), float(img.max())
            img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img, dtype=float)
        ax.imshow(img, cmap=cmap if img.ndim == 2 else None)
        if labels is not None:
            lab = labels[i]
            text = class_names[int(lab)] if class_names is not None else str(lab)
            ax.set_title(text, fontsize=8, fontweight="normal")
    if title:
        fig.suptitle(title, fontweight="bold")
    fig.tight_layout()
    return fig


def learning_curves(
    df,
    *,
    x: str = "labels_per_class",
    y: str = "acc",
    hue: str = "method",
    title: str = "Accuracy against labelled examples per class",
    xlabel: str = "labelled examples per class (log scale)",
    ylabel: str = "target test accuracy",
    ax=None,
    logx: bool = True,
    colors: dict | None = None,
):
    """Plot ``y`` against ``x`` for each ``hue`` group: the mean over seeds, ± one std band.

    ``df`` is a pandas DataFrame with one row per run (columns ``x``, ``y``, ``hue``, seed).
    ``colors`` maps a ``hue`` value to its colour (to keep a method's colour across plots);
    other groups take the palette in order of appearance.
    """
    use_style()
    missing = {x, y, hue} - set(df.columns)
    if missing:
        raise KeyError(f"learning_curves: columns {sorted(missing)} not in {list(df.columns)}")
    if ax is None:
        _, ax = plt.subplots()
    for i, (name, group) in enumerate(df.groupby(hue, sort=False)):
        stats = group.groupby(x)[y].agg(["mean", "std", "count"]).sort_index()
        std = stats["std"].fillna(0.0)
        colour = (colors or {}).get(name, PALETTE[i % len(PALETTE)])
        ax.plot(stats.index, stats["mean"], marker="o", label=str(name), color=colour)
        ax.fill_between(stats.index, stats["mean"] - std, stats["mean"] + std, alpha=0.2, color=colour)
    if logx:
        ax.set_xscale("log")
        xs = sorted(df[x].unique())
        ax.set_xticks(xs)
        ax.set_xticklabels([str(v) for v in xs])
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(title=hue.replace("_", " "))
    return ax


def bars(values: dict, *, title: str, ylabel: str, errors: dict | None = None, ax=None, fmt: str = "{:.2f}"):
    """A bar per entry of ``values`` (with optional error bars), each labelled with its value."""
    use_style()
    if not values:
        raise ValueError("bars needs at least one value")
    if ax is None:
        _, ax = plt.subplots()
    names = list(values)
    heights = [float(values[k]) for k in names]
    err = [float(errors[k]) for k in names] if errors else None
    colours = [PALETTE[i % len(PALETTE)] for i in range(len(names))]
    rects = ax.bar(names, heights, yerr=err, color=colours, capsize=4)
    for i, (rect, h) in enumerate(zip(rects, heights, strict=True)):
        # above the error bar's cap (below it for a negative bar), not over it
        top = h + (err[i] if err else 0.0) * (1 if h >= 0 else -1)
        ax.annotate(fmt.format(h), (rect.get_x() + rect.get_width() / 2, top), xytext=(0, 2 if h >= 0 else -2),
                    textcoords="offset points", ha="center", va="bottom" if h >= 0 else "top", fontsize=9)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="x", rotation=20)
    return ax
