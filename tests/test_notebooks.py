"""Every notebook, with every exercise filled with its solution: every check says correct.

(The learner's view — blank exercises, default parameters — is run by nbval:
``pytest --nbval-lax notebooks``.) Each run's wall time and peak memory go to
``build/reports/``; the budgets themselves are judged by ``make bench`` because this
machine's timings are noisy. The per-cell timeout here only guards against hangs.
"""

from __future__ import annotations

import json

import nbformat
import pytest
from conftest import NOTEBOOKS, REPORTS, ROOT

from tlcourse.exercises.fill import exercise_cells, fill_solutions
from tlcourse.notebook_tools import notebooks
from tlcourse.runner import execute

ALL = notebooks(NOTEBOOKS)


def test_there_are_notebooks():
    assert len(ALL) >= 2, "the course has at least the welcome and what-is-transfer notebooks"


@pytest.mark.notebook
@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_solved_notebook_runs_and_every_check_is_correct(path):
    nb = nbformat.read(path, as_version=4)
    n_exercises = len(exercise_cells(nb))
    out = ROOT / "build" / "executed" / f"{path.stem}.solved.ipynb"
    report = execute(
        path,
        out,
        env={"TLCOURSE_CHECKS": "strict"},
        timeout=900,
        variant="solved",
        transform=fill_solutions,
    )
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / f"{path.stem}.solved.json").write_text(json.dumps(report.as_dict()))
    assert report.ok, report.error
    # Every check cell printed a verdict, and all of them are "Correct".
    done = nbformat.read(out, as_version=4)
    verdicts = []
    for cell in done.cells:
        for o in cell.get("outputs", []):
            text = o.get("text", "") or o.get("data", {}).get("text/plain", "")
            verdicts += [line for line in text.splitlines() if line.startswith("[") and "] " in line and ("Correct" in line or "Incorrect" in line or "Not attempted" in line)]
    assert len(verdicts) >= n_exercises, f"expected a verdict per exercise ({n_exercises}), saw {verdicts}"
    assert all("] Correct" in v for v in verdicts), verdicts
