"""Test helpers for the model zoo (framework-neutral): fake data and tiny recipes."""

from __future__ import annotations

import dataclasses

import numpy as np

import tlcourse.datasets
from tlcourse.datasets.base import ImageSet
from tlcourse.models import zoo


def fake_load(name, seed=0, n_train=100, n_test=40):
    """A learnable 10-class stand-in for MNIST: class c lights up row band c."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    y = np.arange(n) % 10
    x = rng.random((n, 28, 28), dtype=np.float32) * 0.3
    for c in range(10):
        x[y == c, 2 * c + 4: 2 * c + 6] += 0.7
    return ImageSet(name=name, x_train=x[:n_train], y_train=y[:n_train], x_test=x[n_train:], y_test=y[n_train:],
                    classes=[str(c) for c in range(10)], source="synthetic test data")


def tiny_zoo(monkeypatch, home):
    """A private ``TLCOURSE_HOME``, one-epoch recipes and :func:`fake_load` for the zoo."""
    monkeypatch.setenv("TLCOURSE_HOME", str(home))
    for name, r in list(zoo.RECIPES.items()):
        monkeypatch.setitem(zoo.RECIPES, name, dataclasses.replace(r, epochs=1))
    monkeypatch.setattr(tlcourse.datasets, "load", fake_load)
    return home


def same_state(a, b):
    """Two exported states hold the same arrays under the same names."""
    return sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)
