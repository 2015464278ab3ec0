"""The grader: export, per-exercise loading, the pytest plugin, the batch runner and the reports.

Two batches run real grading subprocesses (the cost of this file):

- a synthetic course (two test-only exercises registered with ``--checks-module``, a hidden test)
  graded on a correct, a wrong, a hard-coded and every kind of misbehaving submission;
- the real course: the solution notebooks, the generated student notebooks and wrong answers
  made by editing the solution cells with the reference texts' known errors and common slips.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from toydiff import cli, course
from toydiff.grading.export import export_notebooks, export_submission, parse_sections
from toydiff.grading.implementation import (
    BrokenExercise,
    Implementation,
    MissingDefinition,
    load_implementation,
)
from toydiff.grading.plugin import SOLUTIONS_DIR, load_exercises
from toydiff.grading.report import write_reports
from toydiff.grading.runner import GradeOptions, StudentResult, discover, grade_all
from toydiff.grading.variants import KNOWN_ERRORS, MISBEHAVIOURS, edit_cell, rename, substitute

REPO = Path(__file__).resolve().parent.parent

# --- a synthetic course ------------------------------------------------------------------------

CHECKS_MODULE = """
from toydiff.checks.core import SubCheck, exercise, expect


def _doubles_three(f):
    expect(f(3) == 6, f"double(3) returned {f(3)!r}, expected 6")


def _doubles_floats(f):
    expect(f(-1.5) == -3.0, f"double(-1.5) returned {f(-1.5)!r}")


def _halves(cls):
    expect(cls().halve(4) == 2, "Halver().halve(4) should be 2")


@exercise("double", notebook="99_synthetic", target="double")
def _double_checks():
    return [
        SubCheck("doubles 3", _doubles_three, hint="multiply by two", points=2.0),
        SubCheck("doubles floats", _doubles_floats, hint="floats too"),
    ]


@exercise("halve", notebook="99_synthetic", target="Halver")
def _halve_checks():
    return [SubCheck("halves 4", _halves, hint="divide by two")]
"""

HIDDEN_TEST = """
import random

import pytest


@pytest.mark.exercise("double")
@pytest.mark.points(1)
def test_double_on_random_inputs(impl, grading_seed):
    rng = random.Random(grading_seed)
    for _ in range(20):
        x = rng.randint(-1000, 1000)
        assert impl.double(x) == 2 * x, f"SECRET-DETAIL {x}"
"""

DOUBLE = """# EXERCISE: double
import math


def double(x):
    '''Twice x.'''
    # HINT: multiply by two
    # BEGIN SOLUTION
    return 2 * x
    # END SOLUTION


print(double(21))
TABLE = {"three": double(3)}"""

HALVE = """# EXERCISE: halve
class Halver:
    def halve(self, x):
        # BEGIN SOLUTION
        return x / 2
        # END SOLUTION"""


def synthetic_notebook() -> nbformat.NotebookNode:
    """A solution notebook: set-up, a slow 'training' cell, two exercises and their checks."""
    return new_notebook(
        cells=[
            new_markdown_cell("# A synthetic course"),
            new_code_cell("import torch\n%matplotlib inline\nSCALE = 2\nprint('hello')"),
            new_code_cell(DOUBLE),
            new_code_cell("check_double(double)"),
            new_code_cell("while True:\n    train_forever()"),
            new_code_cell(HALVE),
            new_code_cell("from toydiff import gradient_images\ncheck_halve(Halver)"),
        ]
    )


def write_nb(nb: nbformat.NotebookNode, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


#: Misbehaviours used on the synthetic course.
INFINITE_LOOP = MISBEHAVIOURS["endless_loop"]
IGNORES_TIMEOUT = MISBEHAVIOURS["ignores_the_timeout"]
FLOOD = MISBEHAVIOURS["floods_output"]
SYNTAX_ERROR = MISBEHAVIOURS["syntax_error"]
IMPORT_ERROR = MISBEHAVIOURS["exception_at_import"]


# --- export and loading (in process) -----------------------------------------------------------


def test_export_keeps_imports_definitions_and_simple_constants_only(tmp_path: Path) -> None:
    nb_path = write_nb(synthetic_notebook(), tmp_path / "nb.ipynb")
    text = export_submission(nb_path).render()
    assert "def double(x):" in text and "class Halver:" in text
    assert "import torch" in text and "import math" in text and "SCALE = 2" in text
    assert "from toydiff import gradient_images" in text
    # calls, prints, loops and magics are not exported, so grading never runs them
    for absent in ("print(", "train_forever", "TABLE", "check_double", "%matplotlib"):
        assert absent not in text
    sections = parse_sections(text)
    assert [s.exercise for s in sections] == [None, "double", "halve"]
    assert sections[1].origin == "nb.ipynb cell 1"  # the index among code cells
    impl = Implementation(sections, {"double": "double", "halve": "Halver"})
    assert impl.double(21) == 42 and impl.target("halve")().halve(5) == 2.5


def test_exercise_cells_are_found_wherever_they_moved_and_the_last_copy_counts(
    tmp_path: Path,
) -> None:
    nb = synthetic_notebook()
    nb.cells.reverse()
    second = DOUBLE.replace("return 2 * x", "return x + x + 0")
    nb.cells.append(new_code_cell(second))
    exported = export_notebooks([write_nb(nb, tmp_path / "moved.ipynb")])
    assert list(exported.exercises) == ["halve", "double"]
    assert "x + x + 0" in exported.exercises["double"].source
    assert any("double appears more than once" in note for note in exported.notes)


def test_a_syntax_error_breaks_only_its_own_exercise(tmp_path: Path) -> None:
    nb = edit_cell(synthetic_notebook(), "halve", SYNTAX_ERROR)
    nb.cells.append(new_code_cell("this cell is not python ("))  # a non-exercise cell: ignored
    impl = load_implementation(
        write_nb(nb, tmp_path / "s.ipynb"), {"double": "double", "halve": "Halver"}
    )
    assert impl.double(2) == 4
    with pytest.raises(BrokenExercise, match="syntax error") as info:
        impl.target("halve")
    assert info.value.status == "syntax error"


def test_an_exception_or_a_hang_at_import_breaks_only_its_own_exercise(tmp_path: Path) -> None:
    nb = edit_cell(synthetic_notebook(), "double", IMPORT_ERROR)
    hang = "# EXERCISE: halve\nclass Halver:\n    while True:\n        pass"
    nb = edit_cell(nb, "halve", lambda _: hang)
    targets = {"double": "double", "halve": "Halver"}
    impl = load_implementation(write_nb(nb, tmp_path / "h.ipynb"), targets, import_timeout=0.3)
    with pytest.raises(BrokenExercise, match="ZeroDivisionError") as info:
        impl.target("double")
    assert info.value.status == "import error"
    with pytest.raises(BrokenExercise, match="did not finish") as info:
        _ = impl.Halver
    assert info.value.status == "timeout"


def test_the_library_cannot_stand_in_for_a_missing_answer(tmp_path: Path) -> None:
    nb = new_notebook(
        cells=[
            new_code_cell("from toydiff import q_eq4, gradient_images"),
            new_code_cell("# EXERCISE: gradient_images\ndef make_images(n):\n    return n"),
            new_code_cell("# EXERCISE: mse\ndef mse(a, b):\n    return 0.0"),
            # a later exercise cell importing the library's version does not replace the answer
            new_code_cell("# EXERCISE: later\nfrom toydiff import gradient_images as mse"),
        ]
    )
    targets = {"q_eq4": "q_eq4", "gradient_images": "gradient_images", "mse": "mse"}
    impl = load_implementation(write_nb(nb, tmp_path / "m.ipynb"), targets)
    with pytest.raises(MissingDefinition, match="no '# EXERCISE: q_eq4' cell"):
        _ = impl.q_eq4
    with pytest.raises(MissingDefinition, match="does not define gradient_images"):
        impl.target("gradient_images")
    assert impl.make_images(3) == 3
    assert impl.mse(1, 2) == 0.0 and impl.target("mse")(1, 2) == 0.0


def test_submission_layouts_and_bad_options(tmp_path: Path) -> None:
    write_nb(synthetic_notebook(), tmp_path / "subs" / "alice" / "nested" / "01_x.ipynb")
    write_nb(synthetic_notebook(), tmp_path / "subs" / "bob.ipynb")
    (tmp_path / "subs" / "notes.txt").write_text("ignored")
    assert sorted(discover(tmp_path / "subs")) == ["alice", "bob"]
    write_nb(synthetic_notebook(), tmp_path / "subs" / "bob" / "a.ipynb")
    with pytest.raises(ValueError, match="both a folder and a notebook"):
        discover(tmp_path / "subs")
    with pytest.raises(ValueError, match="submissions must be a folder"):
        discover(tmp_path / "nothing")
    assert cli.main(["grade", str(tmp_path / "nothing"), "--out", str(tmp_path / "g")]) == 2
    with pytest.raises(ValueError, match="timeout"):
        GradeOptions(timeout=0)
    with pytest.raises(ValueError, match="hidden"):
        GradeOptions(hidden=tmp_path / "missing")


def test_a_killed_run_counts_unreported_tests_as_not_run(tmp_path: Path) -> None:
    collected = [
        {
            "kind": "collected",
            "nodeid": f"t{i}",
            "exercise": ex,
            "subcheck": f"s{i}",
            "points": 1.0,
            "hint": "h",
            "hidden": False,
        }
        for i, ex in enumerate(["a", "a", "b"])
    ]
    finished = {**collected[0], "kind": "result", "passed": True, "status": "passed", "message": ""}
    died = StudentResult("carol", [*collected, finished], problems=["the process died"])
    grades = write_reports(tmp_path, [died], seed=7)
    assert grades[0].scores == {"a": 1.0, "b": 0.0}
    assert "not run: the process died" in (tmp_path / "feedback" / "carol.md").read_text()


# --- the synthetic batch (subprocesses) --------------------------------------------------------


def _read_grades(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        return {row["student"]: row for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def synthetic_batch(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("synthetic")
    checks = root / "synthetic_checks.py"
    checks.write_text(CHECKS_MODULE)
    hidden = root / "hidden"
    hidden.mkdir()
    (hidden / "test_hidden_double.py").write_text(HIDDEN_TEST)
    solution = synthetic_notebook()
    subs = root / "submissions"
    variants = {
        "good": solution,
        "student": course.student_notebook(solution),
        "wrong_halve": edit_cell(solution, "halve", substitute(r"x / 2", "x // 3")),
        "hardcoded": edit_cell(
            solution, "double", substitute(r"return 2 \* x", "return {3: 6, -1.5: -3.0}.get(x, x)")
        ),
        "loop_double": edit_cell(solution, "double", INFINITE_LOOP),
        "syntax_halve": edit_cell(solution, "halve", SYNTAX_ERROR),
        "import_double": edit_cell(solution, "double", IMPORT_ERROR),
        "missing_halve": edit_cell(solution, "halve", rename("Halver", "Halving")),
        "flood_double": edit_cell(solution, "double", FLOOD),
        "hang_double": edit_cell(solution, "double", IGNORES_TIMEOUT),
        "stuck_halve": edit_cell(solution, "halve", MISBEHAVIOURS["endless_loop_at_import"]),
        "exit_double": edit_cell(solution, "double", MISBEHAVIOURS["exits_the_process"]),
    }
    for name, nb in variants.items():
        write_nb(nb, subs / f"{name}.ipynb")
    out = root / "grades"
    argv = ["grade", str(subs), "--out", str(out), "--hidden", str(hidden), "--timeout", "2"]
    argv += ["--limit", "15", "--jobs", "2", "--seed", "1234", "--only", "double,halve"]
    assert cli.main([*argv, "--checks-module", str(checks)]) == 0
    return out


def _records(out: Path, student: str) -> list[dict]:
    files = sorted((out / "work" / student).glob("results-*.jsonl"))
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


EXPECTED_SYNTHETIC = {
    # student: (double, halve, what the status must mention)
    "good": (4, 1, "ok"),
    "student": (0, 0, "not attempted: double, halve"),
    "wrong_halve": (4, 0, "ok"),
    "hardcoded": (3, 1, "ok"),
    "loop_double": (0, 1, "timeout: double"),
    "syntax_halve": (4, 0, "syntax error: halve"),
    "import_double": (0, 1, "import error: double"),
    "missing_halve": (4, 0, "missing: halve"),
    "flood_double": (0, 1, "output flood: double"),
    "hang_double": (0, 1, "hung in double"),
    "stuck_halve": (4, 0, "timeout: halve"),
    "exit_double": (0, 1, "ended (exit code 3) during double"),
}


@pytest.mark.slow
def test_every_submission_loses_exactly_the_points_of_what_it_broke(synthetic_batch) -> None:
    out = synthetic_batch
    grades = _read_grades(out)
    assert set(grades) == set(EXPECTED_SYNTHETIC)
    for student, (double, halve, status) in EXPECTED_SYNTHETIC.items():
        row = grades[student]
        assert (float(row["double"]), float(row["halve"])) == (double, halve), (student, row)
        assert float(row["total"]) == double + halve and row["max"] == "5"
        assert status in row["status"], (student, row["status"])


@pytest.mark.slow
def test_hidden_tests_count_but_show_only_name_and_verdict(synthetic_batch) -> None:
    out = synthetic_batch
    text = (out / "feedback" / "hardcoded.md").read_text()
    assert "## double: 3 / 4" in text
    assert "hidden test `test_double_on_random_inputs` (1 pt): failed" in text
    assert "SECRET-DETAIL" not in text
    good = (out / "feedback" / "good.md").read_text()
    assert "hidden test `test_double_on_random_inputs` (1 pt): passed" in good
    # the instructor's records keep the detail, and the seed is the one asked for
    records = [r for r in _records(out, "hardcoded") if r["hidden"] and r["kind"] == "result"]
    assert len(records) == 1 and "SECRET-DETAIL" in records[0]["message"]
    assert json.loads((out / "summary.json").read_text())["grading_seed"] == 1234


@pytest.mark.slow
def test_feedback_names_what_passed_and_hints_at_what_failed(synthetic_batch) -> None:
    out = synthetic_batch
    text = (out / "feedback" / "wrong_halve.md").read_text()
    assert "## halve: 0 / 1" in text and "✗ halves 4 (1 pt): Halver().halve(4) should be 2" in text
    assert "hint: divide by two" in text and "✓ doubles 3 (2 pts)" in text
    loop = (out / "feedback" / "loop_double.md").read_text()
    assert "did not finish within 2" in loop and "an earlier test of double timed out" in loop
    student = (out / "feedback" / "student.md").read_text()
    assert "Not attempted yet" in student


@pytest.mark.slow
def test_floods_and_hangs_cost_neither_memory_nor_the_batch(synthetic_batch) -> None:
    out = synthetic_batch
    logs = list((out / "work").glob("*/log-*.txt"))
    assert logs and all(log.stat().st_size <= 64_000 for log in logs)
    seconds = json.loads((out / "summary.json").read_text())["seconds"]
    assert seconds["hang_double"] < 15.0 * 2 + 5  # killed at the limit once, then graded again
    assert all(s < 15.0 for student, s in seconds.items() if student != "hang_double")


# --- the real course (subprocesses) -------------------------------------------------------------


def _written_exercises() -> dict[str, str]:
    """Registered exercises whose solution notebook exists: name -> notebook."""
    return {
        name: ex.notebook
        for name, ex in load_exercises().items()
        if (SOLUTIONS_DIR / f"{ex.notebook}.ipynb").is_file()
    }


@pytest.fixture(scope="module")
def course_batch(tmp_path_factory: pytest.TempPathFactory):
    written = _written_exercises()
    wrong = {student: (ex, edit) for student, (ex, edit) in KNOWN_ERRORS.items() if ex in written}
    if not wrong:
        pytest.skip("none of the exercises with known-error variants has a solution notebook yet")
    graded = sorted({ex for ex, _ in wrong.values()})
    notebooks = sorted({written[ex] for ex in graded})
    subs = tmp_path_factory.mktemp("course") / "submissions"
    for name in notebooks:
        solution = nbformat.read(SOLUTIONS_DIR / f"{name}.ipynb", as_version=4)
        write_nb(solution, subs / "reference" / f"{name}.ipynb")
        # the committed student notebook (in sync with its solution, see test_course.py)
        committed = REPO / "notebooks" / f"{name}.ipynb"
        student = nbformat.read(committed, as_version=4) if committed.is_file() else None
        write_nb(student or course.student_notebook(solution), subs / "student" / f"{name}.ipynb")
        for student, (ex, edit) in wrong.items():
            nb = edit_cell(solution, ex, edit) if written[ex] == name else solution
            write_nb(nb, subs / student / f"{name}.ipynb")
    out = subs.parent / "grades"
    options = GradeOptions(timeout=20.0, limit=120.0, jobs=2, seed=5, only=tuple(graded))
    results, seed = grade_all(subs, out, options)
    write_reports(out, results, seed)
    return _read_grades(out), wrong, graded


@pytest.mark.slow
def test_course_reference_scores_full_marks_and_student_notebooks_zero(course_batch) -> None:
    grades, _, graded = course_batch
    assert grades["reference"]["percent"] == "100.0", grades["reference"]
    assert grades["reference"]["status"] == "ok"
    assert float(grades["student"]["total"]) == 0.0, grades["student"]
    assert f"not attempted: {', '.join(graded)}" in grades["student"]["status"]


@pytest.mark.slow
def test_course_known_errors_lose_points_at_their_exercise_only(course_batch) -> None:
    grades, wrong, graded = course_batch
    full = grades["reference"]
    for student, (exercise, _) in wrong.items():
        row = grades[student]
        for ex in graded:
            if ex == exercise:
                assert float(row[ex]) < float(full[ex]), f"{student} was not caught by {ex}"
            else:
                assert row[ex] == full[ex], f"{student} lost points at {ex}: {row}"
