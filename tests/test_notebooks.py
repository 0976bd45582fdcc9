"""Every notebook, with every exercise filled with its solution: every check says correct.

(The learner's view — blank exercises, default parameters — is run by nbval:
``pytest --nbval-lax notebooks``.) Each run's wall time and peak memory go to
``build/reports/``; the budgets themselves are judged by ``make bench`` because this
machine's timings are noisy. The per-cell timeout here only guards against hangs.

A notebook that exists in a PyTorch and a TensorFlow variant (``NN_topic_torch`` and
``NN_topic_tf``) is run as a pair, and the two must reach the same conclusions: every
recorded ``claim/...`` value equal, every ``headline/...`` number within
``PAIR_TOLERANCE``.
"""

from __future__ import annotations

import json
import re

import nbformat
import pytest
from conftest import NOTEBOOKS, REPORTS, ROOT

from tlcourse import results
from tlcourse.exercises.fill import exercise_cells, fill_solutions
from tlcourse.notebook_tools import notebooks
from tlcourse.runner import execute

ALL = notebooks(NOTEBOOKS)
PAIR_TOLERANCE = 0.06
"""How far (in accuracy, 0–1) the two frameworks' headline numbers may differ."""

_VERDICT = re.compile(r"^\[[\w.]+\] (Correct|Incorrect|Not attempted)")


def _groups():
    groups: dict[str, list] = {}
    for p in ALL:
        groups.setdefault(re.sub(r"_(torch|tf)$", "", p.stem), []).append(p)
    return groups


GROUPS = _groups()


def _run_solved(path):
    nb = nbformat.read(path, as_version=4)
    n_exercises = len(exercise_cells(nb))
    out = ROOT / "build" / "executed" / f"{path.stem}.solved.ipynb"
    report = execute(path, out, env={"TLCOURSE_CHECKS": "strict"}, timeout=900, variant="solved",
                     transform=fill_solutions)
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / f"{path.stem}.solved.json").write_text(json.dumps(report.as_dict()))
    assert report.ok, report.error
    verdicts = []
    for cell in nbformat.read(out, as_version=4).cells:
        if "check" not in cell.get("metadata", {}).get("tlcourse", {}):
            continue  # only graded check cells (00 shows a blank verdict on purpose)
        for o in cell.get("outputs", []):
            text = o.get("text", "") or o.get("data", {}).get("text/plain", "")
            verdicts += [line for line in text.splitlines() if _VERDICT.match(line)]
    assert len(verdicts) >= n_exercises, f"expected a verdict per exercise ({n_exercises}), saw {verdicts}"
    assert all("] Correct" in v for v in verdicts), verdicts


def test_there_are_notebooks():
    assert len(ALL) >= 2, "the course has at least the welcome and what-is-transfer notebooks"


def _solved_and_agree(group):
    paths = GROUPS[group]
    for path in paths:
        _run_solved(path)
    if len(paths) < 2:
        return
    loaded = {p.stem: results.load(p.stem) for p in paths}
    recorded = {stem: r["values"] for stem, r in loaded.items()}
    (a, va), (b, vb) = recorded.items()
    headlines = sorted(k for k in va if k.startswith("headline/"))
    claims = sorted(k for k in va if k.startswith("claim/"))
    tables = loaded[a]["tables"].values()
    if any("labels_per_class" in t[0] for t in tables if t):  # an experiment over label budgets
        assert headlines, f"{a} records no headline/ numbers to compare across frameworks"
    assert set(headlines) <= set(vb) and set(claims) <= set(vb), f"{b} lacks keys {set(headlines + claims) - set(vb)}"
    for key in claims:
        assert va[key] == vb[key], f"{key}: {a} says {va[key]}, {b} says {vb[key]}"
    for key in headlines:
        assert abs(va[key] - vb[key]) <= PAIR_TOLERANCE, f"{key}: {a} {va[key]:.3f} vs {b} {vb[key]:.3f}"


# One test class per notebook (or torch/tf pair): with `pytest -n 2 --dist loadscope`, xdist
# hands out whole classes, so the solved runs spread over the workers while each pair stays
# together. (The nbval cells of one notebook are one scope as well: they share a kernel.)
for _group in sorted(GROUPS):
    _name = "TestSolved_" + re.sub(r"\W", "_", _group)

    def _test(self, _group=_group):
        _solved_and_agree(_group)

    globals()[_name] = type(_name, (), {
        "test_solved_notebooks_run_and_agree": pytest.mark.notebook(_test),
    })
