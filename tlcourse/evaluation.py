"""Summarising repeated runs: mean ± std tables and the gaps the notebooks assert on.

A run table has one row per (method, label budget, seed) with a metric column. The
notebooks print :func:`summarize` and assert with :func:`gap`:

    gap(df, "finetune", "scratch", at=5) = mean_s(acc_finetune,s) - mean_s(acc_scratch,s)

>>> import pandas as pd
>>> df = pd.DataFrame({"method": ["a", "a", "b", "b"], "labels_per_class": [5] * 4,
...                    "seed": [0, 1, 0, 1], "acc": [0.9, 0.8, 0.5, 0.6]})
>>> round(gap(df, "a", "b", at=5), 3)
0.3
"""

from __future__ import annotations


def _require(df, cols):
    missing = set(cols) - set(df.columns)
    if missing:
        raise KeyError(f"columns {sorted(missing)} not in the run table {list(df.columns)}")


def summarize(df, *, by=("method", "labels_per_class"), metric: str = "acc"):
    """Mean, std and number of runs of ``metric`` per group, as a DataFrame."""
    _require(df, [*by, metric])
    out = df.groupby(list(by), sort=False)[metric].agg(["mean", "std", "count"]).reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out


def pivot(df, *, index: str = "labels_per_class", columns: str = "method", metric: str = "acc"):
    """A readable table: one row per label budget, one 'mean ± std' column per method."""
    _require(df, [index, columns, metric])
    stats = df.groupby([index, columns], sort=False)[metric].agg(["mean", "std"]).reset_index()
    stats["cell"] = [
        f"{m:.3f} ± {0.0 if s != s else s:.3f}" for m, s in zip(stats["mean"], stats["std"], strict=True)
    ]
    table = stats.pivot(index=index, columns=columns, values="cell")
    order = list(dict.fromkeys(df[columns]))
    table = table[[c for c in order if c in table.columns]]
    return table.rename_axis(index=index.replace("_", " "), columns=None)


def mean_at(df, method: str, *, at, x: str = "labels_per_class", metric: str = "acc", hue: str = "method") -> float:
    """Mean of ``metric`` over seeds for one method at one label budget."""
    _require(df, [x, metric, hue])
    rows = df[(df[hue] == method) & (df[x] == at)]
    if rows.empty:
        raise KeyError(f"no runs of {method!r} at {x}={at}; methods: {sorted(df[hue].unique())}")
    return float(rows[metric].mean())


def gap(df, a: str, b: str, *, at, x: str = "labels_per_class", metric: str = "acc", hue: str = "method") -> float:
    """How much method ``a`` beats method ``b`` on average at budget ``at`` (can be negative)."""
    return mean_at(df, a, at=at, x=x, metric=metric, hue=hue) - mean_at(df, b, at=at, x=x, metric=metric, hue=hue)


def interval(values, level: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the Student-t confidence interval over repeated runs.

        x̄ ± t_{1−α/2, n−1} · s / √n,   s² = Σ(x_i − x̄)² / (n − 1)

    With 3 seeds t_{0.975, 2} = 4.30: the interval is wide, and saying so is the point.

    >>> m, h = interval([0.50, 0.55, 0.60])
    >>> round(m, 3), round(h, 3)
    (0.55, 0.124)
    """
    import numpy as np
    from scipy import stats

    x = np.asarray(values, dtype=float).ravel()
    if x.size < 2:
        raise ValueError(f"an interval needs at least two runs, got {x.size}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    half = stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
    return float(x.mean()), float(half)


def paired(df, a: str, b: str, *, at, x: str = "labels_per_class", metric: str = "acc", hue: str = "method",
           by: str = "seed"):
    """Per-seed differences ``metric(a) − metric(b)`` at budget ``at`` (a Series indexed by seed).

    Both methods saw the same labelled examples in each seed, so the differences remove what
    the seeds share (which images were labelled); :func:`interval` of them is the paired test.
    """
    _require(df, [x, hue, by, metric])
    sub = df[df[x] == at]
    wide = sub.pivot_table(index=by, columns=hue, values=metric, aggfunc="mean")
    for m in (a, b):
        if m not in wide.columns:
            raise KeyError(f"no runs of {m!r} at {x}={at}; methods there: {sorted(wide.columns)}")
    diff = (wide[a] - wide[b]).dropna()
    if diff.empty:
        raise KeyError(f"{a!r} and {b!r} share no {by} at {x}={at}")
    return diff
