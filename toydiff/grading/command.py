"""``toydiff grade submissions/ --out grades/``: the batch grader's command line."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from toydiff.grading.report import write_reports
from toydiff.grading.runner import GradeOptions, StudentResult, grade_all


def add_grade_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "submissions",
        type=Path,
        help="folder with one entry per student: <student>/ (notebooks) or <student>.ipynb",
    )
    p.add_argument("--out", type=Path, default=Path("grades"), help="where the gradebook goes")
    p.add_argument("--hidden", type=Path, default=None, help="folder of hidden test files")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per test")
    p.add_argument("--limit", type=float, default=300.0, help="seconds per submission in all")
    p.add_argument("--jobs", type=int, default=0, help="parallel submissions (0: one per core)")
    p.add_argument("--seed", type=int, default=None, help="grading_seed (default: random)")
    p.add_argument(
        "--only", default="", help="comma-separated exercises to grade (default: all of them)"
    )
    p.add_argument(
        "--checks-module",
        action="append",
        default=[],
        help="extra module (dotted name or .py path) that registers exercises; repeatable",
    )


def run_grade(args: argparse.Namespace) -> int:
    options = GradeOptions(
        hidden=args.hidden,
        timeout=args.timeout,
        limit=args.limit,
        jobs=args.jobs,
        seed=args.seed,
        only=tuple(x.strip() for x in args.only.split(",") if x.strip()),
        checks_modules=tuple(args.checks_module),
    )
    print(f"grading the submissions in {args.submissions}")
    start = time.perf_counter()

    def done(result: StudentResult) -> None:
        passed = sum(r["points"] for r in result.records if r.get("passed"))
        print(f"  {result.student}: {passed:g} points in {result.seconds:.1f} s", flush=True)

    results, seed = grade_all(args.submissions, args.out, options, on_done=done)
    grades = write_reports(args.out, results, seed)
    seconds = time.perf_counter() - start
    flagged = sum(g.status != "ok" for g in grades)
    print(
        f"graded {len(grades)} submissions in {seconds:.1f} s (grading_seed={seed}); "
        f"{flagged} with a status other than ok"
    )
    print(f"  gradebook  {args.out / 'grades.csv'}")
    print(f"  feedback   {args.out / 'feedback'}/<student>.md")
    return 0
