"""The pytest side of grading: the ``impl`` and ``grading_seed`` fixtures, markers, JSON lines.

``tests/exercises/conftest.py`` adds the options (:func:`add_options`) and registers this module
as a plugin, so its fixtures are visible to the instructor's hidden tests too, wherever they live.
Every test carries the exercise it grades and its points as markers::

    @pytest.mark.exercise("q_eq4")
    @pytest.mark.points(2)
    def test_q_eq4_is_unbiased(impl, grading_seed): ...

With ``--results PATH`` every collected test is written as a ``{"kind": "collected"}`` line when
collection ends, and every finished test as a ``{"kind": "result"}`` line right away (flushed), so
that a run killed half way still leaves the results it reached. A result line holds ``student``,
``exercise``, ``subcheck``, ``points``, ``passed``, ``status`` (``passed``, ``failed``,
``not attempted``, ``missing``, ``syntax error``, ``import error``, ``timeout``, ``output flood``,
``skipped``), ``message``, ``hint``, ``hidden`` and ``nodeid``.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import json
import pkgutil
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from toydiff.checks.core import EXERCISES, CheckFailed, Exercise, SubCheck
from toydiff.grading.implementation import (
    Implementation,
    ImplementationError,
    load_implementation,
)

#: The default implementation under test: the course's solution notebooks.
SOLUTIONS_DIR = Path(__file__).resolve().parents[2] / "notebooks" / "solutions"

_FLOOD = pytest.StashKey[int]()
_RESULTS = pytest.StashKey[io.TextIOBase]()
_SEED = pytest.StashKey[int]()
_TIMED_OUT = pytest.StashKey[set[str]]()
_IMPL = pytest.StashKey[Implementation | Exception]()


class NotAttempted(Exception):
    """The answer still raises the stub's ``NotImplementedError``."""


class EarlierTimeout(Exception):
    """An earlier test of the same exercise timed out: an endless loop would time out again, so
    the rest of that exercise's tests are failed at once instead of costing a timeout each."""


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("toydiff grading")
    group.addoption(
        "--impl",
        default=None,
        help="answers under test: an exported .py, a notebook or a folder of notebooks "
        "(default: notebooks/solutions, the reference solutions)",
    )
    group.addoption("--hidden", default=None, help="folder of the instructor's hidden tests")
    group.addoption("--results", default=None, help="write one JSON line per test to this file")
    group.addoption(
        "--student", default=None, help="student name in the results (default: --impl's name)"
    )
    group.addoption(
        "--grading-seed",
        type=int,
        default=None,
        help="seed of the grading_seed fixture (default: drawn at random for this run)",
    )
    group.addoption(
        "--only",
        default=None,
        help="comma-separated exercises to grade (default: every registered exercise)",
    )
    group.addoption(
        "--exclude", default=None, help="comma-separated exercises not to run (graded elsewhere)"
    )
    group.addoption(
        "--checks-module",
        action="append",
        default=[],
        help="extra module (dotted name or .py path) registering exercises; repeatable",
    )
    group.addoption(
        "--import-timeout",
        type=float,
        default=10.0,
        help="seconds an exercise cell may take to define its names",
    )
    group.addoption(
        "--output-cap",
        type=int,
        default=1_000_000,
        help="characters one test may print before it fails as an output flood",
    )


def _import_checks_module(spec: str) -> None:
    if spec.endswith(".py"):
        path = Path(spec).resolve()
        name = f"_grading_checks_{path.stem}"
        if name in sys.modules:  # registering an exercise twice is an error
            return
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise ValueError(f"--checks-module {spec}: cannot import this file")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_spec.name] = module
        module_spec.loader.exec_module(module)
    else:
        importlib.import_module(spec)


def load_exercises(extra_modules: list[str] | tuple[str, ...] = ()) -> dict[str, Exercise]:
    """Import every topic module of :mod:`toydiff.checks` (and ``extra_modules``) so that the
    registry holds every exercise; returns the registry."""
    import toydiff.checks

    for info in pkgutil.iter_modules(toydiff.checks.__path__, "toydiff.checks."):
        importlib.import_module(info.name)
    for spec in extra_modules:
        _import_checks_module(spec)
    return EXERCISES


def _selected(config: pytest.Config) -> dict[str, Exercise]:
    exercises = load_exercises(config.getoption("checks_module", []) or [])
    only = config.getoption("only", None)
    if not only:
        return dict(exercises)
    wanted = [name.strip() for name in only.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in exercises]
    if unknown:
        raise pytest.UsageError(f"--only: unknown exercises {unknown}; known: {sorted(exercises)}")
    return {name: exercises[name] for name in wanted}


def run_subcheck(impl: Implementation, exercise: str, subcheck: SubCheck) -> None:
    """Grade one sub-check of ``exercise`` on the student's answer."""
    answer = impl.target(exercise)
    try:
        subcheck.fn(answer)
    except NotImplementedError:
        raise NotAttempted(
            "not attempted yet (the stub still raises NotImplementedError)"
        ) from None


# --- hooks -----------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    for line in (
        "exercise(name): the exercise a grading test belongs to",
        "points(value): the points a grading test is worth (default 1)",
        "subcheck(name): the sub-check name shown in the feedback",
        "hint(text): what to fix when a grading test fails",
    ):
        config.addinivalue_line("markers", line)
    seed = config.getoption("grading_seed", None)
    config.stash[_TIMED_OUT] = set()
    config.stash[_SEED] = seed if seed is not None else random.SystemRandom().randrange(2**31)
    results = config.getoption("results", None)
    if results:
        config.stash[_RESULTS] = open(results, "a", encoding="utf-8")  # noqa: SIM115


def pytest_unconfigure(config: pytest.Config) -> None:
    stream = config.stash.get(_RESULTS, None)
    if stream is not None:
        stream.close()


def pytest_report_header(config: pytest.Config) -> str:
    return f"toydiff grading: grading_seed={config.stash[_SEED]}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``subcheck_case`` over every sub-check of every selected exercise."""
    if "subcheck_case" not in metafunc.fixturenames:
        return
    config = metafunc.config
    grading_solutions = not config.getoption("impl", None)
    cases = []
    for exercise in _selected(config).values():
        # while the course is being written, an exercise's solution notebook may not exist yet
        unwritten = not (SOLUTIONS_DIR / f"{exercise.notebook}.ipynb").is_file()
        for sub in exercise.subchecks():
            marks = [
                pytest.mark.exercise(exercise.name),
                pytest.mark.points(sub.points),
                pytest.mark.subcheck(sub.name),
                pytest.mark.hint(sub.hint),
            ]
            if grading_solutions and unwritten:
                reason = f"notebooks/solutions/{exercise.notebook}.ipynb is not written yet"
                marks.append(pytest.mark.skip(reason=reason))
            cases.append(
                pytest.param((exercise.name, sub), id=f"{exercise.name}: {sub.name}", marks=marks)
            )
    metafunc.parametrize("subcheck_case", cases)


def _hidden_dir(config: pytest.Config) -> Path | None:
    hidden = config.getoption("hidden", None)
    return Path(hidden).resolve() if hidden else None


def _is_hidden(item: pytest.Item, hidden: Path | None) -> bool:
    return hidden is not None and Path(item.path).resolve().is_relative_to(hidden)


def _names(option: str | None) -> set[str] | None:
    return {name.strip() for name in option.split(",") if name.strip()} if option else None


def _is_grading(item: pytest.Item) -> bool:
    """A grading test: marked with its exercise, or one of the hidden tests."""
    marked = item.get_closest_marker("exercise") is not None
    return marked or _is_hidden(item, _hidden_dir(item.config))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep the tests of the selected exercises (``--only``) minus the ``--exclude``d ones."""
    only = _names(config.getoption("only", None))
    exclude = _names(config.getoption("exclude", None))
    if only is None and exclude is None:
        return
    keep, drop = [], []
    for item in items:
        marker = item.get_closest_marker("exercise")
        name = marker.args[0] if marker is not None else None
        wanted = name is None or ((only is None or name in only) and name not in (exclude or ()))
        (keep if wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _student(config: pytest.Config) -> str:
    name = config.getoption("student", None)
    if name:
        return name
    impl = config.getoption("impl", None)
    return Path(impl).stem if impl else "reference"


def _describe(item: pytest.Item) -> dict[str, Any]:
    config = item.config
    exercise = item.get_closest_marker("exercise")
    points = item.get_closest_marker("points")
    subcheck = item.get_closest_marker("subcheck")
    hint = item.get_closest_marker("hint")
    return {
        "student": _student(config),
        "exercise": exercise.args[0] if exercise else "unassigned",
        "subcheck": subcheck.args[0] if subcheck else item.name,
        "points": float(points.args[0]) if points else 1.0,
        "hint": hint.args[0] if hint else "",
        "hidden": _is_hidden(item, _hidden_dir(config)),
        "nodeid": item.nodeid,
    }


def _write(config: pytest.Config, record: dict[str, Any]) -> None:
    stream = config.stash.get(_RESULTS, None)
    if stream is not None:
        stream.write(json.dumps(record) + "\n")
        stream.flush()


def _load(config: pytest.Config) -> Implementation:
    path = Path(config.getoption("impl", None) or SOLUTIONS_DIR)
    targets = {name: ex.target for name, ex in _selected(config).items()}
    return load_implementation(
        path, targets, import_timeout=config.getoption("import_timeout", 10.0)
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    """Record the collected grading tests, then load the answers once, before any test runs:
    under no test's timeout, so a cell that hangs at import costs only its own exercise."""
    for item in session.items:
        if _is_grading(item):
            _write(session.config, {"kind": "collected", **_describe(item)})
    if any("impl" in getattr(item, "fixturenames", ()) for item in session.items):
        try:
            session.config.stash[_IMPL] = _load(session.config)
        except Exception as err:  # reported by every test that asks for the answers
            session.config.stash[_IMPL] = err


class _CountingSink(io.TextIOBase):
    """A text sink that only counts: grading output is never stored, whatever its size."""

    def __init__(self) -> None:
        self.count = 0

    def write(self, text: str) -> int:
        self.count += len(text)
        return len(text)

    def writable(self) -> bool:
        return True


def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker("exercise")
    if marker is not None and marker.args[0] in item.config.stash[_TIMED_OUT]:
        raise EarlierTimeout(f"not run: an earlier test of {marker.args[0]} timed out")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Run a grading test with its printing counted and discarded (other tests of the same
    session, say the rest of the suite, are left alone)."""
    if not _is_grading(item):
        return (yield)
    sink = _CountingSink()
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = sink
    try:
        return (yield)
    finally:
        sys.stdout, sys.stderr = saved
        item.stash[_FLOOD] = sink.count


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def _classify(excinfo: pytest.ExceptionInfo[BaseException], timeout: Any) -> tuple[str, str]:
    err = excinfo.value
    if isinstance(err, ImplementationError):
        return err.status, str(err)
    if isinstance(err, EarlierTimeout):
        return "timeout", str(err)
    if isinstance(err, NotAttempted):
        return "not attempted", str(err)
    if isinstance(err, CheckFailed):
        return "failed", str(err)
    if isinstance(err, pytest.fail.Exception) and str(err).startswith("Timeout"):
        return "timeout", f"did not finish within {timeout} s (an endless loop?)"
    if isinstance(err, AssertionError):
        text = str(err).strip().splitlines()
        return "failed", text[0] if text else "an assertion failed"
    return "failed", f"your code raised {_one_line(err)}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if not _is_grading(item):
        return report
    if call.when == "call" or (call.when == "setup" and not report.passed):
        cap = item.config.getoption("output_cap", 1_000_000)
        printed = item.stash.get(_FLOOD, 0)
        if report.passed:
            status, message = "passed", ""
            if printed > cap:
                status = "output flood"
                message = f"printed {printed:,} characters in one test (the cap is {cap:,})"
                report.outcome = "failed"
                report.longrepr = message
        elif report.skipped:
            status, message = "skipped", ""
        else:
            timeout = item.config.getoption("timeout", None)
            status, message = _classify(call.excinfo, timeout) if call.excinfo else ("failed", "")
        record = {"kind": "result", **_describe(item), "passed": status == "passed"}
        if status == "timeout":
            item.config.stash[_TIMED_OUT].add(record["exercise"])
        _write(item.config, {**record, "status": status, "message": message})
    return report


@pytest.fixture(scope="session")
def grading_seed(request: pytest.FixtureRequest) -> int:
    """A seed chosen at grading time (``--grading-seed``, else random and shown in the header):
    property-style tests draw their shapes and timesteps from it, so a student cannot tune an
    answer to fixed inputs, and a failure can be replayed with the same seed."""
    return request.config.stash[_SEED]


@pytest.fixture(scope="session")
def impl(request: pytest.FixtureRequest) -> Implementation:
    """The implementation under test (``--impl``; default: the solution notebooks)."""
    loaded = request.config.stash.get(_IMPL, None)
    if loaded is None:  # a test collected in an unusual way: load it now
        loaded = _load(request.config)
    if isinstance(loaded, Exception):
        raise loaded
    return loaded
