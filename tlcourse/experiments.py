"""Running one experiment over label budgets and seeds, with a progress bar.

Every experiment notebook compares methods over label budgets k (labelled target examples
per class) and seeds s. The notebook writes ``run(k, seed)`` — the transfer technique in
plain framework code — returning one row per method; :func:`sweep` calls it for every
(k, s) and gathers the rows into a table:

    runs = sweep(run, budgets=[1, 5, 20, 100], seeds=[0, 1, 2])
    # columns: method, labels_per_class, seed, acc (+ anything else the rows carry)

>>> def run(k, seed):
...     return [{"method": "a", "acc": 0.5}, {"method": "b", "acc": 0.6}]
>>> sweep(run, budgets=[1, 5], seeds=[0], progress=False).shape
(4, 4)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable


def sweep(
    run: Callable[[int, int], dict | list[dict]],
    *,
    budgets: Iterable[int],
    seeds: Iterable[int],
    desc: str = "runs",
    progress: bool = True,
):
    """Call ``run(k, seed)`` for every budget and seed; return a DataFrame of all rows.

    Each row gets ``labels_per_class`` and ``seed`` (unless ``run`` set them) and
    ``seconds``, the time of the call it came from.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    jobs = [(int(k), int(s)) for k in budgets for s in seeds]
    if not jobs:
        raise ValueError("sweep needs at least one budget and one seed")
    rows: list[dict] = []
    for k, s in tqdm(jobs, desc=desc, disable=not progress):
        start = time.perf_counter()
        out = run(k, s)
        took = time.perf_counter() - start
        out = [out] if isinstance(out, dict) else list(out)
        if not out or not all(isinstance(r, dict) for r in out):
            raise TypeError(f"run({k}, {s}) must return a dict or a list of dicts, got {type(out).__name__}")
        for r in out:
            if "method" not in r:
                raise KeyError(f"run({k}, {s}) returned a row without 'method': {r}")
            rows.append({"labels_per_class": k, "seed": s, **r, "seconds": round(took, 3)})
    cols = ["method", "labels_per_class", "seed"]
    df = pd.DataFrame(rows)
    return df[cols + [c for c in df.columns if c not in cols]]
