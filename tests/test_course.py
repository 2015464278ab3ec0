"""The student-notebook generator: marker replacement, hints, indentation, idempotence, errors."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from toydiff import cli, course

EXERCISE = '''# EXERCISE: double
def double(x):
    """Twice x."""
    # HINT: multiply by two
    # BEGIN SOLUTION
    y = x * 2
    return y
    # END SOLUTION'''


def test_solution_block_becomes_stub_with_hint_at_marker_indent() -> None:
    out = course.strip_solution(EXERCISE)
    assert out == (
        '# EXERCISE: double\ndef double(x):\n    """Twice x."""\n'
        "    # HINT: multiply by two\n"
        '    raise NotImplementedError("multiply by two")'
    )
    namespace: dict = {}
    exec(out, namespace)
    with pytest.raises(NotImplementedError, match="multiply by two"):
        namespace["double"](3)


def test_no_hint_gives_a_default_message_and_text_after_the_block_stays() -> None:
    src = "# EXERCISE: f\ndef f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\nZ = 3"
    out = course.strip_solution(src)
    assert out.split("\n") == [
        "# EXERCISE: f",
        "def f():",
        '    raise NotImplementedError("f: write your solution here")',
        "Z = 3",
    ]


def test_several_blocks_and_top_level_indentation() -> None:
    src = (
        "# EXERCISE: g\nclass G:\n    def a(self):\n        # BEGIN SOLUTION\n        return 1\n"
        '        # END SOLUTION\n\n    def b(self):\n        # HINT: say "hi" \\ there\n'
        "        # BEGIN SOLUTION\n        return 2\n        # END SOLUTION\n"
    )
    out = course.strip_solution(src)
    assert "return 1" not in out and "return 2" not in out
    assert '        raise NotImplementedError("g: write your solution here")' in out
    assert '        raise NotImplementedError("say \\"hi\\" \\\\ there")' in out
    namespace: dict = {}
    exec(out, namespace)
    with pytest.raises(NotImplementedError, match=r'say "hi" \\ there'):
        namespace["G"]().b()


@pytest.mark.parametrize(
    ("src", "message"),
    [
        ("def f():\n    # BEGIN SOLUTION\n    # END SOLUTION", "must start with"),
        ("# EXERCISE: f\ndef f():\n    # BEGIN SOLUTION\n    return 1", "never closed"),
        ("# EXERCISE: f\ndef f():\n    return 1\n    # END SOLUTION", "without a BEGIN"),
        ("# EXERCISE: f\n# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION", "nested"),
        ("# EXERCISE: f\ndef f():\n    # BEGIN SOLUTION\n    pass\n# END SOLUTION", "indented"),
        ("# EXERCISE: f\ndef f():\n    pass", "no '# BEGIN SOLUTION'"),
    ],
)
def test_malformed_markers_raise(src: str, message: str) -> None:
    with pytest.raises(course.CourseError, match=message):
        course.strip_solution(src, where="nb.ipynb, cell 3")


def _solution_nb() -> nbformat.NotebookNode:
    code = new_code_cell("print(1)")
    code.outputs = [new_output("stream", name="stdout", text="1\n")]
    code.execution_count = 4
    return new_notebook(
        cells=[
            new_markdown_cell("Write `double`. The cell uses `# BEGIN SOLUTION` markers."),
            new_code_cell(EXERCISE),
            new_code_cell("check_double(double)"),
            code,
        ]
    )


def test_student_notebook_strips_outputs_and_solutions_only() -> None:
    solution = _solution_nb()
    student = course.student_notebook(solution)
    assert student.cells[0].source == solution.cells[0].source  # prose untouched
    assert "y = x * 2" not in student.cells[1].source
    assert "y = x * 2" in solution.cells[1].source  # the input is not modified
    assert student.cells[2].source == "check_double(double)"
    assert student.cells[3].outputs == [] and student.cells[3].execution_count is None
    assert [e.name for e in course.exercises(solution)] == ["double"]
    assert course.exercises(solution)[0].solution_lines == ("y = x * 2", "return y")


def test_markers_outside_an_exercise_cell_are_an_error() -> None:
    nb = new_notebook(cells=[new_code_cell("# BEGIN SOLUTION\nx = 1\n# END SOLUTION")])
    with pytest.raises(course.CourseError, match="outside"):
        course.student_notebook(nb)


def test_build_is_idempotent_and_check_sees_staleness(tmp_path: Path) -> None:
    solutions, out = tmp_path / "solutions", tmp_path / "student"
    solutions.mkdir()
    out.mkdir()
    nbformat.write(_solution_nb(), solutions / "00_demo.ipynb")
    assert course.out_of_date(solutions, out) == [f"{out / '00_demo.ipynb'}: missing"]
    assert course.build(solutions, out) == [out / "00_demo.ipynb"]
    text = (out / "00_demo.ipynb").read_text()
    assert course.build(solutions, out) == []  # second build changes nothing
    assert (out / "00_demo.ipynb").read_text() == text
    assert course.out_of_date(solutions, out) == []
    assert course.main(["check", "--solutions", str(solutions), "--out", str(out)]) == 0

    (out / "00_demo.ipynb").write_text(text.replace("multiply by two", "x"))
    (out / "07_orphan.ipynb").write_text(text)
    problems = course.out_of_date(solutions, out)
    assert any("differs" in p for p in problems)
    assert any("no solution notebook" in p for p in problems)
    assert course.main(["check", "--solutions", str(solutions), "--out", str(out)]) == 1
    assert cli.main(["course", "check", "--solutions", str(solutions), "--out", str(out)]) == 1
    assert cli.main(["course", "check", "--solutions", str(tmp_path / "none")]) == 2
    student = nbformat.read(out / "00_demo.ipynb", as_version=4)
    assert "BEGIN SOLUTION" not in student.cells[1].source
