"""One test per sub-check of every registered exercise, run on the implementation under test.

The tests are generated from ``toydiff.checks.EXERCISES`` (see ``pytest_generate_tests`` in
:mod:`toydiff.grading.plugin`), so a newly registered exercise is graded with no edit here.
"""

from __future__ import annotations

from toydiff.checks.core import SubCheck
from toydiff.grading.implementation import Implementation
from toydiff.grading.plugin import run_subcheck


def test_subcheck(impl: Implementation, subcheck_case: tuple[str, SubCheck]) -> None:
    exercise, subcheck = subcheck_case
    run_subcheck(impl, exercise, subcheck)
