"""Copying a folder of submissions into the course (``tlcourse grade collect``).

The submissions folder holds one folder per student, and in it one notebook per
assignment, named after the assignment::

    SUBMISSIONS/alice/00_welcome.ipynb
    SUBMISSIONS/alice/01_what_is_transfer.ipynb
    SUBMISSIONS/bob/00_welcome.ipynb

Each is **copied** (never moved or edited) to nbgrader's layout,
``COURSE/submitted/<student>/<assignment>/<assignment>.ipynb``, with a ``timestamp.txt``
holding the file's modification time. Anything else is skipped and reported: files that
are not a notebook of a released assignment, symbolic links, and folder names that are
not valid student ids (letters, digits, ``_ . @ -``).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from tlcourse.grading.course import load_manifest

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")


@dataclass
class Collected:
    copied: list[tuple[str, str]] = field(default_factory=list)  # (student, assignment)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why)


def collect(course: str | Path, submissions: str | Path, *, progress: bool = True) -> Collected:
    from tqdm.auto import tqdm

    course, submissions = Path(course).resolve(), Path(submissions).resolve()
    if not submissions.is_dir():
        raise FileNotFoundError(f"{submissions} is not a folder")
    assignments = set(load_manifest(course)["assignments"])
    result = Collected()
    candidates = []
    for student_dir in sorted(submissions.iterdir()):
        rel = student_dir.relative_to(submissions)
        if student_dir.is_symlink() or not student_dir.is_dir():
            result.skipped.append((str(rel), "not a student folder"))
            continue
        if not STUDENT_ID.match(student_dir.name):
            result.skipped.append((str(rel), "not a valid student id"))
            continue
        for f in sorted(student_dir.iterdir()):
            frel = str(f.relative_to(submissions))
            if f.is_symlink():
                result.skipped.append((frel, "symbolic link"))
            elif not f.is_file() or f.suffix != ".ipynb":
                result.skipped.append((frel, "not a notebook"))
            elif f.stem not in assignments:
                result.skipped.append((frel, f"no assignment {f.stem!r} (released: {sorted(assignments)})"))
            else:
                candidates.append((student_dir.name, f.stem, f))
    for student, assignment, f in tqdm(candidates, desc="collect", unit="nb", disable=not progress):
        dest_dir = course / "submitted" / student / assignment
        if dest_dir.exists():
            shutil.rmtree(dest_dir)
        dest_dir.mkdir(parents=True)
        shutil.copyfile(f, dest_dir / f"{assignment}.ipynb")
        stamp = datetime.fromtimestamp(f.stat().st_mtime, tz=timezone.utc)
        (dest_dir / "timestamp.txt").write_text(stamp.strftime("%Y-%m-%d %H:%M:%S.%f %Z"))
        result.copied.append((student, assignment))
    return result


def summary(result: Collected) -> str:
    lines = [f"collected {len(result.copied)} notebook(s) from "
             f"{len({s for s, _ in result.copied})} student(s)"]
    for path, why in result.skipped:
        lines.append(f"  skipped {path}: {why}")
    return "\n".join(lines)
