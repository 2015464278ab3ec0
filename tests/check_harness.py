"""Shared assertions of the wrong-implementation tests: the right sub-check catches each mistake."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest
import torch
from solution_cells import solution

from toydiff.checks import CheckReport


def failed(report: CheckReport) -> set[str]:
    return {r.name for r in report.results if r.status == "failed"}


def assert_passes(check: Callable[..., CheckReport], impl: Any) -> None:
    report = check(impl, verbose=False)
    assert report.passed, str(report)


def assert_caught(check: Callable[..., CheckReport], impl: Any, subcheck: str) -> None:
    report = check(impl, verbose=False)
    names = {r.name for r in report.results}
    assert subcheck in names, f"no sub-check named {subcheck!r}: {sorted(names)}"
    assert not report.passed
    assert subcheck in failed(report), f"expected {subcheck!r} to fail:\n{report}"


def assert_not_attempted(check: Callable[..., CheckReport], stub: Any) -> None:
    report = check(stub, verbose=False)
    assert not report.attempted
    assert "not attempted" in report.summary()


def assert_no_traceback(check: Callable[..., CheckReport], impls: list[Any], capsys: Any) -> None:
    for impl in impls:
        check(impl)
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    assert "✗" in out.out


def stub(*args: Any, **kwargs: Any) -> Any:
    """An exercise not yet written: the cell as handed out."""
    raise NotImplementedError("write me")


def assert_passes_printed(check: Callable[..., CheckReport], impl: Any, capsys: Any) -> None:
    """The printed (verbose) report of a right answer passes and shows no traceback."""
    report = check(impl)
    assert report.passed, str(report)
    assert "Traceback" not in capsys.readouterr().out


def assert_caught_printed(
    check: Callable[..., CheckReport], impl: Any, subcheck: str, capsys: Any
) -> None:
    """A wrong answer fails the named sub-check, and the printed report shows no traceback."""
    report = check(impl)
    assert not report.passed
    assert subcheck in failed(report), str(report)
    assert "Traceback" not in capsys.readouterr().out


def assert_stub_not_attempted_printed(check: Callable[..., CheckReport], capsys: Any) -> None:
    """An unwritten exercise is reported as not attempted, without a traceback."""
    report = check(stub)
    assert not report.attempted
    assert "not attempted" in report.summary()
    assert "Traceback" not in capsys.readouterr().out


Cases = list[tuple[Callable[..., CheckReport], str, dict[str, tuple[Any, str]]]]


def case_tests(cases: Cases) -> type:
    """The three standard tests of a notebook's checks, parametrized over its cases.

    Each case is (check, solution name, {bug name: (wrong implementation, sub-check it fails)}).
    Assign the returned class to a ``Test...`` name in the test module for pytest to collect it.
    """

    class NotebookChecks:
        @pytest.mark.parametrize(("check", "name"), [(c, n) for c, n, _ in cases])
        def test_solution_passes(
            self, check: Callable[..., CheckReport], name: str, capsys: Any
        ) -> None:
            assert_passes_printed(check, solution(name), capsys)

        @pytest.mark.parametrize(
            ("check", "bugs", "bug"), [(c, b, name) for c, _, b in cases for name in b]
        )
        def test_bug_is_caught(
            self, check: Callable[..., CheckReport], bugs: dict, bug: str, capsys: Any
        ) -> None:
            impl, subcheck = bugs[bug]
            assert_caught_printed(check, impl, subcheck, capsys)

        @pytest.mark.parametrize("check", [c for c, _, _ in cases])
        def test_stub_is_not_attempted(
            self, check: Callable[..., CheckReport], capsys: Any
        ) -> None:
            assert_stub_not_attempted_printed(check, capsys)

    return NotebookChecks


class Exercise(NamedTuple):
    """One exercise's checks under test (quiet reports).

    ``wrong`` maps a mistake's name to (wrong implementation, the sub-check it must fail);
    ``references`` are extra right implementations (e.g. a mistake-free parameterised variant)
    that must pass as well as the solution notebook's answer.
    """

    check: Callable[..., CheckReport]
    solution: str
    wrong: dict[str, tuple[Any, str]]
    stub: Any
    references: tuple[Any, ...] = ()


def exercise_tests(*exercises: Exercise) -> type:
    """The four standard tests of a notebook's checks, parametrized over its exercises.

    Assign the returned class to a ``Test...`` name in the test module for pytest to collect it.
    """
    by_name = {ex.solution: ex for ex in exercises}

    class ExerciseChecks:
        @pytest.mark.parametrize("exercise", list(by_name))
        def test_solution_passes(self, exercise: str) -> None:
            ex = by_name[exercise]
            for impl in (solution(ex.solution), *ex.references):
                assert_passes(ex.check, impl)

        @pytest.mark.parametrize(
            ("exercise", "mistake"), [(ex.solution, m) for ex in exercises for m in ex.wrong]
        )
        def test_wrong_answer_fails_the_right_subcheck(self, exercise: str, mistake: str) -> None:
            ex = by_name[exercise]
            impl, subcheck = ex.wrong[mistake]
            assert_caught(ex.check, impl, subcheck)

        @pytest.mark.parametrize("exercise", list(by_name))
        def test_stub_is_not_attempted(self, exercise: str) -> None:
            ex = by_name[exercise]
            assert_not_attempted(ex.check, ex.stub)

        def test_no_traceback(self, capsys: Any) -> None:
            for ex in exercises:
                assert_no_traceback(ex.check, [impl for impl, _ in ex.wrong.values()], capsys)

    return ExerciseChecks


NOISE_KINDS = ("gaussian", "uniform", "uniform_unit_variance", "global")


def noise_like(x: torch.Tensor, kind: str, generator: torch.Generator | None) -> torch.Tensor:
    """Noise shaped like ``x`` as a right or wrong answer draws it.

    ``"gaussian"``: standard normal from ``generator`` (right); ``"uniform"``: U[0, 1);
    ``"uniform_unit_variance"``: zero mean and unit variance but not Gaussian; ``"global"``:
    standard normal from the global RNG, ignoring ``generator``.
    """
    if kind == "gaussian":
        return torch.randn(x.shape, generator=generator)
    if kind == "uniform":
        return torch.rand(x.shape, generator=generator)
    if kind == "uniform_unit_variance":
        return (torch.rand(x.shape, generator=generator) - 0.5) * math.sqrt(12)
    if kind == "global":
        return torch.randn_like(x)
    raise ValueError(f"kind must be one of {NOISE_KINDS}, got {kind!r}")


def assert_leaves_global_rng_alone(check: Callable[..., CheckReport], impl: Any) -> None:
    """Running the check draws nothing from the global RNG (students' notebooks stay seeded)."""
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check(impl, verbose=False)
    assert torch.equal(torch.rand(3), expected)


def with_mistake(impl: Callable[..., Any], **mistake: Any) -> Callable[..., Any]:
    """``impl`` with the keywords that switch its mistakes on bound, called as the exercise is."""
    return lambda *args, **kwargs: impl(*args, **kwargs, **mistake)
