"""Run mutants against the unit tests, each in a forked interpreter with a time limit.

The parent imports the heavy third-party libraries once and forks a child per mutant.
Before forking it never imports ``plumsms``: each child imports the bundle afresh, with
the mutated module served from memory by an import hook (nothing is written to disk, so
an interrupted run cannot leave a mutant behind).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import coverage
import hypothesis
import pytest

from tests.mutation.mutants import PROJECT_ROOT, Mutant, module_path, mutable_modules

UNIT_TESTS = PROJECT_ROOT / "tests" / "unit"
# Imported once by the parent so that each child starts warm.
WARM_IMPORTS = (
    "pytest",
    "pytest_socket",
    "hypothesis",
    "pydantic",
    "lxml.etree",
    "phonenumbers",
    "yaml",
    "urllib3",
    "boto3",
    "botocore.session",
    "aws_lambda_powertools",
    "moto",
)
PYTEST_ARGS = ("-q", "-x", "-p", "no:cacheprovider", "-o", "addopts=", "--no-header")


def warm_up() -> None:
    for name in WARM_IMPORTS:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


# ---------------------------------------------------------------- which tests run a line


@dataclass
class CoverageMap:
    """Which unit tests execute each line of each domain module, and how long each takes."""

    lines: dict[str, dict[int, list[str]]]  # module -> line -> test node ids
    durations: dict[str, float]  # node id -> seconds (setup + call + teardown)

    def tests_for(self, mutant: Mutant) -> list[str]:
        """The tests that execute any line of the mutated code."""
        by_line = self.lines.get(mutant.module, {})
        return sorted({test for line in mutant.lines for test in by_line.get(line, [])})

    def tests_touching(self, module: str) -> set[str]:
        return {test for tests in self.lines.get(module, {}).values() for test in tests}

    def seconds(self, tests: Iterable[str]) -> float:
        return sum(self.durations.get(test, 0.1) for test in tests)


class _ContextPerTest:
    """pytest plugin: one coverage context per test, timed."""

    def __init__(self, coverage: Any) -> None:
        self.coverage = coverage
        self.durations: dict[str, float] = {}
        self.failed: list[str] = []

    def pytest_runtest_setup(self, item: Any) -> None:
        self.coverage.switch_context(item.nodeid)

    def pytest_runtest_logreport(self, report: Any) -> None:
        self.durations[report.nodeid] = self.durations.get(report.nodeid, 0.0) + report.duration
        if report.failed:
            self.failed.append(report.nodeid)
        if report.when == "teardown":
            self.coverage.switch_context("")


def _quiet_hypothesis() -> None:
    """The same examples in every run, and no example database written by mutants."""
    hypothesis.settings.register_profile(
        "mutation", database=None, deadline=None, derandomize=True, print_blob=False
    )
    hypothesis.settings.load_profile("mutation")


def _measure_coverage(out: Path) -> int:
    _quiet_hypothesis()
    names = {str(module_path(module)): module for module in mutable_modules()}
    cov = coverage.Coverage(data_file=None, include=list(names))
    plugin = _ContextPerTest(cov)
    cov.start()
    try:
        args = ["-q", "-p", "no:cacheprovider", "-o", "addopts=", str(UNIT_TESTS)]
        code = pytest.main(args, plugins=[plugin])
    finally:
        cov.stop()
    data = cov.get_data()
    lines: dict[str, dict[int, list[str]]] = {}
    for filename in data.measured_files():
        by_line = data.contexts_by_lineno(filename)
        lines[names.get(filename, Path(filename).stem)] = {
            line: sorted(context for context in contexts if context)
            for line, contexts in by_line.items()
        }
    out.write_text(
        json.dumps({"lines": lines, "durations": plugin.durations, "failed": plugin.failed}),
        encoding="utf-8",
    )
    return int(code)


def coverage_map(log: Callable[[str], None]) -> CoverageMap:
    """Run the unit tests once, unmutated, recording which test runs which line."""
    with tempfile.TemporaryDirectory(prefix="mutation-") as folder:
        out = Path(folder) / "coverage.json"
        code = _in_child(lambda: _measure_coverage(out), Path(folder) / "coverage.log")
        if code != 0 or not out.exists():
            log((Path(folder) / "coverage.log").read_text(encoding="utf-8", errors="replace"))
            raise SystemExit(f"the unit tests fail before any mutation (pytest exit {code})")
        document = json.loads(out.read_text(encoding="utf-8"))
    lines = {
        module: {int(line): tests for line, tests in by_line.items()}
        for module, by_line in document["lines"].items()
    }
    return CoverageMap(lines=lines, durations=document["durations"])


def _in_child(work: Callable[[], int], log_path: Path) -> int:
    """Run ``work`` in a forked child with its output in ``log_path``; its exit code."""
    pid = _fork(work, log_path)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _fork(work: Callable[[], int], log_path: Path | None) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 70
    try:
        os.setsid()
        target = os.open(log_path or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, 1)
        os.dup2(target, 2)
        sys.dont_write_bytecode = True
        code = work()
    except BaseException:  # the child must never return into the parent's code
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise AssertionError("unreachable")


# ---------------------------------------------------------------- one mutant in a child


class _MutantFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves the mutated source for one module; every other import goes on as usual."""

    def __init__(self, mutant: Mutant) -> None:
        self.mutant = mutant

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.mutant.qualified_module:
            return None
        return importlib.util.spec_from_loader(fullname, self, origin=str(self.mutant.path))

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        module.__file__ = str(self.mutant.path)
        exec(compile(self.mutant.code, str(self.mutant.path), "exec"), module.__dict__)


class _KeepOnly:
    """pytest plugin: run only the chosen tests, or run the chosen ones first."""

    def __init__(self, chosen: set[str], *, others_too: bool) -> None:
        self.chosen = chosen
        self.others_too = others_too

    def pytest_collection_modifyitems(self, items: list[Any]) -> None:
        first = [item for item in items if item.nodeid in self.chosen]
        rest = [item for item in items if item.nodeid not in self.chosen]
        items[:] = first + rest if self.others_too else first


def _run_mutant(mutant: Mutant, tests: list[str] | None, first: set[str]) -> int:
    _quiet_hypothesis()
    sys.meta_path.insert(0, _MutantFinder(mutant))
    if tests is None:  # code that runs at import: every unit test, likeliest first
        targets = [str(UNIT_TESTS)]
        plugin = _KeepOnly(first, others_too=True)
    else:
        targets = sorted({str(PROJECT_ROOT / test.split("::", 1)[0]) for test in tests})
        plugin = _KeepOnly(set(tests), others_too=False)
    return int(pytest.main([*PYTEST_ARGS, *targets], plugins=[plugin]))


# ---------------------------------------------------------------- the pool


KILLED, SURVIVED, TIMEOUT, UNCOVERED, ERROR = "killed", "survived", "timeout", "uncovered", "error"


@dataclass
class Outcome:
    mutant: Mutant
    result: str
    seconds: float


@dataclass
class _Running:
    mutant: Mutant
    pid: int
    started: float
    deadline: float
    log: Path | None = None
    whole_suite: bool = True


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@dataclass
class Runner:
    """Runs mutants ``jobs`` at a time; each child is killed past its time limit."""

    coverage: CoverageMap
    jobs: int = 1
    timeout_factor: float = 3.0
    timeout_floor: float = 10.0
    log_dir: Path | None = None
    on_outcome: Callable[[Outcome], None] = lambda outcome: None
    outcomes: list[Outcome] = field(default_factory=list)
    _follow_ups: list[_Running] = field(default_factory=list)

    def run(self, mutants: Sequence[Mutant]) -> list[Outcome]:
        queue = list(mutants)
        running: list[_Running] = []
        previous = signal.signal(signal.SIGTERM, _interrupted)
        try:
            while queue or running:
                while queue and len(running) < self.jobs:
                    mutant = queue.pop(0)
                    started = self._start(mutant)
                    if started is not None:
                        running.append(started)
                time.sleep(0.02)
                running = [child for child in running if not self._reap(child)]
                running += self._follow_ups
                self._follow_ups.clear()
        finally:  # interrupted: leave no child running
            for child in running:
                with contextlib.suppress(ProcessLookupError, ChildProcessError):
                    os.killpg(child.pid, signal.SIGKILL)
                    os.waitpid(child.pid, 0)
            signal.signal(signal.SIGTERM, previous)
        return self.outcomes

    def _start(self, mutant: Mutant, *, whole_suite: bool = False) -> _Running | None:
        """Fork the child for ``mutant``. Code in a function body runs against the tests
        that execute its line. Code that runs at import runs first against the tests that
        touch its module, then, when those all pass, against every unit test."""
        now = time.monotonic()
        touching = self.coverage.tests_touching(mutant.module)
        tests: list[str] | None
        if mutant.in_function_body:
            tests = self.coverage.tests_for(mutant)
            if not tests:
                self._record(Outcome(mutant, UNCOVERED, 0.0))
                return None
        elif whole_suite or not touching:
            tests, whole_suite = None, True
        else:
            tests = sorted(touching)
        budget = (
            sum(self.coverage.durations.values()) if tests is None else self.coverage.seconds(tests)
        )
        log = None
        if self.log_dir is not None:
            name = f"{mutant.module}-{mutant.line}-{mutant.col}-{mutant.occurrence}.log"
            log = self.log_dir / name
        pid = _fork(lambda: _run_mutant(mutant, tests, touching), log)
        deadline = now + self.timeout_floor + self.timeout_factor * budget
        return _Running(
            mutant=mutant,
            pid=pid,
            started=now,
            deadline=deadline,
            log=log,
            whole_suite=whole_suite or mutant.in_function_body,
        )

    def _reap(self, child: _Running) -> bool:
        pid, status = os.waitpid(child.pid, os.WNOHANG)
        elapsed = time.monotonic() - child.started
        if pid == 0:
            if time.monotonic() < child.deadline:
                return False
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            os.waitpid(child.pid, 0)
            self._record(Outcome(child.mutant, TIMEOUT, elapsed))
            return True
        code = os.waitstatus_to_exitcode(status)
        # pytest: 0 all passed, 1 a test failed, 2 a collection error (the mutant does not
        # even import), 3/4 internal or usage error, 5 no test collected.
        result = {0: SURVIVED, 1: KILLED, 2: KILLED}.get(code, ERROR)
        if result == SURVIVED and not child.whole_suite:
            follow_up = self._start(child.mutant, whole_suite=True)
            if follow_up is not None:
                follow_up.started = child.started
                self._follow_ups.append(follow_up)
                return True
        self._record(Outcome(child.mutant, result, elapsed))
        return True

    def _record(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        self.on_outcome(outcome)
