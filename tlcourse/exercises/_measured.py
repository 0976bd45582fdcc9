"""Questions judged against measured runs (predict-then-verify), shared by the topic modules.

A notebook passes its run table by keyword, ``q.check(answer, runs=runs)``; a question's
``examples()`` give it positionally, ``(answer, runs)``, so the test suite can run them.
"""

from __future__ import annotations

from tlcourse.exercises.core import Question


def as_records(runs) -> list[dict]:
    """A run table (a pandas DataFrame or a list of dicts) as a list of dicts."""
    return runs.to_dict(orient="records") if hasattr(runs, "to_dict") else list(runs)


class MeasuredQuestion(Question):
    """A question judged against measured runs, passed as ``runs=`` (a DataFrame or list of dicts)."""

    def evaluate(self, *answer, **context):
        # examples() give the runs positionally; notebooks pass them by keyword.
        if len(answer) == 2 and not context:
            answer, context = answer[:1], {"runs": answer[1]}
        return super().evaluate(*answer, **context)
