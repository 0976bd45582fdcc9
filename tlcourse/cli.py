"""The ``tlcourse`` command: course tooling for developers and instructors.

``tlcourse bench`` executes every notebook at default parameters on one thread and
prints its wall time and peak memory against the budgets (120 s and 1.5 GB per
notebook, 20 minutes for the course).

``tlcourse grade release|collect|autograde|export`` is the instructor's pipeline on
nbgrader (see :mod:`tlcourse.grading`).

``tlcourse site`` builds a static HTML site of the executed notebooks, the course map
as its front page (see :mod:`tlcourse.site`).
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


def _grade_release(args: argparse.Namespace) -> int:
    from tlcourse.grading.course import release

    manifest = release(args.course, args.notebooks or ["notebooks"], cell_timeout=args.cell_timeout)
    print(f"\ncourse {Path(args.course).resolve()}: {len(manifest['assignments'])} assignment(s)")
    for name, entry in sorted(manifest["assignments"].items()):
        pts = sum(c["points"] for c in entry["graded"])
        print(f"  {name}: {len(entry['graded'])} graded cell(s), {pts:g} point(s) -> "
              f"release/{name}/{name}.ipynb")
    return 0


def _grade_collect(args: argparse.Namespace) -> int:
    from tlcourse.grading.collect import collect, summary

    result = collect(args.course, args.submissions)
    print(summary(result))
    return 0


def _grade_autograde(args: argparse.Namespace) -> int:
    from tlcourse.grading.autograde import autograde
    from tlcourse.grading.sandbox import Limits

    limits = Limits(cell_timeout=args.cell_timeout, notebook_timeout=args.notebook_timeout,
                    memory_mb=args.memory_mb)
    results = autograde(args.course, jobs=args.jobs, limits=limits, mode=args.sandbox,
                        students=args.student, assignments=args.assignment,
                        submissions_dir=args.submissions)
    return 0 if results else 1


def _grade_export(args: argparse.Namespace) -> int:
    from tlcourse.grading.export import feedback, gradebook_rows, summary, write_csv

    rows = gradebook_rows(args.course)
    write_csv(rows, args.csv)
    pages = feedback(args.course, args.feedback) if args.feedback else []
    print(summary(rows))
    print(f"wrote {len(rows)} row(s) to {args.csv}"
          + (f" and {len(pages)} feedback page(s) to {args.feedback}" if args.feedback else ""))
    return 0


def _add_grade_parser(sub) -> None:
    grade = sub.add_parser("grade", help="instructors: release, collect, autograde and export with nbgrader")
    gsub = grade.add_subparsers(dest="grade_command", required=True)

    p = gsub.add_parser("release", help="build the nbgrader course folder and the student release")
    p.add_argument("--course", required=True, help="the nbgrader course folder (created if missing)")
    p.add_argument("--notebooks", nargs="*", help="notebooks or folders of notebooks (default: notebooks)")
    p.add_argument("--cell-timeout", type=int, default=120, help="nbgrader's per-cell timeout, seconds")
    p.set_defaults(func=_grade_release)

    p = gsub.add_parser("collect", help="copy SUBMISSIONS/<student>/<assignment>.ipynb into the course")
    p.add_argument("--course", required=True)
    p.add_argument("--submissions", required=True, help="folder with one folder per student")
    p.set_defaults(func=_grade_collect)

    p = gsub.add_parser("autograde", help="grade every collected submission, each in its own sandbox")
    p.add_argument("--course", required=True)
    p.add_argument("--jobs", type=int, default=1, help="submissions graded at once")
    p.add_argument("--cell-timeout", type=float, default=120, help="seconds per cell")
    p.add_argument("--notebook-timeout", type=float, default=900, help="seconds per notebook")
    p.add_argument("--memory-mb", type=int, default=6144, help="address-space limit of a kernel")
    p.add_argument("--sandbox", choices=["auto", "user", "none"], default="auto",
                   help="user: kernels as an unprivileged user in a private mount namespace (root "
                        "only); none: limits and a scratch folder only; auto: user when possible")
    p.add_argument("--submissions", help="the submissions folder, hidden from kernels too")
    p.add_argument("--student", nargs="*", help="only these students")
    p.add_argument("--assignment", nargs="*", help="only these assignments")
    p.set_defaults(func=_grade_autograde)

    p = gsub.add_parser("export", help="gradebook CSV and per-student feedback HTML")
    p.add_argument("--course", required=True)
    p.add_argument("--csv", required=True, help="where to write the gradebook CSV")
    p.add_argument("--feedback", help="folder for FEEDBACK/<student>/<assignment>.html")
    p.set_defaults(func=_grade_export)


def _site(args: argparse.Namespace) -> int:
    from tlcourse.notebook_tools import notebooks
    from tlcourse.site import SiteError, build_site, execute_learner_view

    executed = Path(args.executed)
    if args.execute:
        sources = notebooks(args.folder)
        if args.only:
            sources = [p for p in sources if any(s in p.name for s in args.only)]
        print(f"executing {len(sources)} notebook(s) into {executed} (default parameters, exercises blank)")
        for r in execute_learner_view(sources, executed, timeout=args.timeout):
            print(f"  {r.notebook:<40} {r.seconds:7.1f} s  {'ok' if r.ok else 'ERROR ' + r.error[:200]}")
    try:
        report = build_site(args.folder, executed, args.out, prefer_solved=args.solved,
                            allow_errors=args.allow_errors, require_all=args.require_all)
    except SiteError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


def _add_site_parser(sub) -> None:
    p = sub.add_parser("site", help="a static HTML site of the executed notebooks, the course map in front")
    p.add_argument("--executed", default="build/executed", help="folder of executed notebooks "
                   "(NN_name.ipynb, or NN_name.solved.ipynb as the tests write them)")
    p.add_argument("--out", default="build/site", help="the site's folder (emptied first)")
    p.add_argument("--folder", default="notebooks", help="the course's notebooks: which pages, in which order")
    p.add_argument("--execute", action="store_true",
                   help="first run the notebooks (learner's view) into --executed with tlcourse.runner")
    p.add_argument("--only", nargs="*", help="with --execute: substrings of notebook names to run")
    p.add_argument("--timeout", type=float, default=900, help="with --execute: per-cell timeout in seconds")
    p.add_argument("--solved", action="store_true", help="prefer the solved copies (NN_name.solved.ipynb)")
    p.add_argument("--allow-errors", action="store_true", help="build pages even from copies with errors")
    p.add_argument("--require-all", action="store_true", help="fail if a notebook has no executed copy")
    p.set_defaults(func=_site)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tlcourse", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    bench = sub.add_parser("bench", help="time and memory of every notebook against the budgets")
    bench.add_argument("--folder", default="notebooks")
    bench.add_argument("--only", nargs="*", help="substrings of notebook names to run")
    bench.add_argument("--timeout", type=float, default=900, help="per-cell timeout in seconds")
    bench.add_argument("--json", help="also write the reports to this JSON file")
    bench.set_defaults(func=_bench)
    _add_grade_parser(sub)
    _add_site_parser(sub)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
