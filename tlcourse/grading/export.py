"""The gradebook CSV and the feedback pages (``tlcourse grade export``).

The CSV has one row per graded cell of every assignment for every student in the
gradebook, in the columns ``student, notebook, question, points, max_points``;
``question`` is the tlcourse question id of a check cell (or nbgrader's grade id for
another graded cell); an assignment a student did not submit scores 0. Feedback is
nbgrader's (``nbgrader generate_feedback``, with active content stripped), one HTML page
per submission, copied to ``FEEDBACK/<student>/<assignment>.html``.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from tlcourse.grading.course import COURSE_ID, ReleaseError, load_manifest, run_converter

COLUMNS = ["student", "notebook", "question", "points", "max_points"]


def _fmt(x: float) -> str:
    return f"{x:g}"


def gradebook_rows(course: str | Path) -> list[dict]:
    """One dict per (student, assignment, graded cell), from the course gradebook."""
    from nbgrader.api import Gradebook, MissingEntry

    course = Path(course).resolve()
    manifest = load_manifest(course)
    rows = []
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gb:
        students = sorted(s.id for s in gb.students)
        for student in students:
            for assignment, entry in sorted(manifest["assignments"].items()):
                for cell in entry["graded"]:
                    try:
                        grade = gb.find_grade(cell["grade_id"], entry["notebook"], assignment, student)
                        points = float(grade.score or 0.0)
                    except MissingEntry:
                        points = 0.0
                    rows.append({"student": student, "notebook": entry["notebook"],
                                 "question": cell.get("question") or cell["grade_id"],
                                 "points": _fmt(points), "max_points": _fmt(cell["points"])})
    return rows


def write_csv(rows: list[dict], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return path


def feedback(course: str | Path, dest: str | Path, *, progress: bool = True) -> list[Path]:
    """Generate nbgrader feedback for every autograded submission; copy it to ``dest``."""
    from tqdm.auto import tqdm

    course, dest = Path(course).resolve(), Path(dest)
    manifest = load_manifest(course)
    done = []
    assignments = [a for a in sorted(manifest["assignments"])
                   if any((course / "autograded").glob(f"*/{a}/{a}.ipynb"))]
    for assignment in tqdm(assignments, desc="feedback", unit="assignment", disable=not progress):
        ok, log = run_converter("generate_feedback", course, assignment)
        if not ok:
            raise ReleaseError(f"nbgrader generate_feedback {assignment} failed:\n{log}")
        for page in sorted((course / "feedback").glob(f"*/{assignment}/{assignment}.html")):
            student = page.parent.parent.name
            out = dest / student / f"{assignment}.html"
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(page, out)
            done.append(out)
    return done


def summary(rows: list[dict]) -> str:
    totals: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        t = totals.setdefault((r["student"], r["notebook"]), [0.0, 0.0])
        t[0] += float(r["points"])
        t[1] += float(r["max_points"])
    if not totals:
        return "the gradebook is empty"
    w = max(len(s) for s, _ in totals)
    lines = [f"{'student':<{w}}  notebook: points"]
    by_student: dict[str, list[str]] = {}
    for (s, nb), (p, m) in sorted(totals.items()):
        by_student.setdefault(s, []).append(f"{nb}: {p:g}/{m:g}")
    for s, parts in by_student.items():
        lines.append(f"{s:<{w}}  " + ", ".join(parts))
    return "\n".join(lines)
