"""Grade 100 synthetic submissions of the course and print the time (target: < 5 min, 2 cores).

The submissions are the solution notebooks, edited: about half correct, a quarter with one of the
reference texts' known errors, a quarter misbehaving (an endless loop, one that ignores the
per-test alarm, a syntax error, an exception at import, megabytes printed, a missing function).
Every registered exercise with a solution notebook is graded.

    .venv/bin/python benchmarks/bench_grading.py [--n 100] [--jobs 2] [--timeout 5] [--limit 30]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import tempfile
import time
from pathlib import Path

import nbformat

from toydiff.grading.plugin import SOLUTIONS_DIR, load_exercises
from toydiff.grading.report import write_reports
from toydiff.grading.runner import GradeOptions, grade_all
from toydiff.grading.variants import KNOWN_ERRORS, MISBEHAVIOURS, edit_cell, rename


def build_submissions(root: Path, n: int) -> dict[str, str]:
    """Write ``n`` submissions under ``root``; returns student -> what was done to it."""
    written = {
        name: ex
        for name, ex in load_exercises().items()
        if (SOLUTIONS_DIR / f"{ex.notebook}.ipynb").is_file()
    }
    if not written:
        raise SystemExit("no exercise has a solution notebook yet")
    solutions = {
        ex.notebook: nbformat.read(SOLUTIONS_DIR / f"{ex.notebook}.ipynb", as_version=4)
        for ex in written.values()
    }
    wrong = [(name, ex, edit) for name, (ex, edit) in KNOWN_ERRORS.items() if ex in written]
    bad = [(name, edit) for name, edit in MISBEHAVIOURS.items()]
    targets = itertools.cycle(sorted(written))
    variants: list[tuple[str, str, object]] = []  # (label, exercise, edit)
    wrong_cycle, bad_cycle = itertools.cycle(wrong), itertools.cycle(bad)
    for i in range(n):
        if i % 4 in (0, 2):
            variants.append(("correct", "", None))
        elif i % 4 == 1:
            name, ex, edit = next(wrong_cycle)
            variants.append((name, ex, edit))
        else:
            ex = next(targets)
            if i % 24 == 23:
                variants.append(("missing_function", ex, rename(written[ex].target, "renamed")))
            else:
                name, edit = next(bad_cycle)
                variants.append((name, ex, edit))
    labels = {}
    for i, (label, ex, edit) in enumerate(variants):
        student = f"s{i:03d}_{label}"
        labels[student] = f"{label} ({ex})" if ex else label
        for notebook, nb in solutions.items():
            if ex and written[ex].notebook == notebook:
                nb = edit_cell(nb, ex, edit)
            path = root / student / f"{notebook}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, path)
    return labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per test")
    parser.add_argument("--limit", type=float, default=30.0, help="seconds per submission")
    parser.add_argument("--keep", type=Path, default=None, help="write everything here instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        labels = build_submissions(root / "submissions", args.n)
        options = GradeOptions(timeout=args.timeout, limit=args.limit, jobs=args.jobs, seed=0)
        start = time.perf_counter()
        results, seed = grade_all(root / "submissions", root / "grades", options)
        write_reports(root / "grades", results, seed)
        seconds = time.perf_counter() - start
        with open(root / "grades" / "grades.csv", newline="") as f:
            rows = list(csv.DictReader(f))
    by_kind: dict[str, list[float]] = {}
    for row in rows:
        kind = labels[row["student"]].split(" ")[0]
        by_kind.setdefault(kind, []).append(float(row["percent"]))
    print(
        f"graded {len(rows)} submissions in {seconds:.1f} s "
        f"({seconds / len(rows):.2f} s each; jobs={args.jobs}, timeout={args.timeout:g} s, "
        f"limit={args.limit:g} s)"
    )
    for kind, percents in sorted(by_kind.items()):
        print(
            f"  {kind:32s} n={len(percents):3d}  mean score {sum(percents) / len(percents):5.1f}%"
        )


if __name__ == "__main__":
    main()
