"""Executing notebooks from code: with parameters, a time limit, and measured cost.

Used by the test suite, by ``tlcourse bench`` and by the grading commands. A run
returns a :class:`RunReport` with the wall time and the kernel's peak resident memory
(read inside the kernel from ``/proc/self/status`` by one appended cell, removed again from the
saved output).
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

_MEASURE_TAG = "tlcourse-measure"
# VmHWM is this process's own peak; getrusage's ru_maxrss would carry over the peak of the
# process that started the kernel (Linux keeps it across fork and exec).
_MEASURE_SRC = (
    "import json as _j, re as _re\n"
    "_hwm = int(_re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read()).group(1))\n"
    "print('TLCOURSE_MEASURE ' + _j.dumps({'maxrss_kb': _hwm}))"
)


@dataclass
class RunReport:
    """What one notebook run cost, and whether it finished."""

    notebook: str
    variant: str
    seconds: float
    peak_mb: float | None
    ok: bool
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextmanager
def patched_env(extra: dict[str, str] | None):
    """Set environment variables for the duration of a block (the kernel inherits them)."""
    extra = extra or {}
    old = {k: os.environ.get(k) for k in extra}
    os.environ.update({k: str(v) for k, v in extra.items()})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def add_measure_cell(nb) -> None:
    """Append the cell that reports the kernel's peak memory."""
    import nbformat

    cell = nbformat.v4.new_code_cell(_MEASURE_SRC)
    cell.metadata["tags"] = [_MEASURE_TAG]
    nb.cells.append(cell)


def pop_measure(nb) -> float | None:
    """Remove the measure cell; return the peak resident memory in MB it printed."""
    peak = None
    keep = []
    for cell in nb.cells:
        if _MEASURE_TAG in cell.get("metadata", {}).get("tags", []):
            for out in cell.get("outputs", []):
                text = out.get("text", "")
                for line in text.splitlines():
                    if line.startswith("TLCOURSE_MEASURE "):
                        peak = json.loads(line.split(" ", 1)[1])["maxrss_kb"] / 1024.0
            continue
        keep.append(cell)
    nb.cells = keep
    return peak


def execute(
    source: str | Path,
    output: str | Path,
    *,
    parameters: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 600,
    variant: str = "default",
    transform=None,
    cwd: str | Path | None = None,
) -> RunReport:
    """Run ``source`` with papermill into ``output`` and report its cost.

    ``transform(nb)`` may edit the notebook first (e.g. fill in exercise solutions).
    The working directory is the notebook's own folder unless ``cwd`` is given, so the
    notebook's relative paths work as they do for a learner. Errors are reported in the
    returned :class:`RunReport` (``ok=False``), not raised.
    """
    import nbformat
    import papermill

    source, output = Path(source), Path(output)
    nb = nbformat.read(source, as_version=4)
    if transform is not None:
        transform(nb)
    add_measure_cell(nb)
    output.parent.mkdir(parents=True, exist_ok=True)
    staged = output.with_name(output.stem + ".in.ipynb")
    nbformat.write(nb, staged)
    start = time.perf_counter()
    error = ""
    try:
        with patched_env(env):
            papermill.execute_notebook(
                str(staged),
                str(output),
                parameters=parameters or {},
                kernel_name="python3",
                cwd=str(cwd or source.parent),
                execution_timeout=timeout,
                progress_bar=False,
                log_output=False,
            )
    except Exception as err:  # noqa: BLE001 - reported, not hidden: ok=False carries it
        error = f"{type(err).__name__}: {err}"
    seconds = time.perf_counter() - start
    staged.unlink(missing_ok=True)
    peak = None
    if output.exists():
        done = nbformat.read(output, as_version=4)
        peak = pop_measure(done)
        nbformat.write(done, output)
    return RunReport(source.stem, variant, round(seconds, 2), peak and round(peak, 1), not error, error[:4000])
