"""The dataset container :class:`ImageSet` and the registry of dataset names.

Every loader in :mod:`tlcourse.datasets` returns an :class:`ImageSet`:

* ``x_train``, ``x_test``: images as float32 in [0, 1], channels last — ``(N, H, W)`` grey
  or ``(N, H, W, 3)`` colour (the text corpus holds arrays of ``str`` instead);
* ``y_train``, ``y_test``: int64 labels in ``0 .. len(classes) - 1``;
* ``classes``, ``name``, ``source`` (one line: where the data comes from, its licence);
* ``extra``: anything else a loader wants to hand over (cache file, build time, ...).

The registry maps a name (``"mnist"``) to an :class:`Entry`: the module and function that
build it — imported only when the dataset is loaded, so ``import tlcourse.datasets`` stays
light — and what :func:`tlcourse.datasets.info` reports without building anything.

>>> import numpy as np
>>> ds = ImageSet(name="toy", x_train=np.zeros((4, 2, 2), np.float32), y_train=np.array([0, 1, 0, 1]),
...               x_test=np.zeros((2, 2, 2), np.float32), y_test=np.array([0, 1]),
...               classes=["a", "b"], source="made up")
>>> ds.n_classes, ds.example_shape, ds.y_train.dtype
(2, (2, 2), dtype('int64'))
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True, eq=False)
class ImageSet:
    """A labelled train/test split with its class names and provenance (see module docs)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    source: str
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", [str(c) for c in self.classes])
        for part in ("train", "test"):
            x = np.asarray(getattr(self, f"x_{part}"))
            y = np.asarray(getattr(self, f"y_{part}"))
            if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or y.size == 0):
                raise TypeError(
                    f"{self.name}: y_{part} must be a 1-D array of integer labels, "
                    f"got shape {y.shape} dtype {y.dtype}"
                )
            if len(x) != len(y):
                raise ValueError(f"{self.name}: x_{part} has {len(x)} examples but y_{part} has {len(y)}")
            if y.size and (y.min() < 0 or y.max() >= len(self.classes)):
                raise ValueError(
                    f"{self.name}: y_{part} must lie in 0..{len(self.classes) - 1} "
                    f"({len(self.classes)} classes), got {y.min()}..{y.max()}"
                )
            object.__setattr__(self, f"x_{part}", x)
            object.__setattr__(self, f"y_{part}", y.astype(np.int64, copy=False))

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def example_shape(self) -> tuple[int, ...]:
        """The shape of one example, e.g. ``(28, 28)`` or ``(96, 96, 3)``."""
        return tuple(self.x_train.shape[1:])

    @property
    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in (self.x_train, self.y_train, self.x_test, self.y_test)))

    def __repr__(self) -> str:
        return (
            f"ImageSet({self.name!r}: train {self.x_train.shape} {self.x_train.dtype}, "
            f"test {self.x_test.shape}, {self.n_classes} classes, {self.nbytes / 1e6:.1f} MB)"
        )


@dataclass(frozen=True)
class Entry:
    """A registered dataset: where its loader lives and what it holds (for ``info``).

    ``module`` is a dotted module path and ``function`` a loader in it.
    ``example_shape``/``n_train``/``n_test`` describe the default split (``None``: varies).
    """

    name: str
    module: str
    function: str
    summary: str
    source: str
    classes: tuple[str, ...]
    example_shape: tuple[int, ...] | None
    n_train: int | None
    n_test: int | None
    offline: bool = True

    def loader(self) -> Callable[..., ImageSet]:
        """Import the loader; a missing module or function gets a message naming it."""
        try:
            module = importlib.import_module(self.module)
        except ModuleNotFoundError as err:
            if err.name and self.module.startswith(err.name):
                raise ModuleNotFoundError(
                    f"dataset {self.name!r} is built by the module {self.module}, which is not "
                    f"installed in this copy of tlcourse ({err})"
                ) from err
            raise ModuleNotFoundError(
                f"dataset {self.name!r} needs the package {err.name!r}: install it with "
                f"`pip install {err.name}` ({err})"
            ) from err
        try:
            return getattr(module, self.function)
        except AttributeError as err:
            raise ImportError(
                f"dataset {self.name!r}: {self.module} has no function {self.function}()"
            ) from err


REGISTRY: dict[str, Entry] = {}


def register(entry: Entry) -> Entry:
    """Add a dataset to the registry (a name may be registered once)."""
    if entry.name in REGISTRY:
        raise ValueError(f"dataset {entry.name!r} is already registered")
    REGISTRY[entry.name] = entry
    return entry


def get_entry(name: str) -> Entry:
    """The registry entry for ``name``; an unknown name lists the valid ones."""
    if not isinstance(name, str):
        raise TypeError(f"a dataset name is a string, got {type(name).__name__}")
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown dataset {name!r}; valid names: {', '.join(sorted(REGISTRY))}"
        ) from None


def check_kwargs(name: str, func: Callable, kwargs: dict[str, Any]) -> None:
    """Raise ``TypeError`` naming the accepted options if ``kwargs`` holds an unknown one.

    A loader that takes ``**kwargs`` itself is trusted to check them.
    """
    params = inspect.signature(func).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(
            f"dataset {name!r} got unknown option(s) {unknown}; it accepts: {', '.join(accepted)}"
        )


def make_imageset(
    name: str, x, y, train_idx, test_idx, *, classes=None, extra: dict | None = None
) -> ImageSet:
    """An :class:`ImageSet` for a registered dataset from arrays and split indices.

    ``classes`` defaults to the registered class names; ``source`` is the registered one.
    """
    entry = get_entry(name)
    return ImageSet(
        name=name,
        x_train=x[train_idx],
        y_train=np.asarray(y)[train_idx],
        x_test=x[test_idx],
        y_test=np.asarray(y)[test_idx],
        classes=list(entry.classes if classes is None else classes),
        source=entry.source,
        extra=dict(extra or {}),
    )
