"""Autograding every collected submission (``tlcourse grade autograde``).

Each submission is graded on its own, in a throw-away copy of the course (the
configuration and a snapshot of the gradebook taken before the batch), by
``nbgrader autograde`` run as a subprocess with a per-cell timeout (nbgrader's) and a
per-notebook time limit (ours: the process tree is killed). The kernel is started by
:mod:`tlcourse.grading.sandbox` (limits, clean environment, ``TLCOURSE_CHECKS=strict``,
and as root an unprivileged user in a private mount namespace).

The score of a graded check cell is its nbgrader score (the cell ran without error, so
the strict check passed) **and** the grader's own verdict on the recorded answer
(:func:`tlcourse.grading.answers.judge`, run here, in a process that never executes
learner code): both must say correct. Only then is the result written to the course's
gradebook, by this process.

A submission that is not a readable notebook, belongs to another assignment, crashes its
kernel or runs out of time gets zero on every cell, and the reason goes in front of its
feedback. The rest of the batch is graded regardless.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tlcourse.grading import answers, sandbox
from tlcourse.grading.course import COURSE_ID, load_manifest
from tlcourse.grading.worker import Worker, WorkerDied

NOTE_TAG = "tlcourse-grading-note"
MAX_OUTPUT_CHARS = 20_000


@dataclass
class CellResult:
    grade_id: str
    question: str | None
    points: float
    max_points: float
    verdict: str = ""  # the grader's own verdict, for tlcourse questions


@dataclass
class SubmissionResult:
    student: str
    assignment: str
    status: str  # "graded" or what went wrong: "unreadable", "wrong assignment", "crashed", "timeout", "error"
    reason: str = ""
    cells: list[CellResult] = field(default_factory=list)
    seconds: float = 0.0
    notebook: object = None  # the autograded notebook, annotated, for feedback

    @property
    def points(self) -> float:
        return sum(c.points for c in self.cells)

    @property
    def max_points(self) -> float:
        return sum(c.max_points for c in self.cells)


# ------------------------------------------------------------------ one submission
def _zero_cells(entry: dict, why: str) -> list[CellResult]:
    return [CellResult(c["grade_id"], c.get("question"), 0.0, c["points"], why) for c in entry["graded"]]


def _note_cell(text: str):
    import nbformat

    cell = nbformat.v4.new_markdown_cell(text)
    cell.metadata["tags"] = [NOTE_TAG]
    return cell


def _fallback_notebook(course: Path, assignment: str, why: str):
    """The student release with the reason in front: the feedback of a failed submission."""
    import nbformat

    nb = nbformat.read(course / "release" / assignment / f"{assignment}.ipynb", as_version=4)
    nb.cells.insert(0, _note_cell(f"**Grading note.** This submission could not be graded and "
                                  f"scores 0: {why}\n\nBelow is the assignment as released."))
    return nb


def _ids_in(nb) -> set[str]:
    ids = set()
    for cell in nb.get("cells", []):
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if isinstance(gid, str):
            ids.add(gid)
    return ids


def _expected_ids(entry: dict) -> set[str]:
    return {c["grade_id"] for c in entry["graded"]} | set(entry.get("exercises", []))


def _sanitize(nb, entry: dict) -> None:
    """Drop nbgrader metadata nbgrader itself would choke on: unknown or repeated grade ids."""
    known = _expected_ids(entry)
    seen = set()
    for cell in nb.cells:
        nbg = cell.get("metadata", {}).get("nbgrader")
        if nbg is None:
            continue
        gid = nbg.get("grade_id") if isinstance(nbg, dict) else None
        if gid not in known or gid in seen:
            del cell.metadata["nbgrader"]
        else:
            seen.add(gid)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None


def _classify_failure(log: str) -> tuple[str, str]:
    if "DeadKernelError" in log or "Kernel died" in log or "kernel died" in log:
        return "crashed", "the kernel died while running the notebook (e.g. os._exit, a crash or running out of memory)"
    if "UnresponsiveKernelError" in log or "became unresponsive" in log or "CellTimeoutError" in log:
        return "timeout", ("a cell ran past the per-cell time limit and the kernel could not be "
                           "interrupted (e.g. an endless loop that ignores interrupts)")
    if "ValidationError" in log or "failed to validate" in log:
        return "error", "the notebook's structure or nbgrader metadata is broken"
    lines = [ln.strip() for ln in log.splitlines() if ln.strip() and "|" not in ln[:2]]
    tail = next((ln for ln in reversed(lines) if "Error" in ln or "error" in ln), lines[-1] if lines else "")
    return "error", f"nbgrader could not grade it ({tail[:300]})"


def _strip_hidden(source: str) -> str:
    out, hidden = [], False
    for line in source.split("\n"):
        if "BEGIN HIDDEN TESTS" in line:
            hidden = True
        elif "END HIDDEN TESTS" in line:
            hidden = False
        elif not hidden:
            out.append(line)
    return "\n".join(out)


def _tidy(nb) -> None:
    """For feedback: drop the answer records and the hidden tests, cap huge outputs."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
            cell.source = _strip_hidden(cell.source)
        kept = []
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if answers.MIME in data:
                continue
            if out.get("output_type") == "stream" and len(out.get("text", "")) > MAX_OUTPUT_CHARS:
                out["text"] = out["text"][:MAX_OUTPUT_CHARS] + "\n... output truncated by the grader ...\n"
            for mime, value in list(data.items()):
                if isinstance(value, str) and len(value) > MAX_OUTPUT_CHARS * 10:
                    data[mime] = value[:MAX_OUTPUT_CHARS] + "\n... output truncated by the grader ..."
            kept.append(out)
        cell.outputs = kept


def _find_cell(nb, grade_id: str):
    for i, cell in enumerate(nb.cells):
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
            return i, cell
    return None, None


class Grader:
    """Grades submissions of one course, one isolated nbgrader run per submission."""

    def __init__(self, course: str | Path, *, limits: sandbox.Limits | None = None, mode: str = "auto",
                 submissions_dir: str | Path | None = None, jobs: int = 1, log=print):
        self.course = Path(course).resolve()
        self.manifest = load_manifest(self.course)
        self.limits = limits or sandbox.Limits()
        self.log = log
        self.extra_hide = [self.course] + ([Path(submissions_dir)] if submissions_dir else [])
        self.mode = self._choose_mode(mode)
        self.work = Path(tempfile.mkdtemp(prefix="tlcourse-grading-"))
        os.chmod(self.work, 0o700)
        self.snapshot = self.work / "gradebook.db"
        shutil.copyfile(self.course / "gradebook.db", self.snapshot)
        self._uid_lock = threading.Lock()
        self._workers: queue.Queue[Worker] = queue.Queue()
        for i in range(max(1, jobs)):
            self._workers.put(Worker(log_path=self.work / f"worker-{i}.log",
                                     memory_bytes=(self.limits.memory_mb + 2048) * 1024 * 1024))
        self._next_uid = sandbox.UID_BASE + (os.getpid() % 100_000) * 1000

    def _choose_mode(self, mode: str) -> str:
        if mode not in ("auto", "user", "none"):
            raise ValueError(f"sandbox mode must be one of auto, user, none; got {mode!r}")
        if mode == "none":
            return "none"
        if not sandbox.is_root():
            if mode == "user":
                raise PermissionError("sandbox mode 'user' needs root (to run kernels as another user)")
            self.log("note: not root, so kernels run as you (limits and a scratch folder only); "
                     "grade untrusted submissions as root for full isolation")
            return "none"
        if not sandbox.namespace_available():
            if mode == "user":
                raise PermissionError("sandbox mode 'user' needs `unshare --mount` (a private mount namespace)")
            self.log("note: no private mount namespace available; kernels run as you with limits only")
            return "none"
        return "user"

    def close(self) -> None:
        while not self._workers.empty():
            self._workers.get().close()
        shutil.rmtree(self.work, ignore_errors=True)

    def _uid(self) -> int:
        with self._uid_lock:
            self._next_uid += 1
            return self._next_uid

    # -- one submission ------------------------------------------------------------
    def grade(self, student: str, assignment: str) -> SubmissionResult:
        import nbformat

        start = time.perf_counter()
        entry = self.manifest["assignments"][assignment]
        res = SubmissionResult(student, assignment, "graded")
        submitted = self.course / "submitted" / student / assignment / f"{assignment}.ipynb"

        def fail(status: str, why: str) -> SubmissionResult:
            res.status, res.reason = status, why
            res.cells = _zero_cells(entry, why)
            res.notebook = _fallback_notebook(self.course, assignment, why)
            res.seconds = round(time.perf_counter() - start, 2)
            return res

        # 1. a readable notebook of this assignment?
        size_mb = submitted.stat().st_size / 1e6 if submitted.exists() else 0
        if not submitted.exists():
            return fail("error", "no notebook was submitted")
        if size_mb > self.limits.max_submission_mb:
            return fail("unreadable", f"the file is {size_mb:.1f} MB, over the limit of {self.limits.max_submission_mb:g} MB")
        try:
            nb = nbformat.reads(submitted.read_text(encoding="utf-8"), as_version=4)
            if not isinstance(nb.get("cells"), list):
                raise ValueError("no list of cells")
        except Exception as err:  # noqa: BLE001 - any unreadable file scores zero
            return fail("unreadable", f"it is not a readable notebook ({type(err).__name__}: {str(err)[:200]})")
        found = _ids_in(nb)
        stamp = nb.get("metadata", {}).get("tlcourse", {})
        stamp = stamp.get("assignment") if isinstance(stamp, dict) else None
        if stamp is not None and stamp != assignment:
            return fail("wrong assignment", f"this is the notebook of assignment {str(stamp)[:80]!r}, "
                                            f"not {assignment!r}")
        if not found & _expected_ids(entry):
            other = [a for a, e in self.manifest["assignments"].items() if a != assignment and found & _expected_ids(e)]
            why = (f"this is the notebook of assignment {other[0]!r}, not {assignment!r}" if other
                   else f"it has none of the exercise or check cells of {assignment!r}")
            return fail("wrong assignment", why)
        _sanitize(nb, entry)

        # 2. grade it in an isolated copy of the course
        work = Path(tempfile.mkdtemp(prefix=f"{assignment}-", dir=self.work))
        uid = self._uid() if self.mode == "user" else None
        scratch = sandbox.make_scratch(uid)
        try:
            log, ok, timed_out = self._run_nbgrader(work, scratch, uid, student, assignment, nb)
            out_path = work / "course" / "autograded" / student / assignment / f"{assignment}.ipynb"
            if timed_out:
                return fail("timeout", f"it ran longer than the limit of {self.limits.notebook_timeout:g} s")
            if not ok or not out_path.exists():
                status, why = _classify_failure(log)
                return fail(status, why)
            graded = nbformat.read(out_path, as_version=4)
            res.cells = self._score(work / "course" / "gradebook.db", graded, entry, student, assignment)
            _tidy(graded)
            res.notebook = graded
        finally:
            sandbox.kill_uid(uid)
            sandbox.kill_pidfile(work / "kernel.pid")
            sandbox.remove_tree(scratch)
            shutil.rmtree(work, ignore_errors=True)
        res.seconds = round(time.perf_counter() - start, 2)
        return res

    def _run_nbgrader(self, work: Path, scratch: Path, uid, student: str, assignment: str, nb):
        """nbgrader autograde on an isolated copy of the course; returns (log, ok, timed out)."""
        import nbformat

        course = work / "course"
        sub_dir = course / "submitted" / student / assignment
        sub_dir.mkdir(parents=True)
        (course / "source" / assignment).mkdir(parents=True)
        shutil.copyfile(self.snapshot, course / "gradebook.db")
        config = (self.course / "nbgrader_config.py").read_text()
        config += (
            "\n# Added for this one submission by `tlcourse grade autograde`.\n"
            f"c.Execute.kernel_name = {sandbox.KERNEL_NAME!r}\n"
            f"c.Execute.timeout = {int(self.limits.cell_timeout)}\n"
            f"c.CourseDirectory.course_id = {COURSE_ID!r}\n"
        )
        (course / "nbgrader_config.py").write_text(config)
        nbformat.write(nb, sub_dir / f"{assignment}.ipynb")
        stamp = self.course / "submitted" / student / assignment / "timestamp.txt"
        if stamp.exists():
            shutil.copyfile(stamp, sub_dir / "timestamp.txt")

        hide, keep = sandbox.hidden_and_kept(self.extra_hide + [self.work]) if uid is not None else ([], [])
        plan = sandbox.KernelPlan(scratch=str(scratch), uid=uid, namespace=uid is not None, hide=hide,
                                  keep=keep, env=sandbox.kernel_env(scratch), limits=self.limits.as_dict(),
                                  pidfile=str(work / "kernel.pid"))
        jupyter_path = sandbox.write_kernelspec(work / "jupyter", plan)
        (work / "runtime").mkdir()
        logfile = work / "nbgrader.log"
        logfile.touch()
        task = {"course": str(course), "student": student, "assignment": assignment, "log": str(logfile),
                "env": {"JUPYTER_PATH": str(jupyter_path), "JUPYTER_RUNTIME_DIR": str(work / "runtime"),
                        "TLCOURSE_CHECKS": "strict"}}
        worker = self._workers.get()
        timed_out, ok = False, False
        try:
            reply = worker.run(task, timeout=self.limits.notebook_timeout)
            ok = bool(reply.get("ok"))
        except TimeoutError:
            timed_out = True
        except WorkerDied as err:
            with open(logfile, "a") as fh:
                fh.write(f"\n[tlcourse] {err} (DeadKernelError or out of memory in the grader)\n")
        finally:
            self._workers.put(worker)
        log = logfile.read_text(errors="replace")[-20_000:]
        logs = self.course / "autograde_logs" / student
        logs.mkdir(parents=True, exist_ok=True)
        (logs / f"{assignment}.log").write_text(log)
        return log, ok, timed_out

    def _score(self, db: Path, graded, entry: dict, student: str, assignment: str) -> list[CellResult]:
        from nbgrader.api import Gradebook, MissingEntry

        cells = []
        with Gradebook(f"sqlite:///{db}", COURSE_ID) as gb:
            for c in entry["graded"]:
                gid, qid, max_points = c["grade_id"], c.get("question"), c["points"]
                try:
                    auto = gb.find_grade(gid, assignment, assignment, student).auto_score
                except MissingEntry:
                    auto = None
                score = float(auto or 0.0)
                verdict = ""
                if qid:
                    idx, cell = _find_cell(graded, gid)
                    records = [p for p in answers.payloads(cell) if isinstance(p, dict)] if cell else []
                    if cell is None:
                        verdict = "Incorrect: the check cell is missing"
                    elif len(records) != 1:
                        verdict = ("Incorrect: the check cell did not run to the grader's record"
                                   if not records else "Incorrect: more than one answer recorded")
                    else:
                        verdict = str(answers.judge(qid, records[0]))
                        verdict = verdict.split("] ", 1)[-1]
                    correct = verdict.startswith("Correct")
                    if score > 0 and not correct and cell is not None:
                        graded.cells.insert(idx + 1, _note_cell(
                            f"**Grading note ({qid}).** The check above passed in your notebook, but the "
                            f"grader's own check of your answer says: {verdict}. This cell scores 0."))
                    if not correct:
                        score = 0.0
                cells.append(CellResult(gid, qid, min(score, max_points), max_points, verdict))
        return cells


# ------------------------------------------------------------------ the batch
def submissions(course: Path) -> list[tuple[str, str]]:
    """(student, assignment) of every collected submission of a released assignment."""
    manifest = load_manifest(course)
    out = []
    root = course / "submitted"
    if not root.exists():
        return out
    for student_dir in sorted(root.iterdir()):
        for a_dir in sorted(student_dir.iterdir()) if student_dir.is_dir() else []:
            if a_dir.name in manifest["assignments"]:
                out.append((student_dir.name, a_dir.name))
    return out


def record(course: Path, res: SubmissionResult) -> None:
    """Write one submission's scores to the course gradebook and its notebook to ``autograded/``."""
    import nbformat
    from nbgrader.api import Gradebook

    dest = course / "autograded" / res.student / res.assignment
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    nbformat.write(res.notebook, dest / f"{res.assignment}.ipynb")
    stamp = course / "submitted" / res.student / res.assignment / "timestamp.txt"
    if stamp.exists():
        shutil.copyfile(stamp, dest / "timestamp.txt")
    import warnings

    with warnings.catch_warnings(), Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gb:
        warnings.simplefilter("ignore")  # SQLAlchemy's notes on nbgrader's own session use
        gb.update_or_create_student(res.student)
        gb.update_or_create_submission(res.assignment, res.student)
        for c in res.cells:
            grade = gb.find_grade(c.grade_id, res.assignment, res.assignment, res.student)
            grade.auto_score = c.points
            grade.manual_score = None
            grade.needs_manual_grade = False
        gb.db.commit()
    status_file = course / "tlcourse_status.json"
    status = json.loads(status_file.read_text()) if status_file.exists() else {}
    status[f"{res.student}/{res.assignment}"] = {
        "status": res.status, "reason": res.reason, "points": res.points, "max_points": res.max_points,
        "cells": {c.grade_id: c.verdict for c in res.cells},
    }
    status_file.write_text(json.dumps(status, indent=1, sort_keys=True) + "\n")


def autograde(course: str | Path, *, jobs: int = 1, limits: sandbox.Limits | None = None, mode: str = "auto",
              students: list[str] | None = None, assignments: list[str] | None = None,
              submissions_dir: str | Path | None = None, progress: bool = True,
              log=print) -> list[SubmissionResult]:
    """Grade every collected submission; returns the results (also written to the gradebook)."""
    from tqdm.auto import tqdm

    course = Path(course).resolve()
    todo = [(s, a) for s, a in submissions(course)
            if (not students or s in students) and (not assignments or a in assignments)]
    if not todo:
        log(f"no submissions to grade in {course / 'submitted'}: run `tlcourse grade collect` first")
        return []
    grader = Grader(course, limits=limits, mode=mode, submissions_dir=submissions_dir, jobs=jobs, log=log)
    results = []
    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool, \
                tqdm(total=len(todo), desc="autograde", unit="nb", disable=not progress) as bar:
            futures = {pool.submit(grader.grade, s, a): (s, a) for s, a in todo}
            for fut in as_completed(futures):
                s, a = futures[fut]
                try:
                    res = fut.result()
                except Exception as err:  # noqa: BLE001 - one submission never stops the batch
                    entry = grader.manifest["assignments"][a]
                    why = f"the grader failed on it ({type(err).__name__}: {err})"
                    res = SubmissionResult(s, a, "error", why, _zero_cells(entry, why),
                                           notebook=_fallback_notebook(course, a, why))
                record(course, res)
                results.append(res)
                bar.update(1)
    finally:
        grader.close()
    results.sort(key=lambda r: (r.student, r.assignment))
    log(summary(results, grader.mode))
    return results


def summary(results: list[SubmissionResult], mode: str = "") -> str:
    if not results:
        return "nothing graded"
    w = max(len(r.student) for r in results)
    wa = max(len(r.assignment) for r in results)
    lines = [f"\n{'student':<{w}}  {'assignment':<{wa}}  {'points':>9}  {'time (s)':>8}  status"]
    for r in results:
        status = r.status + (f": {r.reason}" if r.reason else "")
        lines.append(f"{r.student:<{w}}  {r.assignment:<{wa}}  {r.points:>4g}/{r.max_points:<4g}  "
                     f"{r.seconds:8.1f}  {status[:110]}")
    failed = sum(r.status != "graded" for r in results)
    lines.append(f"graded {len(results)} submission(s); {failed} could not be run and score 0"
                 + (f"; kernels sandboxed as: {mode}" if mode else ""))
    return "\n".join(lines)
