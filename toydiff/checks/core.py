"""The machinery behind every ``check_<exercise>``: named sub-checks, one line each, and a hint
for each failure.

A topic module defines its sub-checks and a public ``check_<exercise>(impl)``::

    @exercise("q_eq4", notebook="02_forward_process", target="q_eq4")
    def _q_eq4_checks() -> list[SubCheck]:
        return [SubCheck("same shape as x", _shape, hint="..."), ...]

    def check_q_eq4(student_q_eq4, *, verbose=True) -> CheckReport:
        return run_checks("q_eq4", student_q_eq4, verbose=verbose)

A sub-check is a function ``fn(impl) -> None`` that raises :class:`CheckFailed` (with a short
detail)
when the answer is wrong. An ordinary wrong answer never prints a traceback: any exception raised by
the student's code is reported in one line with the sub-check's hint. A stub that still raises
``NotImplementedError`` is "not attempted yet".
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class CheckFailed(AssertionError):
    """Raised by a sub-check when the answer is wrong; its message is a one-line detail."""


@dataclass(frozen=True)
class SubCheck:
    """One named property of a correct answer; ``hint`` says what to fix when it fails."""

    name: str
    fn: Callable[[Any], None]
    hint: str
    points: float = 1.0


@dataclass(frozen=True)
class Exercise:
    """An exercise: its name (the ``# EXERCISE: name`` marker), the notebook it is in, the name of
    the function or class the student writes (``target``) and its sub-checks."""

    name: str
    notebook: str
    target: str
    subchecks: Callable[[], list[SubCheck]]


@dataclass
class SubResult:
    name: str
    status: str  # "passed", "failed", "not attempted"
    detail: str = ""
    hint: str = ""
    points: float = 1.0

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass
class CheckReport:
    exercise: str
    results: list[SubResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def attempted(self) -> bool:
        return not any(r.status == "not attempted" for r in self.results)

    @property
    def score(self) -> float:
        return sum(r.points for r in self.results if r.passed)

    @property
    def total(self) -> float:
        return sum(r.points for r in self.results)

    def lines(self) -> list[str]:
        out = []
        for r in self.results:
            if r.passed:
                out.append(f"  ✓ {r.name}")
            elif r.status == "not attempted":
                out.append(
                    f"  … {r.name}: not attempted yet (the stub still raises NotImplementedError)"
                )
            else:
                detail = f" ({r.detail})" if r.detail else ""
                out.append(f"  ✗ {r.name}{detail}\n      hint: {r.hint}")
        return out

    def summary(self) -> str:
        if not self.attempted:
            return f"{self.exercise}: not attempted yet"
        n = sum(r.passed for r in self.results)
        verdict = "all checks passed" if self.passed else f"{n}/{len(self.results)} checks passed"
        return f"{self.exercise}: {verdict}"

    def __str__(self) -> str:
        return "\n".join([self.summary(), *self.lines()])


EXERCISES: dict[str, Exercise] = {}


def exercise(name: str, *, notebook: str, target: str):
    """Register the function that lists an exercise's sub-checks."""

    def register(subchecks: Callable[[], list[SubCheck]]) -> Callable[[], list[SubCheck]]:
        if name in EXERCISES:
            raise ValueError(f"exercise {name!r} is registered twice")
        EXERCISES[name] = Exercise(name, notebook, target, subchecks)
        return subchecks

    return register


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def run_checks(name: str, impl: Any, *, verbose: bool = True) -> CheckReport:
    """Run every sub-check of exercise ``name`` on ``impl`` and print one line per sub-check."""
    report = CheckReport(name)
    if impl is None or not callable(impl):
        subchecks = EXERCISES[name].subchecks()
        report.results = [
            SubResult(
                s.name, "failed", f"expected a function or class, got {impl!r}", s.hint, s.points
            )
            for s in subchecks
        ]
    else:
        for sub in EXERCISES[name].subchecks():
            try:
                sub.fn(impl)
            except NotImplementedError:
                report.results.append(
                    SubResult(sub.name, "not attempted", "", sub.hint, sub.points)
                )
            except CheckFailed as err:
                report.results.append(SubResult(sub.name, "failed", str(err), sub.hint, sub.points))
            except Exception as err:  # the student's code raised: report it in one line
                detail = f"your code raised {_one_line(err)}"
                report.results.append(SubResult(sub.name, "failed", detail, sub.hint, sub.points))
            else:
                report.results.append(SubResult(sub.name, "passed", "", sub.hint, sub.points))
    if verbose:
        print(report, file=sys.stdout)
    return report


def expect(condition: bool, detail: str) -> None:
    """Fail the current sub-check with ``detail`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(detail)
