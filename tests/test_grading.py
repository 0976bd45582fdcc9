"""The instructor pipeline on nbgrader: release, collect, autograde, export.

One module-scoped run grades a class of students (``tests/fixtures/submissions``):
correct, blank and wrong work, and hostile notebooks that tamper with the checker, edit
or delete check cells, attack the gradebook, loop forever, exit, crash the kernel, print
megabytes, are not JSON, or belong to another assignment; plus the real welcome notebook
end to end. The gradebook CSV must match the expected scores exactly.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import sys
import time
from pathlib import Path

import nbformat
import pytest
from conftest import NOTEBOOKS, REPORTS

pytest.importorskip("nbgrader")

from tlcourse.cli import main as cli  # noqa: E402
from tlcourse.grading import answers, sandbox  # noqa: E402
from tlcourse.grading.course import check_call_args, hidden_test, source_version, verify_release  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "submissions"))
import make_submissions as fx  # noqa: E402

MODE = "user" if sandbox.is_root() and sandbox.namespace_available() else "none"
NOT_RUN = {"invalid_json": "unreadable", "other_assignment": "wrong assignment",
           "stubborn_loop": "timeout", "os_exit": "crashed", "kernel_crash": "crashed", "slow": "timeout"}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("grading")
    course, subs, fb = root / "course", root / "submissions", root / "feedback"
    nbformat.write(fx.fixture_notebook(), root / f"{fx.FIXTURE}.ipynb")
    times = {}
    t = time.perf_counter()
    assert cli(["grade", "release", "--course", str(course), "--notebooks",
                str(root / f"{fx.FIXTURE}.ipynb"), str(NOTEBOOKS / f"{fx.WELCOME}.ipynb")]) == 0
    times["release"] = time.perf_counter() - t
    expected = fx.make_submissions(course, subs)
    if MODE != "user":  # without root the kernel runs as us: the gradebook attack is not contained
        for key in [k for k in expected if k[0] == "writer"]:
            del expected[key]
        for f in (subs / "writer").iterdir():
            f.unlink()
        (subs / "writer").rmdir()
    originals = {p: _sha(p) for p in subs.rglob("*") if p.is_file()}
    t = time.perf_counter()
    assert cli(["grade", "collect", "--course", str(course), "--submissions", str(subs)]) == 0
    t = time.perf_counter()
    assert cli(["grade", "autograde", "--course", str(course), "--submissions", str(subs), "--jobs", "2",
                "--cell-timeout", "15", "--notebook-timeout", "30", "--sandbox", MODE]) == 0
    times["autograde"] = time.perf_counter() - t
    t = time.perf_counter()
    assert cli(["grade", "export", "--course", str(course), "--csv", str(root / "grades.csv"),
                "--feedback", str(fb)]) == 0
    times["export"] = time.perf_counter() - t
    # (not in REPORTS: that folder holds notebook reports only)
    (REPORTS.parent / "grading_times.json").parent.mkdir(parents=True, exist_ok=True)
    (REPORTS.parent / "grading_times.json").write_text(json.dumps({"mode": MODE, **{k: round(v, 1) for k, v in times.items()}}))
    status = json.loads((course / "tlcourse_status.json").read_text())
    return {"root": root, "course": course, "subs": subs, "feedback": fb, "expected": expected,
            "originals": originals, "status": status, "csv": root / "grades.csv"}


def _autograded(run, student, assignment=fx.FIXTURE):
    return nbformat.read(run["course"] / "autograded" / student / assignment / f"{assignment}.ipynb", as_version=4)


def _text(html_path: Path) -> str:
    import html
    import re

    t = html_path.read_text()
    t = re.sub(r"<(style|script).*?</\1>", "", t, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", t)))


# ------------------------------------------------------------------ the whole pipeline
@pytest.mark.slow
def test_gradebook_csv_matches_the_expected_scores_exactly(run):
    with open(run["csv"]) as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["student", "notebook", "question", "points", "max_points"]
    got = {(r["student"], r["notebook"], r["question"]): float(r["points"]) for r in rows}
    assert len(got) == len(rows), "one row per graded cell"
    assert got == {k: float(v) for k, v in run["expected"].items()}
    assert all(r["max_points"] == "1" for r in rows)


@pytest.mark.slow
def test_each_hostile_case_has_its_status(run):
    for key, info in run["status"].items():
        student = key.split("/")[0]
        want = NOT_RUN.get(student, "graded") if key.endswith("/" + fx.FIXTURE) else "graded"
        assert info["status"] == want, (key, info)
        if want != "graded":
            assert info["reason"] and info["points"] == 0


@pytest.mark.slow
def test_originals_are_never_modified(run):
    now = {p: _sha(p) for p in run["subs"].rglob("*") if p.is_file()}
    assert now == run["originals"]


@pytest.mark.slow
def test_collect_copies_every_notebook_and_skips_the_rest(run):
    submitted = run["course"] / "submitted"
    for student_dir in run["subs"].iterdir():
        for f in student_dir.glob("*.ipynb"):
            if f.stem in (fx.FIXTURE, fx.WELCOME):
                copy = submitted / student_dir.name / f.stem / f"{f.stem}.ipynb"
                assert _sha(copy) == _sha(f)
    assert not (submitted / "full" / "99_unknown").exists()


@pytest.mark.slow
def test_release_looks_like_the_course_notebooks(run):
    course = run["course"]
    released = nbformat.read(course / "release" / fx.WELCOME / f"{fx.WELCOME}.ipynb", as_version=4)
    assert verify_release(nbformat.read(NOTEBOOKS / f"{fx.WELCOME}.ipynb", as_version=4), released) == []
    fixture = nbformat.read(course / "release" / fx.FIXTURE / f"{fx.FIXTURE}.ipynb", as_version=4)
    assert verify_release(fx.fixture_notebook(), fixture) == []
    blanks = [c.source for c in fixture.cells if c.metadata.get("tlcourse", {}).get("exercise")]
    assert blanks == [fx.BLANKS[q] for q in fx.QUESTIONS]
    source = (course / "source" / fx.FIXTURE / f"{fx.FIXTURE}.ipynb").read_text()
    assert "BEGIN SOLUTION" in source and "BEGIN HIDDEN TESTS" in source


@pytest.mark.slow
def test_edited_and_deleted_check_cells_are_restored(run):
    nb = _autograded(run, "edits_checks")
    checks = {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells
              if c.get("metadata", {}).get("nbgrader", {}).get("grade")}
    assert checks["getting_started_q1_check"] == fx.CHECKS["getting_started.q1"]
    assert fx.CHECKS["transfer_basics.q2"] in checks["transfer_basics_q2_check"]  # added back


@pytest.mark.slow
def test_tampering_is_caught_by_the_independent_verdict(run):
    for student in ("patches_checker", "fakes_modules", "input_transformer", "lying_object"):
        verdicts = run["status"][f"{student}/{fx.FIXTURE}"]["cells"]
        assert not verdicts["getting_started_q1_check"].startswith("Correct"), (student, verdicts)
        page = _text(run["feedback"] / student / f"{fx.FIXTURE}.html")
        assert "The check above passed in your notebook, but the grader" in page


@pytest.mark.slow
def test_the_gradebook_attack_changed_nothing(run):
    if MODE != "user":
        pytest.skip("the gradebook attack is only contained when grading as root")
    assert not (run["course"] / "autograded" / "writer" / "planted").exists()
    nb = _autograded(run, "writer")
    out = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    line = next(ln for ln in out.splitlines() if ln.startswith("ATTEMPTS "))
    attempts = dict(ast.literal_eval(line.split(" ", 1)[1]))
    for what in ("course gradebook", "another submission", "an original", "the grader's copy",
                 "any gradebook", "kill the grader"):
        assert attempts[what] != "SUCCEEDED", (what, attempts)


@pytest.mark.slow
def test_feedback_pages_explain_zero_and_stay_small(run):
    fb = run["feedback"]
    pages = sorted(p.relative_to(fb).as_posix() for p in fb.rglob("*.html"))
    assert len(pages) == sum(1 for k in run["status"])
    assert "kernel died" in _text(fb / "kernel_crash" / f"{fx.FIXTURE}.html")
    assert "not a readable notebook" in _text(fb / "invalid_json" / f"{fx.FIXTURE}.html")
    assert "00_welcome" in _text(fb / "other_assignment" / f"{fx.FIXTURE}.html")
    assert (fb / "big_output" / f"{fx.FIXTURE}.html").stat().st_size < 1_000_000
    assert "HIDDEN TESTS" not in (fb / "full" / f"{fx.FIXTURE}.html").read_text()


# ------------------------------------------------------------------ the parts, quickly
def test_hidden_test_repeats_the_check_arguments():
    assert check_call_args("ex.q1.check(n_params)") == "n_params"
    assert check_call_args("ex.q3.check(transfer_wins_at_1, runs=runs)") == "transfer_wins_at_1, runs=runs"
    code = hidden_test("transfer_basics.q3", "ex.q3.check(transfer_wins_at_1, runs=runs)")
    assert "_tlcourse_record('transfer_basics.q3', transfer_wins_at_1, runs=runs)" in code


def test_source_version_fills_solutions_and_keeps_the_blank():
    nb = source_version(fx.fixture_notebook(), "fixture")
    ex = [c for c in nb.cells if c.metadata.get("tlcourse", {}).get("exercise")]
    assert all("### BEGIN SOLUTION" in c.source for c in ex)
    assert [c.metadata["tlcourse"]["blank"] for c in ex] == [fx.BLANKS[q] for q in fx.QUESTIONS]
    assert nb.metadata["tlcourse"]["assignment"] == "fixture"


def _judge(qid, *answer, **context):
    import numpy as np  # noqa: F401 - answers below use it

    payload = answers._payload(qid, answer, context)
    return answers.judge(qid, json.loads(json.dumps(payload)))


def test_judge_on_recorded_answers():
    import numpy as np

    from tlcourse.exercises import ____

    assert _judge("getting_started.q1", 7850).correct
    assert not _judge("getting_started.q1", 7840).correct
    assert _judge("getting_started.q1", ____).status == "not attempted"
    assert _judge("getting_started.q2", {"correct", "incorrect", "not attempted"}).correct
    assert _judge("transfer_basics.q2", lambda X, W, b: np.maximum(0, X @ W + b)).correct
    assert not _judge("transfer_basics.q2", lambda X, W, b: X @ W + b).correct
    assert _judge("transfer_basics.q2", lambda X, W, b: ____).status == "not attempted"

    class Seven(int):
        def __eq__(self, other):
            return other == 7850

        __hash__ = int.__hash__

    assert not _judge("getting_started.q1", Seven(1)).correct
    runs = [dict(method="transfer", labels_per_class=1, seed=0, acc=0.7),
            dict(method="scratch", labels_per_class=1, seed=0, acc=0.6)]
    assert _judge("transfer_basics.q3", True, runs=runs).correct


def _examples():
    from tlcourse.exercises import all_questions

    for qid, q in sorted(all_questions().items()):
        good, bad = q.examples()
        for i, args in enumerate(good + bad):
            yield pytest.param(qid, args, id=f"{qid}-{'good' if i < len(good) else 'bad'}{i}")


@pytest.mark.parametrize("qid, args", list(_examples()))
def test_out_of_kernel_verdict_agrees_with_the_checker(qid, args):
    """Every question's examples: the grader's verdict on the record is the checker's own.
    (A question whose checker hands learners' functions objects that are not data fails here:
    the grader could not judge it outside the kernel.)"""
    from tlcourse.exercises import get

    want = get(qid).evaluate(*args)
    got = answers.judge(qid, json.loads(json.dumps(answers._payload(qid, args, {}))))
    assert got.status == want.status, (got, want)


def test_judge_rejects_forged_and_malformed_records():
    good = answers._payload("getting_started.q1", (7850,), {})
    assert not answers.judge("getting_started.q2", good).correct  # another question's record
    assert not answers.judge("getting_started.q1", {"question": "getting_started.q1", "verdict": "correct"}).correct
    assert not answers.judge("getting_started.q1", {"question": "getting_started.q1",
                                                    "args": {"__pickle__": "x"}, "kwargs": []}).correct
    assert not answers.judge("getting_started.q1", "correct").correct
    fn = answers._payload("transfer_basics.q2", (lambda X, W, b: X,), {})
    fn["args"]["__tuple__"][0]["__function__"]["calls"] = []  # claims a function it never ran
    assert not answers.judge("transfer_basics.q2", fn).correct


def test_encode_decode_round_trip():
    import numpy as np

    value = {"a": [1, 2.5, None, True, "x"], (1, 2): frozenset({3}), "arr": np.arange(6).reshape(2, 3),
             "s": np.float32(1.5), "n": float("nan")}
    back = answers.decode(json.loads(json.dumps(answers.encode(value))))
    assert back["a"] == value["a"] and back[(1, 2)] == frozenset({3})
    assert np.array_equal(back["arr"], value["arr"]) and back["arr"].dtype == value["arr"].dtype
    assert back["s"] == np.float32(1.5) and type(back["s"]) is np.float32
    assert np.isnan(back["n"])
    assert isinstance(answers.decode(answers.encode(object())), answers._Unsupported)


def test_observed_records_are_judged_by_the_grader():
    """A question whose answer is a live model is judged on the observation its kernel recorded:
    the grader applies its own rules to it, and a record that claims a verdict is refused."""
    from tlcourse.exercises import get

    q = get("feature_extraction.q1")
    assert q.observes()
    good, bad = q.examples()
    record = answers._payload("feature_extraction.q1", good[0], {})
    assert set(record) == {"question", "observed"}
    assert answers.judge("feature_extraction.q1", record).correct
    # the same observation with the head frozen too: the grader's rules say incorrect
    forged = json.loads(json.dumps(record))
    observation = answers.decode(forged["observed"])
    observation["counts"]["head_frozen"] = 650
    forged["observed"] = answers.encode(observation)
    assert not answers.judge("feature_extraction.q1", forged).correct
    # a failed observation can only be "incorrect" or "not attempted", never "correct"
    claim = {"question": "feature_extraction.q1", "failed": {"status": "correct", "message": "trust me"}}
    assert not answers.judge("feature_extraction.q1", claim).correct
    failed = answers._payload("feature_extraction.q1", (good[0][0],), {})  # no model passed
    assert failed["failed"]["status"] == "incorrect"
    assert answers.judge("feature_extraction.q1", failed).status == "incorrect"
