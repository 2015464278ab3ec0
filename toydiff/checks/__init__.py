"""Instant checks for the course's exercises: ``check_<exercise>(student_impl)``.

Each check runs named sub-checks, prints one line per sub-check (with a hint for a failure) and
returns a :class:`~toydiff.checks.core.CheckReport`. ``EXERCISES`` lists every exercise; the grader
(``toydiff grade``) runs the same sub-checks. One module per notebook topic holds its checks.
"""

from toydiff.checks.core import EXERCISES, CheckFailed, CheckReport, SubCheck, run_checks
from toydiff.checks.sampling import check_ddpm_step, check_spot_the_bug

__all__ = [
    "EXERCISES",
    "CheckFailed",
    "CheckReport",
    "SubCheck",
    "check_ddpm_step",
    "check_spot_the_bug",
    "run_checks",
]
