"""Shared test set-up: environment for notebook runs, nbval tweaks, the cost report."""

from __future__ import annotations

import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
REPORTS = ROOT / "build" / "reports"

# Kernels started by nbval and papermill inherit this process's environment.
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TLCOURSE_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TLCOURSE_RESULTS_DIR", str(ROOT / "build" / "results"))


def _drop_stderr(outputs):
    return [o for o in outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]


def _patch_nbval() -> None:
    """nbval compares marked cells' outputs; stderr (warnings, progress bars) is never compared."""
    try:
        from nbval.plugin import IPyNbCell
    except ImportError:  # pragma: no cover
        return
    original = IPyNbCell.compare_outputs
    if getattr(original, "_tlcourse", False):
        return

    def compare_outputs(self, test, ref, skip_compare=None):
        return original(self, _drop_stderr(test), _drop_stderr(ref), skip_compare)

    compare_outputs._tlcourse = True
    IPyNbCell.compare_outputs = compare_outputs


_patch_nbval()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if hasattr(config, "workerinput") or not REPORTS.exists():
        return
    rows = [json.loads(p.read_text()) for p in sorted(REPORTS.glob("*.json")) if p.name != "notebooks.json"]
    if not rows:
        return
    (REPORTS / "notebooks.json").write_text(json.dumps(rows, indent=1))
    tr = terminalreporter
    tr.section("notebook cost (this machine; budgets are judged by `make bench`)")
    for r in sorted(rows, key=lambda r: (r["notebook"], r["variant"])):
        peak = f"{r['peak_mb']:.0f} MB" if r.get("peak_mb") else "?"
        tr.write_line(f"{r['notebook']:<40} {r['variant']:<10} {r['seconds']:7.1f} s  {peak:>8}  {'ok' if r['ok'] else 'FAILED'}")
