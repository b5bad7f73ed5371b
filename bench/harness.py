"""The benchmark harness: figures, percentiles and the timing helpers every bench module uses.

A bench module ``bench/bench_<name>.py`` exposes ``run(quick: bool) -> list[Figure]``.
Figures are numbers with a unit and, where the issue sets one, a target; they are never
pass/fail tests. Every comparison is made against a baseline measured in the same run, so
the ratio carries over from one machine to another better than the raw numbers do.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured figure.

    ``target`` is the goal in words (``"<= 1.25"``), ``ok`` whether this run met it
    (``None`` when there is no target or nothing could be measured), ``note`` says what
    was compared or why a figure is missing. ``value`` is NaN when nothing was measured.
    """

    name: str
    value: float
    unit: str
    target: str | None = None
    ok: bool | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (NaN becomes ``null``)."""
        data = asdict(self)
        if not measured(self.value):
            data["value"] = None
        return data


def measured(value: object) -> bool:
    """Whether ``value`` is a real number (not NaN, infinite or ``None``)."""
    return isinstance(value, int | float) and math.isfinite(value)


def at_most(name: str, value: float, unit: str, limit: float, note: str = "") -> Figure:
    """A figure whose target is ``value <= limit``."""
    ok = value <= limit if math.isfinite(value) else None
    return Figure(name, value, unit, f"<= {limit:g}", ok, note)


def ratio(value: float, baseline: float) -> float:
    """``value / baseline``; NaN when the baseline is not a positive number."""
    if not (math.isfinite(value) and math.isfinite(baseline)) or baseline <= 0:
        return math.nan
    return value / baseline


def missing(name: str, unit: str, reason: str, target: str | None = None) -> Figure:
    """A figure that could not be measured, saying why."""
    return Figure(name, math.nan, unit, target, None, reason)


# -- statistics ---------------------------------------------------------------------------


def percentile(samples: Iterable[float], pct: float) -> float:
    """The ``pct`` percentile (0..100) with linear interpolation between closest ranks.

    The same definition as numpy's default and ``statistics.quantiles(method="inclusive")``:
    ``percentile(xs, 50)`` is the median, 0 the minimum and 100 the maximum.
    """
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile must be within 0..100, not {pct}")
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("percentile of no samples")
    position = (len(ordered) - 1) * pct / 100
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    fraction = position - lower
    return ordered[lower] + (ordered[upper] - ordered[lower]) * fraction


def median(samples: Iterable[float]) -> float:
    """The 50th percentile."""
    return percentile(samples, 50)


@dataclass(frozen=True, slots=True)
class Summary:
    """Percentiles of a series of timings, in seconds."""

    count: int
    p50: float
    p90: float
    p99: float
    minimum: float
    maximum: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Summary:
        """Summarise ``samples``."""
        return cls(
            count=len(samples),
            p50=percentile(samples, 50),
            p90=percentile(samples, 90),
            p99=percentile(samples, 99),
            minimum=min(samples),
            maximum=max(samples),
        )


def ms(seconds: float) -> float:
    """Seconds to milliseconds."""
    return seconds * 1000.0


@contextmanager
def environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the block, then restore the previous environment."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# -- in-process timing --------------------------------------------------------------------

Call = Callable[[int], object]
"""A measured operation; it gets the index of the call (0, 1, ...) to vary its input."""


def time_calls(call: Call, count: int, warmup: int = 0, start: int = 0) -> list[float]:
    """Call ``call(i)`` ``warmup`` times unmeasured, then ``count`` times; seconds per call.

    Indices keep counting through the warm-up, so each call can get distinct input.
    """
    for index in range(start, start + warmup):
        call(index)
    timings: list[float] = []
    clock = time.perf_counter_ns
    for index in range(start + warmup, start + warmup + count):
        began = clock()
        call(index)
        timings.append((clock() - began) / 1e9)
    return timings


def interleaved(
    series: Mapping[str, Call],
    count: int,
    block: int = 50,
    warmup: int = 20,
    after_round: Callable[[], object] | None = None,
) -> dict[str, list[float]]:
    """Time each series ``count`` times, alternating blocks of ``block`` calls.

    Alternating shares the machine's noise (other processes, CPU frequency, a growing
    table) fairly between the series. Each series gets ``warmup`` unmeasured calls first.
    Call indices are distinct within a series across warm-up and measured calls.
    ``after_round`` runs, untimed, after every round of blocks (e.g. to reset state).
    """
    timings: dict[str, list[float]] = {name: [] for name in series}
    done = dict.fromkeys(series, 0)
    for name, call in series.items():
        time_calls(call, 0, warmup=warmup)
        done[name] = warmup
    if after_round is not None:
        after_round()
    while any(len(timings[name]) < count for name in series):
        for name, call in series.items():
            size = min(block, count - len(timings[name]))
            if size <= 0:
                continue
            timings[name].extend(time_calls(call, size, start=done[name]))
            done[name] += size
        if after_round is not None:
            after_round()
    return timings


# -- fresh-process timing -----------------------------------------------------------------

_TIMED = """\
import gc, sys, time
namespace = {{"__name__": "__bench__"}}
exec(compile({setup!r}, "<bench-setup>", "exec"), namespace)
_gc = [0.0, 0.0, 0, 0, 0]

def _gc_clock(phase, info):
    if phase == "start":
        _gc[1] = time.perf_counter()
    else:
        _gc[0] += time.perf_counter() - _gc[1]
        _gc[2 + info["generation"]] += 1

gc.callbacks.append(_gc_clock)
before = set(sys.modules)
cpu = time.process_time()
began = time.perf_counter()
exec(compile({code!r}, "<bench>", "exec"), namespace)
elapsed = time.perf_counter() - began
cpu = time.process_time() - cpu
gc.callbacks.remove(_gc_clock)
loaded = [name for name in sys.modules if name not in before]
sys.stdout.write("\\nBENCH-MODULES %s\\n" % " ".join(loaded))
sys.stdout.write("BENCH-ELAPSED %.9f %.9f %d %d %d %.9f\\n" % (elapsed, _gc[0], *_gc[2:], cpu))
sys.stdout.flush()
import os
os._exit(0)  # skip the interpreter's teardown: it is not measured, only waited for
"""

NO_NETWORK = """\
import socket

def _refuse(*args, **kwargs):
    raise RuntimeError("network I/O during a timed import")

socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
"""
"""Setup code for fresh-process timings: any attempt to connect fails the run."""


class SubprocessFailed(RuntimeError):
    """A timed child process failed; carries the last lines of its error output."""


RESULTS_DIR = PROJECT_ROOT / "bench" / "results"
PYCACHE = RESULTS_DIR / "pycache"
"""Bytecode cache of the fresh-process timings, outside the source tree (git-ignored)."""


def python_env(
    extra: Mapping[str, str] | None = None, bytecode_cache: Path | None = PYCACHE
) -> dict[str, str]:
    """This process's environment plus ``extra``, with hash randomisation fixed.

    With ``bytecode_cache`` every module's bytecode (ours and third-party alike) is cached
    under that directory, so after a warm-up run no side of a comparison compiles source.
    ``None`` keeps the inherited bytecode settings.
    """
    env = dict(os.environ)
    env["PYTHONHASHSEED"] = "0"
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    if bytecode_cache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(bytecode_cache)
    env.update(extra or {})
    return env


def _run_python(
    args: list[str], env: Mapping[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [sys.executable, *args],
        env=dict(env),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        tail = " | ".join(completed.stderr.strip().splitlines()[-3:])
        raise SubprocessFailed(tail or f"exit status {completed.returncode}")
    return completed


@dataclass(frozen=True, slots=True)
class FreshRun:
    """One run of code in a new interpreter: its time and the garbage collector's share."""

    seconds: float
    gc_seconds: float
    collections: tuple[int, int, int]
    """Collections of generations 0, 1 and 2 (full collections) during the run."""
    modules: tuple[str, ...] = ()
    """The modules the code loaded, in the order they were loaded."""
    cpu_seconds: float = 0.0
    """CPU time of the run: unlike ``seconds``, hardly changed by other work on the machine."""


def run_in_fresh_python(
    code: str, env: Mapping[str, str], setup: str = NO_NETWORK, timeout: float = 60.0
) -> FreshRun:
    """Run ``code`` in a new interpreter; time it and the garbage collections it caused.

    Neither the interpreter's startup nor ``setup`` (run first, same namespace) counts.
    """
    program = _TIMED.format(setup=setup, code=code)
    completed = _run_python(["-c", program], env, timeout)
    lines = completed.stdout.splitlines()
    if len(lines) < 2 or not lines[-1].startswith("BENCH-ELAPSED "):
        raise SubprocessFailed("the child printed no timing")
    fields = lines[-1].split()[1:]
    counts = (int(fields[2]), int(fields[3]), int(fields[4]))
    modules = tuple(lines[-2].split()[1:])
    return FreshRun(float(fields[0]), float(fields[1]), counts, modules, float(fields[5]))


def time_in_fresh_python(
    code: str, env: Mapping[str, str], setup: str = NO_NETWORK, timeout: float = 60.0
) -> float:
    """Seconds ``code`` takes to run in a new interpreter (see ``run_in_fresh_python``)."""
    return run_in_fresh_python(code, env, setup, timeout).seconds


def fresh_runs(
    variants: Mapping[str, tuple[str, Mapping[str, str]]],
    repeat: int,
    warmup: int = 1,
    setup: str = NO_NETWORK,
    errors: dict[str, str] | None = None,
) -> dict[str, list[FreshRun]]:
    """Run each variant's ``(code, env)`` ``repeat`` times in fresh interpreters.

    Every round runs each variant once, starting from a different variant each round, so
    a drift in machine load affects all of them alike. Warm-up rounds (unmeasured) make
    sure bytecode caches are written before timing. With ``errors``, a variant that fails
    is dropped (its error recorded there) and the others go on; without, the failure
    propagates.
    """
    names = list(variants)
    runs: dict[str, list[FreshRun]] = {name: [] for name in names}

    def run(name: str) -> FreshRun | None:
        code, env = variants[name]
        try:
            return run_in_fresh_python(code, env, setup)
        except SubprocessFailed as exc:
            if errors is None:
                raise
            errors[name] = str(exc)
            names.remove(name)
            runs.pop(name, None)
            return None

    for _ in range(warmup):
        for name in list(names):
            run(name)
    for index in range(repeat):
        shift = index % len(names) if names else 0
        for name in names[shift:] + names[:shift]:
            result = run(name)
            if result is not None:
                runs[name].append(result)
    return runs


def fresh_timings(
    variants: Mapping[str, tuple[str, Mapping[str, str]]],
    repeat: int,
    warmup: int = 1,
    setup: str = NO_NETWORK,
) -> dict[str, list[float]]:
    """Seconds per run of ``fresh_runs``."""
    runs = fresh_runs(variants, repeat, warmup, setup)
    return {name: [run.seconds for run in series] for name, series in runs.items()}


def paired_fresh_timings(
    subject: str,
    baseline: str,
    env: Mapping[str, str],
    repeat: int,
    warmup: int = 1,
    setup: str = NO_NETWORK,
) -> tuple[list[float], list[float]]:
    """``fresh_timings`` of two pieces of code in the same environment."""
    timings = fresh_timings(
        {"subject": (subject, env), "baseline": (baseline, env)}, repeat, warmup, setup
    )
    return timings["subject"], timings["baseline"]


@dataclass(frozen=True, slots=True)
class ImportCost:
    """One module's line of ``python -X importtime``, in microseconds."""

    module: str
    self_us: int
    cumulative_us: int


def import_profile(
    code: str, env: Mapping[str, str], setup: str = NO_NETWORK, timeout: float = 60.0
) -> list[ImportCost]:
    """Every module ``code`` imports in a fresh interpreter, with ``-X importtime`` costs.

    Modules the interpreter imports at startup or in ``setup`` are left out.
    """
    program = f"{setup}\nprint('BENCH-START', file=__import__('sys').stderr)\n{code}"
    completed = _run_python(["-X", "importtime", "-c", program], env, timeout)
    lines = completed.stderr.splitlines()
    if "BENCH-START" in lines:
        lines = lines[lines.index("BENCH-START") + 1 :]
    costs: list[ImportCost] = []
    for line in lines:
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|", 2)
        costs.append(ImportCost(name.strip(), int(self_us), int(cumulative_us)))
    return costs


def loaded_modules(
    code: str, env: Mapping[str, str], setup: str = NO_NETWORK, timeout: float = 60.0
) -> list[str]:
    """The modules ``code`` loads in a fresh interpreter, in the order they were loaded."""
    return list(run_in_fresh_python(code, env, setup, timeout).modules)


def top_level_packages(modules: Iterable[str], third_party_only: bool = True) -> list[str]:
    """Distinct top-level package names of ``modules``, first seen first (stdlib left out)."""
    found: dict[str, None] = {}
    for name in modules:
        top = name.split(".", 1)[0]
        if third_party_only and (top in sys.stdlib_module_names or top.startswith("_")):
            continue
        found.setdefault(top, None)
    return list(found)


# -- where the time goes ------------------------------------------------------------------


def _package_of(filename: str) -> str:
    """The top-level package a profiled code object belongs to."""
    if filename.startswith("<") or filename == "~":
        return "builtins"
    path = Path(filename)
    parts = path.parts
    if "site-packages" in parts:
        rest = parts[parts.index("site-packages") + 1 :]
        return rest[0].removesuffix(".py") if rest else "site-packages"
    for marker in ("plumsms", "plumsms_local", "bench", "functions"):
        if marker in parts:
            return marker
    return "stdlib"


def time_by_package(call: Call, count: int, start: int = 0) -> list[tuple[str, float]]:
    """Profile ``count`` calls with cProfile; own time (seconds) per top-level package.

    Time spent in C functions (socket reads, lxml, pydantic-core) is charged to the
    package whose Python code called them, so "stdlib" holds the socket waits of HTTP.
    """
    import cProfile  # noqa: PLC0415 - only needed when profiling
    import pstats  # noqa: PLC0415

    profiler = cProfile.Profile()
    profiler.enable()
    for index in range(start, start + count):
        call(index)
    profiler.disable()
    stats: Any = pstats.Stats(profiler)
    totals: dict[str, float] = {}
    for (filename, _line, _name), row in stats.stats.items():
        own_time = row[2]
        callers = row[4]
        if filename == "~" and callers:
            # A builtin: charge the time spent in it from each caller to that caller.
            for (caller_file, _l, _n), caller_row in callers.items():
                package = _package_of(caller_file)
                totals[package] = totals.get(package, 0.0) + caller_row[2]
            continue
        package = _package_of(filename)
        totals[package] = totals.get(package, 0.0) + own_time
    return sorted(totals.items(), key=lambda item: item[1], reverse=True)


def describe_shares(shares: Sequence[tuple[str, float]], top: int = 6) -> str:
    """``"botocore 41%, stdlib 30%, ..."`` for the ``top`` biggest shares."""
    total = sum(seconds for _, seconds in shares) or 1.0
    return ", ".join(f"{name} {seconds / total:.0%}" for name, seconds in shares[:top])


# -- a DynamoDB-compatible server in its own process --------------------------------------

_SERVE_DYNAMODB = """\
import sys, time
from plumsms_local.dynamodb import EmbeddedDynamoDB
server = EmbeddedDynamoDB(port=int(sys.argv[1])).start()
print("ready", flush=True)
while True:
    time.sleep(3600)
"""


@contextmanager
def dynamodb_server_process() -> Iterator[str]:
    """The embedded DynamoDB server (moto) in a child process; yields its endpoint URL.

    In its own process the server neither shares the GIL with the code being timed nor
    grows the heap the timed code's garbage collections scan, as a real DynamoDB would not.
    """
    from plumsms_local.dynamodb import free_port  # noqa: PLC0415 - local stack only

    port = free_port()
    child = subprocess.Popen(
        [sys.executable, "-c", _SERVE_DYNAMODB, str(port)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        # The child prints "ready" once serving, or exits (an empty line) if it cannot.
        line = child.stdout.readline() if child.stdout else ""
        if line.strip() != "ready":
            raise SubprocessFailed("the DynamoDB server process did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def wait_for_port(port: int, child: subprocess.Popen[bytes], seconds: float, what: str) -> None:
    """Wait until ``child`` accepts connections on 127.0.0.1:``port``; RuntimeError if not."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline or child.poll() is not None:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.1)
