"""Keeping the course's notebooks in shape: stripping outputs and checking conventions.

``python -m tlcourse.notebook_tools refresh notebooks`` re-executes the notebooks that have
``keep_output`` cells and stores those cells' outputs; ``strip`` removes outputs and execution
counts (keeping outputs only of cells whose metadata says ``"keep_output": true``, the
nbstripout convention, used for the few cells nbval compares); ``check`` lists every
broken convention (used by the tests):

* committed without outputs, kernelspec ``python3``;
* one code cell tagged ``parameters`` (papermill);
* no absolute paths, one framework per notebook;
* exercise cells name a known question and carry nbgrader metadata.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

_ABS_PATH = re.compile(r"""(['"])(/(home|root|work|tmp|Users|usr|opt|mnt)/|[A-Za-z]:\\\\)""")
_TORCH = re.compile(r"^\s*(import torch|from torch)", re.M)
_TF = re.compile(r"^\s*(import tensorflow|from tensorflow|import keras|from keras)", re.M)


def notebooks(folder: str | Path = "notebooks") -> list[Path]:
    """The course's notebooks in order (their names start with a two-digit number)."""
    return sorted(p for p in Path(folder).glob("[0-9][0-9]_*.ipynb"))


def strip(path: Path) -> bool:
    """Remove outputs in place; return True if the file changed."""
    text = path.read_text()
    nb = json.loads(text)
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("execution", None)
        if cell["cell_type"] != "code":
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
            continue
        if cell.get("metadata", {}).get("keep_output"):
            continue  # nbval compares these; it wants their execution count too
        cell["outputs"] = []
        cell["execution_count"] = None
    nb.get("metadata", {}).pop("papermill", None)
    nb.get("metadata", {}).pop("widgets", None)
    new = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
    if new != text:
        path.write_text(new)
        return True
    return False


def refresh_kept_outputs(path: Path) -> int:
    """Execute a notebook (blank, default parameters) and store the outputs of its
    ``keep_output`` cells — the cells nbval compares — back into it; returns their number."""
    import tempfile

    import nbformat

    from tlcourse.runner import execute

    nb = nbformat.read(path, as_version=4)
    kept = {c.id: c for c in nb.cells if c.get("metadata", {}).get("keep_output")}
    if not kept:
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / path.name
        report = execute(path, out, variant="refresh")
        if not report.ok:
            raise RuntimeError(f"{path} failed: {report.error}")
        done = nbformat.read(out, as_version=4)
    for cell in done.cells:
        if cell.get("id") in kept:
            kept[cell.id].outputs = [o for o in cell.outputs if o.get("name") != "stderr"]
            kept[cell.id].execution_count = 1
    nbformat.write(nb, path)
    strip(path)
    return len(kept)


def framework_of(nb: dict) -> str | None:
    """'torch', 'tf', 'both' or None, from the notebook's import lines."""
    src = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    torch, tf = bool(_TORCH.search(src)), bool(_TF.search(src))
    return "both" if torch and tf else "torch" if torch else "tf" if tf else None


def problems(path: Path) -> list[str]:
    """Every convention the notebook at ``path`` breaks (empty list: all good)."""
    from tlcourse.exercises import all_questions

    out: list[str] = []
    try:
        nb = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        return [f"not valid JSON: {err}"]
    if nb.get("metadata", {}).get("kernelspec", {}).get("name") != "python3":
        out.append("kernelspec name is not python3")
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for i, cell in enumerate(code):
        if cell.get("outputs") and not cell.get("metadata", {}).get("keep_output"):
            out.append(f"code cell {i} committed with outputs (run `make strip`)")
        if cell.get("execution_count") is not None and not cell.get("metadata", {}).get("keep_output"):
            out.append(f"code cell {i} has an execution count")
        src = "".join(cell["source"])
        if _ABS_PATH.search(src):
            out.append(f"code cell {i} uses an absolute path")
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        out.append(f"{len(tagged)} cells tagged 'parameters' (want exactly 1)")
    if framework_of(nb) == "both":
        out.append("imports both PyTorch and TensorFlow")
    questions = all_questions()
    for cell in nb["cells"]:
        meta = cell.get("metadata", {})
        qid = meta.get("tlcourse", {}).get("exercise")
        if qid is None:
            continue
        if qid not in questions:
            out.append(f"exercise cell names unknown question {qid!r}")
        grader = meta.get("nbgrader", {})
        if not (grader.get("solution") and grader.get("grade_id")):
            out.append(f"exercise cell {qid} lacks nbgrader solution metadata")
        if "____" not in "".join(cell["source"]):
            out.append(f"exercise cell {qid} does not hold the placeholder ____")
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 2 or argv[0] not in {"strip", "check", "refresh"}:
        print("usage: python -m tlcourse.notebook_tools {strip|check|refresh} FOLDER", file=sys.stderr)
        return 2
    action, folder = argv
    status = 0
    for path in notebooks(folder):
        if action == "strip":
            if strip(path):
                print(f"stripped {path}")
        elif action == "refresh":
            n = refresh_kept_outputs(path)
            if n:
                print(f"refreshed {n} kept output(s) in {path}")
        else:
            for problem in problems(path):
                print(f"{path}: {problem}")
                status = 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())
