"""Grade a folder of submissions, each in its own pytest subprocess, in parallel.

Layout of ``submissions/``: one entry per student, named by the student —

- a folder ``submissions/<student>/`` holding that student's notebooks (any names, any depth;
  ``.ipynb_checkpoints`` ignored), or
- a single notebook ``submissions/<student>.ipynb`` holding all of their exercise cells.

For each student the runner exports the answers (:mod:`toydiff.grading.export`) to
``<out>/work/<student>/answers.py``, then runs ``pytest tests/exercises --impl answers.py`` in a
process of its own (its own session, so a kill reaches whatever the student started) with wandb
disabled, the GPU hidden, one torch thread, a per-test timeout (pytest-timeout) and a wall-clock
limit for the whole process. The processes are forked from a multiprocessing fork server that has
imported torch, pytest and the checks once, so a submission costs its tests, not a fresh
``import torch``. A grading process writes its own log through a writer that keeps only the first
``log_cap`` characters, and its file descriptors 1 and 2 go to /dev/null, so a flood costs neither
memory nor disk. The results come back as JSON lines; a test that was collected but never
reported (the process was killed or crashed) counts as failed with that reason. By hand, the same
run is ``python -m pytest`` followed by :func:`pytest_args`.
"""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
import multiprocessing.forkserver
import os
import pkgutil
import re
import secrets
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toydiff.grading.export import ExportError, export_submission

REPO_ROOT = Path(__file__).resolve().parents[2]
EXERCISE_TESTS = REPO_ROOT / "tests" / "exercises"
#: How many times a submission is graded again after its process hung past the limit or ended
#: early, each time without the exercise it stopped in.
MAX_RETRIES = 2
_STUDENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]*$")


@dataclass(frozen=True)
class GradeOptions:
    """How to grade: ``timeout`` seconds per test, ``limit`` seconds per submission."""

    hidden: Path | None = None
    timeout: float = 10.0
    limit: float = 300.0
    jobs: int = 0  # 0: one per available core
    seed: int | None = None  # grading_seed; drawn once per batch when None
    only: tuple[str, ...] = ()
    checks_modules: tuple[str, ...] = ()
    log_cap: int = 64_000

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {self.timeout}")
        if self.limit <= 0:
            raise ValueError(f"limit must be > 0 seconds, got {self.limit}")
        if self.jobs < 0:
            raise ValueError(f"jobs must be >= 0 (0 = one per core), got {self.jobs}")
        if self.hidden is not None and not Path(self.hidden).is_dir():
            raise ValueError(f"hidden must be a folder of test files, got {self.hidden}")


@dataclass
class StudentResult:
    """One student's graded tests (result records) and what went wrong around them."""

    student: str
    records: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # process-level: killed, crashed, ...
    export_notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    log: str = ""


def discover(submissions: Path) -> dict[str, Path]:
    """Student name -> submission (a folder or a notebook), sorted by name."""
    submissions = Path(submissions)
    if not submissions.is_dir():
        raise ValueError(f"submissions must be a folder, got {submissions}")
    found: dict[str, Path] = {}
    for entry in sorted(submissions.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir() or entry.suffix == ".ipynb":
            name = entry.name if entry.is_dir() else entry.stem
            if not _STUDENT_RE.match(name):
                raise ValueError(
                    f"submission {entry.name!r}: a student name may hold letters, digits "
                    "and _ . @ + - only"
                )
            if name in found:
                raise ValueError(f"student {name!r} has both a folder and a notebook")
            found[name] = entry
    return found


class _CappedLog(io.TextIOBase):
    """The grading process's ``sys.stdout``: the first ``cap`` characters go to ``path``."""

    def __init__(self, path: Path, cap: int) -> None:
        self.file = open(path, "w", encoding="utf-8", errors="replace")  # noqa: SIM115
        self.left = cap

    def write(self, text: str) -> int:
        if self.left > 0:
            self.file.write(text[: self.left])
            self.left -= min(len(text), self.left)
        return len(text)

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        self.file.flush()


#: What a grading process runs with: no wandb, no GPU, one thread per process (the parallelism is
#: across submissions), no plotting window.
GRADING_ENV = {
    "WANDB_MODE": "disabled",
    "WANDB_SILENT": "true",
    "CUDA_VISIBLE_DEVICES": "",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "MPLBACKEND": "Agg",
    "PYTHONDONTWRITEBYTECODE": "1",
    # only the plugins grading needs (named in pytest_args): scanning every installed entry
    # point costs each submission about a second
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
}


def pytest_args(
    answers: Path,
    results: Path,
    student: str,
    options: GradeOptions,
    seed: int,
    *,
    exclude: list[str] | tuple[str, ...] = (),
) -> list[str]:
    """The pytest arguments grading one exported submission (``python -m pytest ARGS``)."""
    args = [
        str(EXERCISE_TESTS),
        f"--rootdir={REPO_ROOT}",
        # the suite's own conftest (it trains a model) is not needed for grading
        f"--confcutdir={EXERCISE_TESTS}",
        "-p",
        "no:cacheprovider",
        "-p",
        "pytest_timeout",
        "-q",
        "-s",  # the plugin counts and discards printing itself
        "--tb=no",
        "-rN",
        "--no-header",
        "-o",
        "addopts=",
        f"--timeout={options.timeout:g}",
        "--timeout-method=signal",
        f"--impl={answers}",
        f"--results={results}",
        f"--student={student}",
        f"--grading-seed={seed}",
        f"--import-timeout={options.timeout:g}",
    ]
    if options.hidden is not None:
        args.append(f"--hidden={Path(options.hidden).resolve()}")
    if options.only:
        args.append(f"--only={','.join(options.only)}")
    if exclude:
        args.append(f"--exclude={','.join(exclude)}")
    args.extend(f"--checks-module={m}" for m in options.checks_modules)
    return args


def _grading_process(args: list[str], cwd: str, log: str, log_cap: int) -> None:
    """The body of one grading process (forked from the fork server)."""
    os.setsid()
    os.chdir(cwd)
    os.environ.update(GRADING_ENV)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    sys.stdout = sys.stderr = _CappedLog(Path(log), log_cap)
    import pytest
    import torch

    torch.set_num_threads(1)
    code = pytest.main(args)
    sys.stdout.flush()
    os._exit(int(code))  # skip atexit hooks a student's imports may have left behind


_SERVER_LOCK = threading.Lock()


def _context() -> multiprocessing.context.BaseContext:
    """The fork server's context, started once with torch, pytest and every check imported."""
    import toydiff.checks

    context = multiprocessing.get_context("forkserver")
    with _SERVER_LOCK:
        checks = [m.name for m in pkgutil.iter_modules(toydiff.checks.__path__, "toydiff.checks.")]
        context.set_forkserver_preload(["torch", "pytest", "toydiff.grading.plugin", *checks])
        saved = dict(os.environ)
        os.environ.update(GRADING_ENV)  # torch reads the thread counts when it is imported
        try:
            multiprocessing.forkserver.ensure_running()
        finally:
            os.environ.clear()
            os.environ.update(saved)
    return context


def _read_records(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut short by a kill
    return records


def grade_submission(
    student: str, submission: Path, work: Path, options: GradeOptions, seed: int
) -> StudentResult:
    """Export and grade one submission in a subprocess; never raises for a bad submission."""
    start = time.monotonic()
    result = StudentResult(student)
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    answers = work / "answers.py"
    try:
        exported = export_submission(submission)
    except ExportError as err:
        result.problems.append(str(err))
        exported = None
    if exported is not None:
        result.export_notes.extend(exported.notes)
        answers.write_text(exported.render(), encoding="utf-8")
    else:
        answers.write_text("", encoding="utf-8")
    excluded: list[str] = []
    for attempt in range(1 + MAX_RETRIES):
        results = work / f"results-{attempt}.jsonl"
        args = pytest_args(answers, results, student, options, seed, exclude=excluded)
        log = work / f"log-{attempt}.txt"
        code = _run(args, work, log, options)
        result.log += log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
        records = _read_records(results)
        result.records += records
        if code is not None and code not in (0, 1, 5) and not records:
            result.problems.append(f"pytest could not run (exit code {code})")
            break
        # A run that stopped with tests still unreported was killed at the limit (the per-test
        # timeout could not stop a test: say, the student ignores SIGALRM) or ended by the
        # student's code (os._exit, a crash). Fail that test's exercise, grade the others again.
        reported = {r["nodeid"] for r in records if r["kind"] == "result"}
        pending = [r for r in records if r["kind"] == "collected" and r["nodeid"] not in reported]
        if not pending:
            break
        culprit = pending[0]["exercise"]
        if code is None:
            status = "timeout"
            why = f"the grading process hung in {culprit} and was killed after {options.limit:g} s"
        else:
            status = "crashed"
            how = f"signal {-code}" if code < 0 else f"exit code {code}"
            why = f"the grading process ended ({how}) during {culprit}"
        result.problems.append(why)
        result.records += [
            {**r, "kind": "result", "passed": False, "status": status, "message": why}
            for r in pending
            if r["exercise"] == culprit
        ]
        excluded.append(culprit)
    result.seconds = time.monotonic() - start
    return result


def _run(args: list[str], cwd: Path, log: Path, options: GradeOptions) -> int | None:
    """Run one grading process; its exit code, or None when it was killed at the limit."""
    process = _context().Process(
        target=_grading_process, args=(args, str(cwd), str(log), options.log_cap), daemon=True
    )
    process.start()
    process.join(timeout=options.limit)
    if process.exitcode is None:
        with contextlib.suppress(ProcessLookupError):  # it has its own session: kill it all
            os.killpg(process.pid, signal.SIGKILL)
        process.kill()
        process.join()
        return None
    return process.exitcode


def grade_all(
    submissions: Path,
    out: Path,
    options: GradeOptions | None = None,
    *,
    on_done: Callable[[StudentResult], None] | None = None,
) -> tuple[list[StudentResult], int]:
    """Grade every submission under ``submissions`` (see the module docstring).

    Returns the results in student order and the grading seed used for everyone.
    """
    options = options or GradeOptions()
    out = Path(out)
    # the gradebook may live inside the submissions folder: it is not a student
    students = {n: p for n, p in discover(submissions).items() if p.resolve() != out.resolve()}
    seed = options.seed if options.seed is not None else secrets.randbelow(2**31)
    work = out / "work"
    if work.exists():
        shutil.rmtree(work)
    jobs = options.jobs or len(os.sched_getaffinity(0))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {
            name: pool.submit(grade_submission, name, path, work / name, options, seed)
            for name, path in students.items()
        }
        results = []
        for future in futures.values():
            results.append(future.result())
            if on_done is not None:
                on_done(results[-1])
    return results, seed
