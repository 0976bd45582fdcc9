"""Building the nbgrader course directory from the course's notebooks (``tlcourse grade release``).

One nbgrader assignment per notebook that has exercises; the assignment and its only
notebook are named after the notebook (``00_welcome``)::

    COURSE/
      nbgrader_config.py        written here: placeholders, hidden tests, limits
      tlcourse_grading.json     the manifest: assignments, graded cells, their questions
      gradebook.db              nbgrader's gradebook (created by generate_assignment)
      source/00_welcome/00_welcome.ipynb    solutions filled in, with nbgrader markers
      release/00_welcome/00_welcome.ipynb   the student version (blank placeholders)

The **source** version of a notebook is the course notebook with every exercise cell
holding its solution between ``### BEGIN SOLUTION`` / ``### END SOLUTION``, and every
check cell preceded by a hidden test (``### BEGIN HIDDEN TESTS``) that records the
answer for the grader's independent verdict (see :mod:`tlcourse.grading.answers`).
``nbgrader generate_assignment`` then writes the **release**: nbgrader strips the hidden
tests, and :class:`~tlcourse.grading.preprocessors.RestorePlaceholders` puts back each
exercise cell's own blank form, so the release matches the course notebook cell for cell
(:func:`verify_release` checks this).
"""

from __future__ import annotations

import ast
import json
import os
import sys
from pathlib import Path

MANIFEST = "tlcourse_grading.json"
COURSE_ID = "tlcourse"

CONFIG_TEMPLATE = '''\
# nbgrader configuration of a tlcourse course, written by `tlcourse grade release`.
# nbgrader reads it from the course folder; the `tlcourse grade ...` commands run
# nbgrader from there.
from nbgrader.converters import GenerateAssignment
from nbgrader.preprocessors import ClearSolutions

from tlcourse.grading.preprocessors import RestorePlaceholders

c = get_config()  # noqa: F821 - provided by traitlets when nbgrader loads this file
c.CourseDirectory.course_id = {course_id!r}

# The student release keeps our placeholder form: each exercise cell gets back its own
# blank (RestorePlaceholders); any other solution region becomes the bare placeholder.
c.ClearSolutions.code_stub = {{"python": "____"}}
c.GenerateAssignment.preprocessors = [
    RestorePlaceholders if p is ClearSolutions else p
    for p in GenerateAssignment.class_traits()["preprocessors"].default()
]

# A deleted check cell is put back (and graded) rather than silently missing.
c.OverwriteCells.add_missing_cells = True

# Limits while autograding (the tlcourse commands also enforce a per-notebook limit).
c.Execute.timeout = {cell_timeout}
c.Execute.interrupt_on_timeout = True
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 60

# Feedback pages show learners' outputs: strip scripts and other active content.
c.HTMLExporter.sanitize_html = True
'''


class ReleaseError(RuntimeError):
    """The course directory could not be built, or the release does not look like the course."""


# ------------------------------------------------------------------ the source version
def check_call_args(source: str) -> str | None:
    """The argument text of the first ``<...>.check(...)`` call in a check cell's source."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "check":
            parts = [ast.get_source_segment(source, a) for a in node.args]
            for kw in node.keywords:
                value = ast.get_source_segment(source, kw.value)
                parts.append(f"**{value}" if kw.arg is None else f"{kw.arg}={value}")
            return ", ".join(parts)
    return None


def hidden_test(question_id: str, check_source: str) -> str:
    """The hidden test put before a check cell's visible code in the source version."""
    args = check_call_args(check_source)
    if args is None:
        raise ReleaseError(f"check cell of {question_id} has no `.check(...)` call: {check_source!r}")
    sep = ", " if args else ""
    return (
        "### BEGIN HIDDEN TESTS\n"
        "from tlcourse.grading.answers import record as _tlcourse_record\n"
        f"_tlcourse_record({question_id!r}{sep}{args})\n"
        "### END HIDDEN TESTS\n"
    )


def graded_cells(nb) -> list[dict]:
    """The graded (autograder-test) cells: grade id, question id (if a tlcourse check), points."""
    out = []
    for cell in nb.cells:
        nbg = cell.get("metadata", {}).get("nbgrader", {})
        if nbg.get("grade"):
            out.append({
                "grade_id": nbg["grade_id"],
                "question": cell.get("metadata", {}).get("tlcourse", {}).get("check"),
                "points": float(nbg.get("points", 0)),
            })
    return out


def source_version(nb, assignment: str | None = None):
    """The notebook with solutions (with nbgrader markers) and hidden tests; a new object.

    The notebook's metadata records its assignment (``tlcourse.assignment``), so that a
    notebook submitted for the wrong assignment is recognised."""
    import copy

    from tlcourse.exercises.fill import exercise_cells, fill_solutions

    nb = copy.deepcopy(nb)
    if assignment:
        nb.metadata.setdefault("tlcourse", {})["assignment"] = assignment
    for cell, _qid in exercise_cells(nb):
        cell.metadata["tlcourse"]["blank"] = cell.source
    fill_solutions(nb, markers=True)
    for cell in nb.cells:
        meta = cell.get("metadata", {})
        qid = meta.get("tlcourse", {}).get("check")
        if qid and meta.get("nbgrader", {}).get("grade"):
            cell.source = hidden_test(qid, cell.source) + cell.source
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def has_exercises(nb) -> bool:
    return any(c.get("metadata", {}).get("tlcourse", {}).get("exercise") for c in nb.cells)


# ------------------------------------------------------------------ the course directory
def write_config(course: Path, *, cell_timeout: int = 120) -> Path:
    path = course / "nbgrader_config.py"
    path.write_text(CONFIG_TEMPLATE.format(course_id=COURSE_ID, cell_timeout=int(cell_timeout)))
    return path


def load_manifest(course: str | Path) -> dict:
    path = Path(course) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `tlcourse grade release --course {course}` first")
    return json.loads(path.read_text())


def run_converter(name: str, course: Path, assignment: str, student: str | None = None):
    """nbgrader's ``name`` converter, in this process (see :mod:`tlcourse.grading.worker`)."""
    from tlcourse.grading.worker import run_converter as run

    bindir = str(Path(sys.executable).parent)  # nbgrader calls `alembic` by name
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    return run(name, course, assignment, student)


def notebook_paths(sources: list[str | Path]) -> list[Path]:
    """Notebook files from files and folders (a folder gives its ``NN_*.ipynb``)."""
    from tlcourse.notebook_tools import notebooks

    out: list[Path] = []
    for s in sources:
        p = Path(s)
        if p.is_dir():
            out += notebooks(p)
        elif p.suffix == ".ipynb" and p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: not a notebook or a folder of notebooks")
    return out


def release(course: str | Path, notebooks: list[str | Path], *, cell_timeout: int = 120,
            progress: bool = True) -> dict:
    """Build (or update) the course directory and generate the student release.

    Returns the manifest. Raises :class:`ReleaseError` if nbgrader fails or the release
    does not match the course notebooks.
    """
    import nbformat
    from tqdm.auto import tqdm

    course = Path(course).resolve()
    course.mkdir(parents=True, exist_ok=True)
    os.chmod(course, 0o700)  # the gradebook and the solutions are the instructor's alone
    write_config(course, cell_timeout=cell_timeout)
    manifest = {"course_id": COURSE_ID, "assignments": {}}
    if (course / MANIFEST).exists():
        manifest = load_manifest(course)
    paths = [p for p in notebook_paths(notebooks)]
    chosen = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if has_exercises(nb):
            chosen.append((path, nb))
    if not chosen:
        raise ReleaseError(f"no notebook with exercises among {[str(p) for p in paths]}")
    for path, nb in tqdm(chosen, desc="release", unit="nb", disable=not progress):
        name = path.stem
        src_dir = course / "source" / name
        src_dir.mkdir(parents=True, exist_ok=True)
        nbformat.write(source_version(nb, name), src_dir / f"{name}.ipynb")
        ok, log = run_converter("generate_assignment", course, name)
        if not ok:
            raise ReleaseError(f"nbgrader generate_assignment {name} failed:\n{log}")
        released = nbformat.read(course / "release" / name / f"{name}.ipynb", as_version=4)
        problems = verify_release(nb, released)
        if problems:
            raise ReleaseError(f"the release of {name} differs from {path}:\n  " + "\n  ".join(problems))
        manifest["assignments"][name] = {
            "notebook": name,
            "origin": path.name,
            "graded": graded_cells(nb),
            "exercises": [c.metadata["nbgrader"]["grade_id"] for c in nb.cells
                          if c.get("metadata", {}).get("tlcourse", {}).get("exercise")],
        }
    (course / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def verify_release(original, released) -> list[str]:
    """Differences between a course notebook and its student release, cell by cell (code and
    markdown sources; nbgrader's own metadata is ignored). Empty when they look the same."""
    problems = []
    a = [c for c in original.cells]
    b = [c for c in released.cells]
    if len(a) != len(b):
        return [f"{len(a)} cells in the course notebook, {len(b)} in the release"]
    for i, (x, y) in enumerate(zip(a, b)):
        if x.cell_type != y.cell_type:
            problems.append(f"cell {i}: {x.cell_type} became {y.cell_type}")
        elif x.source.rstrip("\n") != y.source.rstrip("\n"):
            problems.append(f"cell {i}: {x.source[:60]!r} became {y.source[:60]!r}")
    text = "\n".join(c.source for c in b)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS", "_tlcourse_record"):
        if marker in text:
            problems.append(f"the release still contains {marker!r}")
    return problems
