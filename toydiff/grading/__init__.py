"""Grading for instructors: notebooks in, a gradebook and per-student feedback out.

- :mod:`~toydiff.grading.export`: a student's exercise cells -> a module of their answers.
- :mod:`~toydiff.grading.implementation`: load those answers, one exercise at a time.
- :mod:`~toydiff.grading.plugin`: the pytest plugin behind ``tests/exercises`` (fixtures
  ``impl`` and ``grading_seed``, markers ``exercise`` and ``points``, JSON-lines results).
- :mod:`~toydiff.grading.runner`: every submission in its own time-limited subprocess.
- :mod:`~toydiff.grading.report`: ``grades.csv``, ``feedback/<student>.md``, ``summary.json``.

The command is ``toydiff grade submissions/ --out grades/`` (see README, "For instructors").
"""

from toydiff.grading.export import export_submission
from toydiff.grading.implementation import load_implementation
from toydiff.grading.report import write_reports
from toydiff.grading.runner import GradeOptions, grade_all

__all__ = ["GradeOptions", "export_submission", "grade_all", "load_implementation", "write_reports"]
