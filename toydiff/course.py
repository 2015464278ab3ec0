"""Generate the student notebooks from the solution notebooks, and check that they are in sync.

The solution notebooks (``notebooks/solutions/NN_topic.ipynb``) are the one source of the course.
An exercise is a code cell whose first line is ``# EXERCISE: <name>``; inside it the solution sits
between a ``# BEGIN SOLUTION`` line and an ``# END SOLUTION`` line. The student version replaces
those lines (markers included) by ``raise NotImplementedError("<hint>")`` at the BEGIN marker's
indentation, where the hint is the text of a ``# HINT: ...`` line right before ``# BEGIN SOLUTION``
(the HINT line stays). Every other cell is copied as is; outputs and execution counts are dropped.

Usage::

    python -m toydiff.course build   # write notebooks/NN_topic.ipynb from notebooks/solutions/
    python -m toydiff.course check   # exit 1 when a committed student notebook is out of date
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # nbformat comes with jupyter; the toydiff CLI must start without it
    from nbformat import NotebookNode

#: Where the course lives when toydiff is used from a clone (an editable install).
NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"

EXERCISE_RE = re.compile(r"^# EXERCISE: ([A-Za-z_][A-Za-z0-9_]*)\s*$")
BEGIN_RE = re.compile(r"^(\s*)# BEGIN SOLUTION\s*$")
END_RE = re.compile(r"^(\s*)# END SOLUTION\s*$")
HINT_RE = re.compile(r"^\s*# HINT:\s*(.*?)\s*$")


class CourseError(ValueError):
    """A solution notebook breaks the exercise-marker conventions."""


@dataclass(frozen=True)
class ExerciseCell:
    """An exercise found in a notebook: its name, cell index and solution lines (stripped)."""

    name: str
    cell_index: int
    solution_lines: tuple[str, ...]


def exercise_name(source: str) -> str | None:
    """The exercise name of a code cell's source, or None when it is not an exercise cell."""
    first = source.split("\n", 1)[0]
    match = EXERCISE_RE.match(first)
    return match.group(1) if match else None


def _literal(text: str) -> str:
    """A double-quoted Python string literal holding ``text``."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def strip_solution(source: str, *, where: str = "cell") -> str:
    """The student version of an exercise cell's source (see the module docstring).

    Raises :class:`CourseError` (naming ``where``) for an unmatched or nested marker, an END
    indented differently from its BEGIN, or a cell with no solution block at all.
    """
    name = exercise_name(source)
    if name is None:
        raise CourseError(f"{where}: an exercise cell must start with '# EXERCISE: <name>'")
    lines = source.split("\n")
    out: list[str] = []
    begin_indent: str | None = None
    blocks = 0
    for number, line in enumerate(lines, start=1):
        begin, end = BEGIN_RE.match(line), END_RE.match(line)
        if begin:
            if begin_indent is not None:
                raise CourseError(f"{where}, line {number}: nested '# BEGIN SOLUTION'")
            begin_indent = begin.group(1)
            hint_match = HINT_RE.match(out[-1]) if out else None
            hint = hint_match.group(1) if hint_match else f"{name}: write your solution here"
            out.append(f"{begin_indent}raise NotImplementedError({_literal(hint)})")
        elif end:
            if begin_indent is None:
                raise CourseError(f"{where}, line {number}: '# END SOLUTION' without a BEGIN")
            if end.group(1) != begin_indent:
                raise CourseError(
                    f"{where}, line {number}: '# END SOLUTION' must be indented like its BEGIN"
                )
            begin_indent = None
            blocks += 1
        elif begin_indent is None:
            out.append(line)
    if begin_indent is not None:
        raise CourseError(f"{where}: '# BEGIN SOLUTION' is never closed by '# END SOLUTION'")
    if blocks == 0:
        raise CourseError(f"{where}: exercise {name!r} has no '# BEGIN SOLUTION' block")
    return "\n".join(out)


def solution_lines(source: str) -> tuple[str, ...]:
    """The non-blank lines (stripped) between the solution markers of an exercise cell."""
    found: list[str] = []
    inside = False
    for line in source.split("\n"):
        if BEGIN_RE.match(line):
            inside = True
        elif END_RE.match(line):
            inside = False
        elif inside and line.strip():
            found.append(line.strip())
    return tuple(found)


def exercises(nb: NotebookNode) -> list[ExerciseCell]:
    """Every exercise cell of a (solution or student) notebook, in order."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and (name := exercise_name(cell.source)) is not None:
            found.append(ExerciseCell(name, index, solution_lines(cell.source)))
    return found


def student_notebook(nb: NotebookNode, *, where: str = "notebook") -> NotebookNode:
    """A copy of solution notebook ``nb``: every solution replaced by its stub, no outputs."""
    student = copy.deepcopy(nb)
    for index, cell in enumerate(student.cells):
        if cell.cell_type != "code":  # prose may mention the markers; it is copied as is
            continue
        cell.outputs = []
        cell.execution_count = None
        has_marker = any(BEGIN_RE.match(x) or END_RE.match(x) for x in cell.source.split("\n"))
        if exercise_name(cell.source) is not None:
            cell.source = strip_solution(cell.source, where=f"{where}, cell {index}")
        elif has_marker:
            raise CourseError(
                f"{where}, cell {index}: solution markers outside an '# EXERCISE:' cell"
            )
    return student


def render(nb: NotebookNode) -> str:
    """The exact text a notebook is written as (so that ``check`` can compare byte for byte)."""
    import nbformat

    return nbformat.writes(nb) + "\n"


def student_path(solution: Path, out_dir: Path) -> Path:
    return out_dir / solution.name


def solution_notebooks(solutions_dir: Path) -> list[Path]:
    """The solution notebooks, in course order (their names start with the number)."""
    if not solutions_dir.is_dir():
        raise FileNotFoundError(f"solutions_dir {solutions_dir} is not a directory")
    return sorted(solutions_dir.glob("[0-9][0-9]_*.ipynb"))


def expected_student_texts(solutions_dir: Path, out_dir: Path) -> dict[Path, str]:
    """Student notebook path -> the text it must have, for every solution notebook."""
    import nbformat

    texts = {}
    for path in solution_notebooks(solutions_dir):
        nb = nbformat.read(path, as_version=4)
        texts[student_path(path, out_dir)] = render(student_notebook(nb, where=str(path)))
    return texts


def build(
    solutions_dir: Path = NOTEBOOK_DIR / "solutions", out_dir: Path = NOTEBOOK_DIR
) -> list[Path]:
    """Write every student notebook; returns the paths that changed."""
    changed = []
    for path, text in expected_student_texts(solutions_dir, out_dir).items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


def out_of_date(
    solutions_dir: Path = NOTEBOOK_DIR / "solutions", out_dir: Path = NOTEBOOK_DIR
) -> list[str]:
    """Problems that ``build`` would fix (missing, stale or orphaned student notebooks)."""
    expected = expected_student_texts(solutions_dir, out_dir)
    problems = []
    for path, text in expected.items():
        if not path.exists():
            problems.append(f"{path}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: differs from its solution notebook")
    for path in sorted(out_dir.glob("[0-9][0-9]_*.ipynb")):
        if path not in expected:
            problems.append(f"{path}: has no solution notebook")
    return problems


def add_course_args(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``toydiff course`` and ``python -m toydiff.course``."""
    parser.add_argument("action", choices=("build", "check"))
    parser.add_argument("--solutions", type=Path, default=NOTEBOOK_DIR / "solutions")
    parser.add_argument("--out", type=Path, default=NOTEBOOK_DIR)


def run_course(args: argparse.Namespace) -> int:
    """``build`` writes the student notebooks; ``check`` exits 1 when they are out of date."""
    try:
        if args.action == "build":
            for path in build(args.solutions, args.out):
                print(f"wrote {path}")
            return 0
        problems = out_of_date(args.solutions, args.out)
    except (CourseError, FileNotFoundError) as err:
        print(f"toydiff course: error: {err}", file=sys.stderr)
        return 2
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print("run `python -m toydiff.course build` and commit the result", file=sys.stderr)
        return 1
    print("student notebooks are up to date")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m toydiff.course",
        description="Generate the student notebooks from notebooks/solutions/ or check them.",
    )
    add_course_args(parser)
    return run_course(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
