"""Load the reference answer of an exercise straight from its solution notebook.

The wrong-implementation tests check the notebook's own solution (not a copy of it): the exercise
cell is executed in a fresh namespace and the exercise's ``target`` is returned.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat

from toydiff.checks import EXERCISES

SOLUTIONS = Path(__file__).resolve().parent.parent / "notebooks" / "solutions"


def solution(name: str) -> Any:
    """The object the solution notebook's ``# EXERCISE: name`` cell defines as the target."""
    exercise = EXERCISES[name]
    nb = nbformat.read(SOLUTIONS / f"{exercise.notebook}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.startswith(f"# EXERCISE: {name}\n"):
            namespace: dict[str, Any] = {}
            exec(compile(cell.source, f"{exercise.notebook}:{name}", "exec"), namespace)
            return namespace[exercise.target]
    raise LookupError(f"no '# EXERCISE: {name}' cell in {exercise.notebook}.ipynb")
