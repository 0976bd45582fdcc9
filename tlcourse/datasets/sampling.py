"""Stratified sampling shared by every loader: train/test splits and k-shot subsets.

Both keep the class proportions: a class holding a share ``n_c / N`` of the examples gets
``round(n * n_c / N)`` of ``n`` drawn examples (largest remainders, so the counts add up
to exactly ``n``). Everything is drawn from ``numpy.random.default_rng(seed)``: the same
seed gives the same indices on every machine.

``few_shot(x, y, k, seed)`` is *nested*: with one seed, the 1-shot set is part of the
5-shot set, which is part of the 10-shot set — a learning curve over label budgets then
adds examples instead of redrawing them.

>>> import numpy as np
>>> y = np.repeat([0, 1, 2], 10)
>>> x = np.arange(30)
>>> xk, yk = few_shot(x, y, k=2, seed=0)
>>> np.bincount(yk).tolist()
[2, 2, 2]
>>> train, test = stratified_split(y, n_test=6, seed=0)
>>> np.bincount(y[test]).tolist(), len(train)
([2, 2, 2], 24)
"""

from __future__ import annotations

import numbers

import numpy as np


def _labels(y) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"labels must be a 1-D array of integers, got shape {y.shape} dtype {y.dtype}")
    return y


def _count(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what} must be a whole number, got {value!r}")
    if value < 0:
        raise ValueError(f"{what} must be >= 0, got {value}")
    return int(value)


def allocate(counts, n: int) -> np.ndarray:
    """Split ``n`` draws over classes in proportion to ``counts`` (largest remainder).

    >>> allocate([50, 30, 20], 10).tolist()
    [5, 3, 2]
    """
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if n > total:
        raise ValueError(f"cannot draw {n} examples from {total}")
    if total == 0:
        return np.zeros_like(counts)
    exact = counts * n / total
    share = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - share), kind="stable")
    share[order[: n - int(share.sum())]] += 1
    return np.minimum(share, counts)


def stratified_split(y, n_test: int, n_train: int | None = None, seed: int = 0):
    """Shuffled, stratified ``(train_idx, test_idx)`` index arrays into ``y``.

    ``n_test`` examples go to the test set; ``n_train`` of the rest (all of them if
    ``None``) to the training set. Both keep the class proportions of ``y``.
    """
    y = _labels(y)
    n_test = _count(n_test, "n_test")
    if n_train is not None:
        n_train = _count(n_train, "n_train")
    if n_test + (n_train or 0) > len(y):
        raise ValueError(
            f"asked for {n_train or 0} train + {n_test} test examples but there are only {len(y)}"
        )
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    test_per_class = allocate(counts, n_test)
    left = counts - test_per_class
    train_per_class = left if n_train is None else allocate(left, n_train)
    train, test = [], []
    for c, n_te, n_tr in zip(classes, test_per_class, train_per_class, strict=True):
        idx = rng.permutation(np.flatnonzero(y == c))
        test.append(idx[:n_te])
        train.append(idx[n_te : n_te + n_tr])
    train_idx = rng.permutation(np.concatenate(train))
    test_idx = rng.permutation(np.concatenate(test))
    return train_idx, test_idx


def few_shot_indices(y, k: int, seed: int = 0) -> np.ndarray:
    """Indices of ``k`` examples of every class in ``y``, shuffled; nested in ``k``."""
    y = _labels(y)
    k = _count(k, "k")
    if k == 0:
        raise ValueError("k must be at least 1 example per class")
    classes, counts = np.unique(y, return_counts=True)
    if counts.size == 0:
        raise ValueError("few_shot got no examples")
    if k > counts.min():
        smallest = classes[np.argmin(counts)]
        raise ValueError(
            f"k={k} examples per class is more than the smallest class holds: "
            f"class {smallest} has {counts.min()} examples"
        )
    rng = np.random.default_rng(seed)
    # One permutation per class, independent of k: smaller k takes a prefix (nesting).
    picks = [rng.permutation(np.flatnonzero(y == c))[:k] for c in classes]
    order = np.random.default_rng([seed, k]).permutation(k * len(classes))
    return np.concatenate(picks)[order]


def few_shot(x, y, k: int, seed: int = 0):
    """``k`` examples per class of ``(x, y)``, reproducible: returns ``(x_k, y_k)``.

    Parameters
    ----------
    x, y:
        Examples (any array indexable along its first axis) and their integer labels.
    k:
        Examples per class; more than the smallest class holds raises ``ValueError``
        naming that class and its count.
    seed:
        The same seed gives the same subset; subsets are nested in ``k`` (see module docs).
    """
    x = np.asarray(x)
    y = _labels(y)
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)} labels")
    idx = few_shot_indices(y, k, seed)
    return x[idx], y[idx]
