"""Wrong and misbehaving variants of solution notebooks, to prove that grading catches them.

A variant is an edit of one exercise cell of a solution notebook: :data:`KNOWN_ERRORS` holds the
reference texts' known errors and common slips (each must lose points at its exercise and only
there), :data:`MISBEHAVIOURS` the ways a submission can hurt the grader itself (an endless loop,
one that ignores the per-test alarm, one that ends the process, a syntax error, an exception at
import, a missing function, megabytes printed). The tests and ``benchmarks/bench_grading.py``
build their submissions with them; an instructor who adds a check can use them to see it bite.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable

from nbformat import NotebookNode

from toydiff.grading.export import exercise_name

Edit = Callable[[str], str]


def edit_cell(nb: NotebookNode, exercise: str, edit: Edit) -> NotebookNode:
    """A copy of ``nb`` with its ``# EXERCISE: exercise`` cell's source replaced by
    ``edit(source)``. Raises LookupError when the cell is absent or the edit changes nothing
    (the solution's text moved on and the variant needs updating)."""
    nb = copy.deepcopy(nb)
    cells = [c for c in nb.cells if c.cell_type == "code" and exercise_name(c.source) == exercise]
    if len(cells) != 1:
        raise LookupError(f"expected one '# EXERCISE: {exercise}' cell, found {len(cells)}")
    new = edit(cells[0].source)
    if new == cells[0].source:
        raise LookupError(f"the edit of exercise {exercise} changed nothing: update the variant")
    cells[0].source = new
    return nb


def substitute(pattern: str, replacement: str) -> Edit:
    """Replace every match of the regular expression ``pattern``."""
    return lambda source: re.sub(pattern, replacement, source)


def after_begin(lines: str) -> Edit:
    """Insert ``lines`` right after the ``# BEGIN SOLUTION`` line, indented like it."""

    def edit(source: str) -> str:
        match = re.search(r"^( *)# BEGIN SOLUTION\n", source, flags=re.M)
        if match is None:
            return source
        block = "".join(f"{match.group(1)}{line}\n" for line in lines.split("\n"))
        return source[: match.end()] + block + source[match.end() :]

    return edit


def append(lines: str) -> Edit:
    """Append top-level ``lines`` to the cell."""
    return lambda source: source + "\n\n" + lines


def rename(name: str, new_name: str) -> Edit:
    """Define the answer under another name (a missing function or class)."""
    return substitute(rf"(?m)^(def|class) {re.escape(name)}\b", rf"\1 {new_name}")


#: Misbehaviour -> an edit that applies to any exercise cell with a solution block.
MISBEHAVIOURS: dict[str, Edit] = {
    "endless_loop": after_begin("while True:\n    pass"),
    "ignores_the_timeout": after_begin(
        "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass"
    ),
    "endless_loop_at_import": append("class _Stuck:\n    while True:\n        pass"),
    "exits_the_process": after_begin("import os\nos._exit(3)"),
    "syntax_error": append("def broken(:\n    pass"),
    "exception_at_import": append("_RATIO = 1 / 0"),
    "floods_output": after_begin(
        'import os\nos.write(1, b"y" * 3_000_000)\nfor _ in range(30):\n    print("x" * 100_000)'
    ),
}

#: Variant name -> (exercise, edit of its solution cell): the known errors of the reference
#: texts (numbered as in reference/README.md) and common slips.
KNOWN_ERRORS: dict[str, tuple[str, Edit]] = {
    "q_eq4_uniform_noise": ("q_eq4", substitute(r"torch\.randn\(", "torch.rand(")),
    # error 3: k steps use the first k alphas, not k + 1
    "q_eq4_counts_one_step_too_many": (
        "q_eq4",
        substitute(r"\[:\s*num_steps\]", "[: num_steps + 1]"),
    ),
    "q_eq2_no_square_root": ("q_eq2", substitute(r"beta\s*\*\*\s*0\.5\s*\* noise", "beta * noise")),
    # error 1: the added noise scaled by beta_t instead of sigma_t
    "ddpm_step_sigma_is_beta": ("ddpm_step", substitute(r"math\.sqrt\(var\) \*", "var *")),
    # error 4: the clipped mean overwritten by the unclipped one
    "ddpm_step_clip_overwritten": (
        "ddpm_step",
        substitute(r"\n    else:\n        mean = \(x_t", "\n    if True:\n        mean = (x_t"),
    ),
    "spot_the_bug_skips_index_0": (
        "spot_the_bug",
        substitute(r"range\(len\(schedule\) - 1, -1, -1\)", "range(len(schedule) - 1, 0, -1)"),
    ),
    # error 2: index 0 never drawn
    "noise_img_never_index_0": ("noise_img", substitute(r"randint\(0, ", "randint(1, ")),
    # error 8: after clamping x0 the direction still uses the unclamped noise prediction
    "ddim_step_unclamped_eps": (
        "ddim_step",
        substitute(
            r"\n( +)eps = \(x_t - math\.sqrt\(ab\) \* x0\) / math\.sqrt\(1 - ab\)", r"\n\1pass"
        ),
    ),
}
