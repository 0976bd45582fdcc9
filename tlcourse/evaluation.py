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
