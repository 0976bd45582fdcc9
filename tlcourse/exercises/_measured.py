"""Questions judged against measured runs (predict-then-verify), shared by the topic modules.

A notebook passes its run table by keyword, ``q.check(answer, runs=runs)``; a question's
``examples()`` give it positionally, ``(answer, runs)``, so the test suite can run them.
"""

from __future__ import annotations

import numpy as np

from tlcourse.exercises.core import Incorrect, Question


def as_records(runs) -> list[dict]:
    """A run table (a pandas DataFrame or a list of dicts) as a list of dicts."""
    return runs.to_dict(orient="records") if hasattr(runs, "to_dict") else list(runs)


def mean_of(records, metric: str = "acc", **where) -> float:
    """The mean of ``metric`` over the records whose fields equal ``where``:

        mean_of(runs, method="scratch", labels_per_class=5) = 1/|R| Σ_{r ∈ R} r["acc"],
        R = {r : r["method"] = "scratch" and r["labels_per_class"] = 5}

    Raises :class:`Incorrect` when no record matches (the learner passed other runs).
    """
    values = [float(r[metric]) for r in records if all(r.get(k) == v for k, v in where.items())]
    if not values:
        shown = ", ".join(f"{k}={v!r}" for k, v in where.items())
        raise Incorrect(f"the runs you passed have no rows with {shown}")
    return float(np.mean(values))


class MeasuredQuestion(Question):
    """A question judged against measured runs, passed as ``runs=`` (a DataFrame or list of dicts)."""

    def evaluate(self, *answer, **context):
        # examples() give the runs positionally; notebooks pass them by keyword.
        if len(answer) == 2 and not context:
            answer, context = answer[:1], {"runs": answer[1]}
        return super().evaluate(*answer, **context)
