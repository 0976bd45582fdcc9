"""Putting the solutions into a notebook's exercise cells (for tests and instructors).

An exercise cell is marked in its metadata with the question it answers::

    "metadata": {"tlcourse": {"exercise": "transfer_basics.q1"}, "nbgrader": {...}}

:func:`fill_solutions` replaces each such cell's source with the question's
``solution_code``, so the solutions a learner sees with ``q.solution()`` are exactly the
code the tests run.
"""

from __future__ import annotations

from tlcourse.exercises import get


def exercise_cells(nb):
    """The (cell, question id) pairs of a notebook's exercise cells."""
    out = []
    for cell in nb.cells:
        qid = cell.get("metadata", {}).get("tlcourse", {}).get("exercise")
        if qid:
            out.append((cell, qid))
    return out


def fill_solutions(nb, *, markers: bool = False):
    """Replace every exercise cell's source with its solution; returns the notebook.

    With ``markers=True`` the solution is wrapped in nbgrader's ``### BEGIN SOLUTION`` /
    ``### END SOLUTION`` so that nbgrader can strip it again for the student release.
    """
    for cell, qid in exercise_cells(nb):
        code = get(qid).solution_code.strip("\n")
        if markers:
            code = f"### BEGIN SOLUTION\n{code}\n### END SOLUTION"
        cell.source = code
    return nb
