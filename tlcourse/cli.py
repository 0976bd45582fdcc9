"""The ``tlcourse`` command: course tooling for developers and instructors.

``tlcourse bench`` executes every notebook at default parameters on one thread and
prints its wall time and peak memory against the budgets (120 s and 1.5 GB per
notebook, 20 minutes for the course).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

BUDGET_SECONDS = 120.0
BUDGET_MB = 1536.0
COURSE_BUDGET_SECONDS = 20 * 60.0


def _bench(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from tlcourse.notebook_tools import notebooks
    from tlcourse.runner import execute

    paths = notebooks(args.folder)
    if args.only:
        paths = [p for p in paths if any(s in p.name for s in args.only)]
    if not paths:
        print(f"no notebooks matched in {args.folder}", file=sys.stderr)
        return 2
    env = {"TLCOURSE_THREADS": "1", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    reports = []
    with tempfile.TemporaryDirectory() as tmp:
        env["TLCOURSE_RESULTS_DIR"] = str(Path(tmp) / "results")
        for path in tqdm(paths, desc="notebooks", unit="nb"):
            reports.append(execute(path, Path(tmp) / path.name, env=env, timeout=args.timeout, variant="bench"))
    total = sum(r.seconds for r in reports)
    width = max(len(r.notebook) for r in reports)
    print(f"\n{'notebook':<{width}}  {'time (s)':>9}  {'peak (MB)':>9}  verdict")
    failed = False
    for r in reports:
        within = r.ok and r.seconds <= BUDGET_SECONDS and (r.peak_mb or 0) <= BUDGET_MB
        failed |= not within
        verdict = "ok" if within else ("ERROR " + r.error[:60] if not r.ok else "OVER BUDGET")
        peak = f"{r.peak_mb:9.0f}" if r.peak_mb is not None else f"{'?':>9}"
        print(f"{r.notebook:<{width}}  {r.seconds:9.1f}  {peak}  {verdict}")
    course_ok = total <= COURSE_BUDGET_SECONDS
    print(f"{'whole course':<{width}}  {total:9.1f}  {'':>9}  {'ok' if course_ok else 'OVER BUDGET'}")
    print(f"budgets: {BUDGET_SECONDS:.0f} s and {BUDGET_MB / 1024:.1f} GB per notebook, "
          f"{COURSE_BUDGET_SECONDS / 60:.0f} min for the course")
    if args.json:
        Path(args.json).write_text(json.dumps([r.as_dict() for r in reports], indent=1))
    return 0 if (not failed and course_ok) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tlcourse", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    bench = sub.add_parser("bench", help="time and memory of every notebook against the budgets")
    bench.add_argument("--folder", default="notebooks")
    bench.add_argument("--only", nargs="*", help="substrings of notebook names to run")
    bench.add_argument("--timeout", type=float, default=900, help="per-cell timeout in seconds")
    bench.add_argument("--json", help="also write the reports to this JSON file")
    bench.set_defaults(func=_bench)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
