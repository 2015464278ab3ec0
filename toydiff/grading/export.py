"""Export a student's notebooks to a plain Python module holding only their answers.

Grading must never re-run a student's training, plots or wandb calls, so the export keeps, from
every code cell, only the statements that are cheap and side-effect free to execute: imports,
function and class definitions, and assignments of literals or simple expressions (no calls).
Exercise cells (first line ``# EXERCISE: <name>``) are found wherever they are in the notebook
and become one section each; every other code cell contributes to a shared ``setup`` section
(the imports the exercises rely on) that runs first, so a later ``from toydiff import q_eq4``
cannot replace the student's own ``q_eq4``.

The exported text is an ordinary module, one ``# %% ...`` header per section, readable by the
instructor and loadable by :func:`toydiff.grading.implementation.load_implementation`, which
executes each section on its own so one broken exercise cell does not sink the others::

    # %% setup | 02_forward_process.ipynb
    import torch
    # %% exercise q_eq4 | 02_forward_process.ipynb cell 7
    def q_eq4(x, num_steps, betas, *, generator=None): ...
    # %% exercise q_eq2 | 02_forward_process.ipynb cell 5
    # !! syntax error: invalid syntax (line 4)
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path

EXERCISE_RE = re.compile(r"^# EXERCISE: ([A-Za-z_][A-Za-z0-9_]*)\s*$")
HEADER_RE = re.compile(r"^# %% (setup|exercise ([A-Za-z_][A-Za-z0-9_]*)) \| (.*)$")
ERROR_PREFIX = "# !! "

_SIMPLE_NODES = (
    ast.Constant,
    ast.Name,
    ast.Load,
    ast.Attribute,
    ast.Tuple,
    ast.List,
    ast.Set,
    ast.Dict,
    ast.UnaryOp,
    ast.BinOp,
    ast.BoolOp,
    ast.Compare,
    ast.Subscript,
    ast.Slice,
    ast.operator,
    ast.unaryop,
    ast.boolop,
    ast.cmpop,
)


class ExportError(ValueError):
    """A submission cannot be read at all (not a notebook, no such file)."""


@dataclass(frozen=True)
class Section:
    """One section of the exported module: the setup, or one exercise cell.

    ``error`` is set when the cell could not be parsed; ``source`` is then empty.
    """

    exercise: str | None
    origin: str
    source: str
    error: str | None = None

    def render(self) -> str:
        kind = "setup" if self.exercise is None else f"exercise {self.exercise}"
        lines = [f"# %% {kind} | {self.origin}"]
        if self.error:
            lines.append(ERROR_PREFIX + self.error.replace("\n", " "))
        if self.source:
            lines.append(self.source)
        return "\n".join(lines)


@dataclass(frozen=True)
class Export:
    """The exported answers of one submission: the setup section first, then the exercises."""

    sections: tuple[Section, ...]
    notes: tuple[str, ...] = ()

    def render(self) -> str:
        head = "# Exported for grading by toydiff.grading.export: only imports, definitions and"
        head += "\n# simple constants of the student's notebooks; one section per exercise cell.\n"
        notes = "".join(f"# note: {n}\n" for n in self.notes)
        return head + notes + "\n\n".join(s.render() for s in self.sections) + "\n"

    @property
    def exercises(self) -> dict[str, Section]:
        return {s.exercise: s for s in self.sections if s.exercise is not None}


def exercise_name(source: str) -> str | None:
    """The exercise a code cell answers (its ``# EXERCISE: <name>`` first line), else None."""
    match = EXERCISE_RE.match(source.split("\n", 1)[0])
    return match.group(1) if match else None


def _is_simple(node: ast.AST) -> bool:
    """Literal-like expressions only: evaluating them cannot train, plot, print or loop."""
    if isinstance(node, ast.Lambda):
        return True
    return all(isinstance(n, _SIMPLE_NODES) for n in ast.walk(node))


def _keep(stmt: ast.stmt) -> bool:
    if isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__":
        return False  # only legal as a module's first statement; sections are executed apart
    if isinstance(stmt, ast.Import | ast.ImportFrom | ast.FunctionDef | ast.ClassDef):
        return True
    if isinstance(stmt, ast.AsyncFunctionDef):
        return True
    if isinstance(stmt, ast.Assign | ast.AnnAssign) and stmt.value is not None:
        return _is_simple(stmt.value)
    return False


def _without_magics(source: str) -> str:
    """IPython lines (``%time``, ``!pip``, ``?obj``) are not Python: blank them, keep numbering."""
    return "\n".join(
        "" if line.lstrip().startswith(("%", "!", "?")) else line for line in source.split("\n")
    )


def kept_source(source: str) -> str:
    """The statements of one cell worth exporting, as source text (raises SyntaxError)."""
    text = _without_magics(source)
    tree = ast.parse(text)
    lines = text.split("\n")
    kept = []
    for stmt in tree.body:
        if _keep(stmt):
            start = min([d.lineno for d in getattr(stmt, "decorator_list", [])] + [stmt.lineno])
            kept.append("\n".join(lines[start - 1 : stmt.end_lineno]))
    return "\n".join(kept)


def _syntax_message(err: SyntaxError) -> str:
    return f"syntax error: {err.msg} (line {err.lineno})"


def read_cells(path: Path) -> list[str]:
    """The sources of a notebook's code cells, in order (plain JSON, no schema validation:
    a student's notebook with odd metadata is still graded)."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = nb["cells"]
        return [
            "".join(c["source"]) if isinstance(c["source"], list) else str(c["source"])
            for c in cells
            if c.get("cell_type") == "code"
        ]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        raise ExportError(f"{path.name} is not a readable notebook: {err}") from err


def notebook_paths(submission: Path) -> list[Path]:
    """The notebooks of a submission: the file itself, or every ``*.ipynb`` under the folder
    (Jupyter's ``.ipynb_checkpoints`` copies excluded), in name order."""
    if submission.is_file():
        return [submission]
    if not submission.is_dir():
        raise ExportError(f"submission {submission} is neither a notebook nor a folder")
    return sorted(p for p in submission.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def export_notebooks(paths: list[Path]) -> Export:
    """Export the exercise answers of ``paths`` (see the module docstring).

    An exercise found twice keeps its last cell (in notebook-name, then cell order) and the
    export notes it. An unreadable notebook is noted and skipped; its exercises are then missing.
    """
    setup: list[str] = []
    origins: list[str] = []
    exercises: dict[str, Section] = {}
    notes: list[str] = []
    for path in paths:
        try:
            cells = read_cells(path)
        except ExportError as err:
            notes.append(str(err))
            continue
        origins.append(path.name)
        for index, source in enumerate(cells):
            name = exercise_name(source)
            origin = f"{path.name} cell {index}"
            try:
                kept = kept_source(source)
            except SyntaxError as err:
                if name is not None:
                    exercises.pop(name, None)  # keep notebook order of the last occurrence
                    exercises[name] = Section(name, origin, "", _syntax_message(err))
                continue  # a broken non-exercise cell only loses its imports
            if name is None:
                if kept:
                    setup.append(kept)
                continue
            if name in exercises:
                notes.append(f"exercise {name} appears more than once; graded {origin}")
                exercises.pop(name)
            exercises[name] = Section(name, origin, kept)
    setup_section = Section(None, ", ".join(origins) or "no notebook", "\n".join(setup))
    return Export((setup_section, *exercises.values()), tuple(notes))


def export_submission(submission: Path) -> Export:
    """Export a submission: one notebook, or a folder of notebooks."""
    return export_notebooks(notebook_paths(submission))


def parse_sections(text: str) -> list[Section]:
    """The sections of an exported module (the inverse of :meth:`Export.render`)."""
    sections: list[Section] = []
    header: re.Match[str] | None = None
    body: list[str] = []
    error: str | None = None

    def close() -> None:
        if header is not None:
            name = header.group(2)
            sections.append(Section(name, header.group(3), "\n".join(body).strip("\n"), error))

    for line in text.split("\n"):
        match = HEADER_RE.match(line)
        if match:
            close()
            header, body, error = match, [], None
        elif header is not None and not body and error is None and line.startswith(ERROR_PREFIX):
            error = line[len(ERROR_PREFIX) :]
        elif header is not None:
            body.append(line)
    close()
    return sections
