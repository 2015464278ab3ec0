"""The course notebooks: every solution notebook runs, student notebooks are generated and clean.

Each solution notebook is executed with nbclient in a fresh ``python3`` kernel (the venv's), in a
temporary directory, offline (``WANDB_MODE=disabled``, ``MPLBACKEND=Agg``). Wall times are printed
in the terminal summary and written to ``outputs/notebook_timings.json``.
"""

from __future__ import annotations

import ast
import json
import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import toydiff.checks
from toydiff import course
from toydiff.checks import EXERCISES

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "notebooks" / "solutions"
STUDENT = ROOT / "notebooks"
TIMINGS = ROOT / "outputs" / "notebook_timings.json"
SOLUTION_PATHS = sorted(SOLUTIONS.glob("[0-9][0-9]_*.ipynb"))
# Course budget on 2 cores: 45 s a notebook; the assertion allows for a busy machine.
NOTEBOOK_BUDGET_S = 45.0
NOTEBOOK_LIMIT_S = 2 * NOTEBOOK_BUDGET_S

_timings: dict[str, float] = {}


@pytest.fixture(scope="module")
def timing_report(request: pytest.FixtureRequest):
    """Collects wall times; prints them and writes them to TIMINGS at the end of the module."""
    yield _timings
    if not _timings:
        return
    TIMINGS.parent.mkdir(exist_ok=True)
    previous = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    previous.update(_timings)
    TIMINGS.write_text(json.dumps(previous, indent=1, sort_keys=True) + "\n")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line("")
            reporter.write_sep("-", "notebook wall times (s)")
            for name, seconds in sorted(_timings.items()):
                reporter.write_line(f"{name:40s} {seconds:6.1f}")
            reporter.write_line(f"{'total':40s} {sum(_timings.values()):6.1f}")


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


@pytest.mark.slow
@pytest.mark.parametrize("path", SOLUTION_PATHS, ids=lambda p: p.stem)
def test_solution_notebook_runs(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, timing_report: dict
) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("TQDM_DISABLE", "1")
    # One intra-op thread: the course's matrices are tiny, and on a busy 2-core machine threads
    # that spin-wait for each other made training steps 50x slower (measured: 0.7 s vs 34 s).
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    nb = _read(path)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=NOTEBOOK_LIMIT_S,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    seconds = time.perf_counter() - start
    timing_report[path.stem] = seconds
    assert seconds < NOTEBOOK_LIMIT_S, f"{path.name} took {seconds:.1f} s"


def test_there_are_notebooks() -> None:
    assert SOLUTION_PATHS, f"no solution notebooks in {SOLUTIONS}"


def test_solution_notebooks_have_no_outputs() -> None:
    for path in SOLUTION_PATHS:
        for index, cell in enumerate(_read(path).cells):
            if cell.cell_type == "code":
                assert not cell.outputs, f"{path.name} cell {index} has outputs: strip them"
                assert cell.execution_count is None, f"{path.name} cell {index}: execution_count"


def test_student_notebooks_in_sync() -> None:
    assert course.out_of_date(SOLUTIONS, STUDENT) == []


def test_student_notebooks_hold_no_solution_code() -> None:
    for path in SOLUTION_PATHS:
        solution, student = _read(path), _read(STUDENT / path.name)
        for index, cell in enumerate(student.cells):
            assert "BEGIN SOLUTION" not in cell.source, f"{path.name} cell {index}"
            assert "END SOLUTION" not in cell.source, f"{path.name} cell {index}"
        student_cells = {ex.name: student.cells[ex.cell_index] for ex in course.exercises(student)}
        for ex in course.exercises(solution):
            assert ex.name in student_cells, f"{path.name}: exercise {ex.name} missing for students"
            cell = student_cells[ex.name]
            kept = {line.strip() for line in cell.source.split("\n")}
            leaked = [line for line in ex.solution_lines if line in kept]
            assert not leaked, f"{path.name}, exercise {ex.name}: solution lines {leaked}"
            assert "raise NotImplementedError(" in cell.source


def _defined_names(source: str) -> set[str]:
    tree = ast.parse(source)
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def test_each_exercise_is_registered_defined_and_checked_right_after() -> None:
    for path in SOLUTION_PATHS:
        nb = _read(path)
        for ex in course.exercises(nb):
            assert ex.name in EXERCISES, f"{path.name}: exercise {ex.name} has no registered check"
            registered = EXERCISES[ex.name]
            assert registered.notebook == path.stem, (
                f"exercise {ex.name} is registered for notebook {registered.notebook!r}, "
                f"found in {path.stem}"
            )
            defined = _defined_names(nb.cells[ex.cell_index].source)
            assert registered.target in defined, f"{path.name}: {ex.name} must define the target"
            following = nb.cells[ex.cell_index + 1] if ex.cell_index + 1 < len(nb.cells) else None
            call = f"check_{ex.name}({registered.target})"
            assert following is not None and following.cell_type == "code", (
                f"{path.name}: exercise {ex.name} must be followed by a code cell calling {call}"
            )
            assert call in following.source, f"{path.name}: the next cell must call {call}"


def test_every_registered_exercise_is_in_exactly_one_notebook() -> None:
    where: dict[str, list[str]] = {}
    for path in SOLUTION_PATHS:
        for ex in course.exercises(_read(path)):
            where.setdefault(ex.name, []).append(path.stem)
    for name in EXERCISES:
        assert len(where.get(name, [])) == 1, f"exercise {name} appears in {where.get(name, [])}"


def test_student_exercise_cells_run_alone_and_report_not_attempted() -> None:
    """Each student exercise cell is self-contained (the grader runs it alone) and its check,
    exported from toydiff.checks, reports the untouched stub as "not attempted"."""
    for path in SOLUTION_PATHS:
        student = _read(STUDENT / path.name)
        for ex in course.exercises(student):
            namespace: dict = {}
            exec(
                compile(student.cells[ex.cell_index].source, f"{path.name}:{ex.name}", "exec"),
                namespace,
            )
            check = getattr(toydiff.checks, f"check_{ex.name}", None)
            assert check is not None, f"toydiff.checks exports no check_{ex.name}"
            report = check(namespace[EXERCISES[ex.name].target], verbose=False)
            assert not report.attempted, f"{path.name}, {ex.name}: {report.summary()}"
