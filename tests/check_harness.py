"""Shared assertions of the wrong-implementation tests: the right sub-check catches each mistake."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
