"""Load an implementation under test: an exported answers module, a notebook, or a folder.

:func:`load_implementation` executes the exported module section by section into one module
namespace. The setup section runs one statement at a time (a failing ``import seaborn`` loses
only that import); each exercise section runs as a whole under a wall-clock limit, and an
exception or a hang there is remembered against that exercise only. Tests then ask the
:class:`Implementation` for a name: ``impl.q_eq4`` or ``impl.target("q_eq4")``. A name that is
an exercise's target must come from that student's exercise cell, never from an import of the
library, and asking for a broken or missing one raises an error whose message is the feedback.
"""

from __future__ import annotations

import ast
import signal
import sys
import time
import types
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from toydiff.grading.export import Section, export_submission, parse_sections


class ImplementationError(Exception):
    """The answer under test cannot be used; the message says why, for the student."""

    status = "error"


class MissingDefinition(ImplementationError, AttributeError):
    """The submission has no exercise cell defining the name."""

    status = "missing"


class BrokenExercise(ImplementationError):
    """The exercise cell exists but could not be parsed or executed."""

    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.status = status


class _ImportTimeout(BaseException):
    """Raised by the alarm inside a hanging exercise cell; a BaseException so that a student's
    ``except Exception`` cannot swallow it."""


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`_ImportTimeout` after ``seconds`` (main thread only; elsewhere no limit).

    An alarm already running (pytest-timeout's, around the test that first loads the
    implementation) is put back afterwards with the time it had left.
    """
    if seconds <= 0 or sys.platform == "win32":
        yield
        return
    try:
        previous = signal.signal(signal.SIGALRM, _raise_timeout)
    except ValueError:  # not the main thread
        yield
        return
    start = time.monotonic()
    outer_delay, outer_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_delay > 0:
            left = max(outer_delay - (time.monotonic() - start), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, left, outer_interval)


def _raise_timeout(signum: int, frame: Any) -> None:
    raise _ImportTimeout


def _defined_names(source: str) -> set[str]:
    """Top-level names a section defines (imports aside: an imported name is not an answer)."""
    names: set[str] = set()
    for stmt in ast.parse(source).body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(stmt.name)
        elif isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            names.add(stmt.target.id)
    return names


class Implementation:
    """The names a submission defines, with the reason for every one it could not.

    ``targets`` maps each registered exercise to the name its student writes (``q_eq4`` ->
    ``q_eq4``); ``sections`` are the exported sections (see :mod:`toydiff.grading.export`).
    """

    def __init__(
        self,
        sections: list[Section],
        targets: Mapping[str, str],
        *,
        source: str = "<answers>",
        import_timeout: float = 10.0,
    ) -> None:
        self.source = source
        self.targets = dict(targets)
        self.module = types.ModuleType("student_answers")
        self.module.__file__ = source
        self.setup_errors: list[str] = []
        self.found: set[str] = set()
        self.errors: dict[str, BrokenExercise] = {}
        # name -> (the exercise whose cell defined it, the object it defined)
        self._answers: dict[str, tuple[str, Any]] = {}
        namespace = self.module.__dict__
        # dataclasses and pickling look classes' modules up in sys.modules
        sys.modules[self.module.__name__] = self.module
        for section in sections:
            if section.exercise is None:
                self._run_setup(section, namespace)
            else:
                self._run_exercise(section.exercise, section, namespace, import_timeout)

    def _run_setup(self, section: Section, namespace: dict[str, Any]) -> None:
        try:
            body = ast.parse(section.source).body
        except SyntaxError as err:  # a hand-edited export; the exercises may still load
            self.setup_errors.append(f"setup section: {err.msg} (line {err.lineno})")
            return
        for stmt in body:
            code = compile(ast.Module([stmt], []), f"{self.source} (setup)", "exec")
            try:
                with _time_limit(5.0):
                    exec(code, namespace)
            except (Exception, _ImportTimeout) as err:
                self.setup_errors.append(f"line {stmt.lineno}: {_one_line(err)}")

    def _run_exercise(
        self, name: str, section: Section, namespace: dict[str, Any], limit: float
    ) -> None:
        self.found.add(name)
        if section.error:
            self.errors[name] = BrokenExercise(
                f"your '# EXERCISE: {name}' cell has a {section.error}", "syntax error"
            )
            return
        try:
            code = compile(section.source, f"exercise {name} ({section.origin})", "exec")
            with _time_limit(limit):
                exec(code, namespace)
        except _ImportTimeout:
            self.errors[name] = BrokenExercise(
                f"your '# EXERCISE: {name}' cell did not finish defining its names within"
                f" {limit:g} s (an endless loop at the top level of the cell?)",
                "timeout",
            )
        except Exception as err:
            self.errors[name] = BrokenExercise(
                f"your '# EXERCISE: {name}' cell raised {_one_line(err)} when it was run",
                "import error",
            )
        else:
            # a snapshot: a later cell's `from toydiff import X` must not replace the answer
            for defined in _defined_names(section.source):
                self._answers[defined] = (name, namespace.get(defined))

    def target(self, exercise: str) -> Any:
        """The student's answer to ``exercise`` (the object its cell defines)."""
        target = self.targets.get(exercise, exercise)
        if exercise in self.errors:
            raise self.errors[exercise]
        if exercise not in self.found:
            raise MissingDefinition(
                f"no '# EXERCISE: {exercise}' cell was found in your notebooks "
                f"(it should define {target})"
            )
        owner, answer = self._answers.get(target, (None, None))
        if owner != exercise:
            raise MissingDefinition(f"your '# EXERCISE: {exercise}' cell does not define {target}")
        return answer

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        for exercise, target in self.targets.items():
            if target == name:
                return self.target(exercise)
        if name in self._answers:
            return self._answers[name][1]
        if name in self.module.__dict__:
            return self.module.__dict__[name]
        raise MissingDefinition(f"your notebooks do not define {name}")


def load_implementation(
    path: Path, targets: Mapping[str, str], *, import_timeout: float = 10.0
) -> Implementation:
    """Load ``path``: an exported ``.py`` module, a notebook, or a folder of notebooks."""
    path = Path(path)
    if path.suffix == ".py":
        if not path.is_file():
            raise FileNotFoundError(f"impl {path} does not exist")
        sections = parse_sections(path.read_text(encoding="utf-8"))
    else:
        sections = list(export_submission(path).sections)
    return Implementation(sections, targets, source=str(path), import_timeout=import_timeout)
