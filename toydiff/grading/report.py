"""Turn graded records into the gradebook (``grades.csv``) and one feedback file per student.

The plan of the grade (which tests exist, their exercise and points) is the union of the tests
every student's run collected, so a student whose process died before collecting still gets a
row with zeros, and a test a student's run collected but never reported counts as failed.
"""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toydiff.grading.runner import StudentResult

#: Statuses that say why a submission lost points beyond a plainly wrong answer.
_NOTABLE = (
    "syntax error",
    "import error",
    "missing",
    "timeout",
    "output flood",
    "not run",
    "not attempted",
    "crashed",
)


@dataclass(frozen=True)
class PlannedTest:
    nodeid: str
    exercise: str
    subcheck: str
    points: float
    hint: str
    hidden: bool


@dataclass
class Grade:
    """One student's grade: points per exercise, the status line, and every test's outcome."""

    student: str
    scores: dict[str, float]
    total: float
    status: str
    outcomes: list[tuple[PlannedTest, dict[str, Any]]]
    problems: list[str]


def plan(results: list[StudentResult]) -> list[PlannedTest]:
    """Every gradable test (collected by any student's run, skipped ones left out), in order."""
    tests: dict[str, PlannedTest] = {}
    skipped = set()
    for result in results:
        for r in result.records:
            if r.get("kind") == "result" and r.get("status") == "skipped":
                skipped.add(r["nodeid"])
            if r.get("kind") == "collected" and r["nodeid"] not in tests:
                tests[r["nodeid"]] = PlannedTest(
                    r["nodeid"], r["exercise"], r["subcheck"], r["points"], r["hint"], r["hidden"]
                )
    return [t for nodeid, t in tests.items() if nodeid not in skipped]


def exercise_maxima(tests: list[PlannedTest]) -> dict[str, float]:
    maxima: dict[str, float] = defaultdict(float)
    for t in tests:
        maxima[t.exercise] += t.points
    return dict(maxima)


def grade(result: StudentResult, tests: list[PlannedTest]) -> Grade:
    reported = {r["nodeid"]: r for r in result.records if r.get("kind") == "result"}
    why_not_run = result.problems[0] if result.problems else "the grading process stopped early"
    scores = {exercise: 0.0 for exercise in exercise_maxima(tests)}
    outcomes = []
    troubles: dict[str, set[str]] = defaultdict(set)
    for t in tests:
        record = reported.get(t.nodeid) or {
            "passed": False,
            "status": "not run",
            "message": f"not run: {why_not_run}",
        }
        outcomes.append((t, record))
        if record["passed"]:
            scores[t.exercise] += t.points
        elif record["status"] in _NOTABLE:
            troubles[record["status"]].add(t.exercise)
    parts = [f"{status}: {', '.join(sorted(exs))}" for status, exs in sorted(troubles.items())]
    parts = result.problems + result.export_notes + parts
    return Grade(
        result.student,
        scores,
        sum(scores.values()),
        "; ".join(parts) or "ok",
        outcomes,
        result.problems,
    )


def _fmt(points: float) -> str:
    return f"{points:g}"


def write_gradebook(path: Path, grades: list[Grade], maxima: dict[str, float]) -> None:
    """``grades.csv``: one row per student, one column per exercise, total, max, status."""
    total_max = sum(maxima.values())
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student", *maxima, "total", "max", "percent", "status"])
        for g in grades:
            percent = 100.0 * g.total / total_max if total_max else 0.0
            writer.writerow(
                [
                    g.student,
                    *(_fmt(g.scores.get(ex, 0.0)) for ex in maxima),
                    _fmt(g.total),
                    _fmt(total_max),
                    f"{percent:.1f}",
                    g.status,
                ]
            )


def feedback(g: Grade, maxima: dict[str, float]) -> str:
    """A student's feedback in Markdown: per exercise its points, what passed, hints for the
    rest. Hidden tests show only their name and whether they passed."""
    total_max = sum(maxima.values())
    lines = [f"# Feedback for {g.student}", "", f"**Total: {_fmt(g.total)} / {_fmt(total_max)}**"]
    if g.status != "ok":
        lines.append(f"\nStatus: {g.status}")
    by_exercise: dict[str, list[tuple[PlannedTest, dict[str, Any]]]] = defaultdict(list)
    for t, record in g.outcomes:
        by_exercise[t.exercise].append((t, record))
    for exercise, items in by_exercise.items():
        lines += ["", f"## {exercise}: {_fmt(g.scores[exercise])} / {_fmt(maxima[exercise])}", ""]
        statuses = Counter(record["status"] for _, record in items)
        if statuses.keys() == {"not attempted"}:
            lines.append("Not attempted yet (the stub still raises NotImplementedError).")
            continue
        for t, record in items:
            pts = f"({_fmt(t.points)} pt{'s' if t.points != 1 else ''})"
            if t.hidden:
                verdict = "passed" if record["passed"] else "failed"
                lines.append(
                    f"- {'✓' if record['passed'] else '✗'} hidden test `{t.subcheck}` "
                    f"{pts}: {verdict}"
                )
            elif record["passed"]:
                lines.append(f"- ✓ {t.subcheck} {pts}")
            else:
                detail = f": {record['message']}" if record.get("message") else ""
                lines.append(f"- ✗ {t.subcheck} {pts}{detail}")
                if t.hint and record["status"] not in ("not run", "missing", "syntax error"):
                    lines.append(f"  - hint: {t.hint}")
    return "\n".join(lines) + "\n"


def write_reports(out: Path, results: list[StudentResult], seed: int) -> list[Grade]:
    """Write ``grades.csv``, ``feedback/<student>.md`` and ``summary.json`` under ``out``."""
    out = Path(out)
    tests = plan(results)
    maxima = exercise_maxima(tests)
    grades = [grade(r, tests) for r in results]
    out.mkdir(parents=True, exist_ok=True)
    write_gradebook(out / "grades.csv", grades, maxima)
    feedback_dir = out / "feedback"
    feedback_dir.mkdir(exist_ok=True)
    for g in grades:
        (feedback_dir / f"{g.student}.md").write_text(feedback(g, maxima), encoding="utf-8")
    summary = {
        "grading_seed": seed,
        "max_points": maxima,
        "students": {
            g.student: {"total": g.total, "status": g.status, "scores": g.scores} for g in grades
        },
        "seconds": {r.student: round(r.seconds, 2) for r in results},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return grades
