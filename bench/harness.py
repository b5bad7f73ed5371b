"""The benchmark harness: figures, percentiles and the timing helpers every bench module uses.

A bench module ``bench/bench_<name>.py`` exposes ``run(quick: bool) -> list[Figure]``.
Figures are numbers with a unit and, where the issue sets one, a target; they are never
pass/fail tests. Every comparison is made against a baseline measured in the same run, so
the ratio carries over from one machine to another better than the raw numbers do.
"""

from __future__ import annotations

import math
import os
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
        if not math.isfinite(self.value):
            data["value"] = None
        return data


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
    series: Mapping[str, Call], count: int, block: int = 50, warmup: int = 20
) -> dict[str, list[float]]:
    """Time each series ``count`` times, alternating blocks of ``block`` calls.

    Alternating shares the machine's noise (other processes, CPU frequency, a growing
    table) fairly between the series. Each series gets ``warmup`` unmeasured calls first.
    Call indices are distinct within a series across warm-up and measured calls.
    """
    timings: dict[str, list[float]] = {name: [] for name in series}
    done = dict.fromkeys(series, 0)
    for name, call in series.items():
        time_calls(call, 0, warmup=warmup)
        done[name] = warmup
    while any(len(timings[name]) < count for name in series):
        for name, call in series.items():
            size = min(block, count - len(timings[name]))
            if size <= 0:
                continue
            timings[name].extend(time_calls(call, size, start=done[name]))
            done[name] += size
    return timings


# -- fresh-process timing -----------------------------------------------------------------

_TIMED = """\
import sys, time
namespace = {{"__name__": "__bench__"}}
exec(compile({setup!r}, "<bench-setup>", "exec"), namespace)
began = time.perf_counter()
exec(compile({code!r}, "<bench>", "exec"), namespace)
sys.stdout.write("\\nBENCH-ELAPSED %.9f\\n" % (time.perf_counter() - began))
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


def python_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment plus ``extra``, with hash randomisation fixed."""
    env = dict(os.environ)
    env["PYTHONHASHSEED"] = "0"
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    env.update(extra or {})
    return env


def _run_python(args: list[str], env: Mapping[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
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


def time_in_fresh_python(
    code: str, env: Mapping[str, str], setup: str = NO_NETWORK, timeout: float = 60.0
) -> float:
    """Seconds ``code`` takes to run in a new interpreter.

    Neither the interpreter's startup nor ``setup`` (run first, same namespace) counts.
    """
    program = _TIMED.format(setup=setup, code=code)
    completed = _run_python(["-c", program], env, timeout)
    for line in reversed(completed.stdout.splitlines()):
        if line.startswith("BENCH-ELAPSED "):
            return float(line.split()[1])
    raise SubprocessFailed("the child printed no timing")


def paired_fresh_timings(
    subject: str,
    baseline: str,
    env: Mapping[str, str],
    repeat: int,
    warmup: int = 1,
    setup: str = NO_NETWORK,
) -> tuple[list[float], list[float]]:
    """Time ``subject`` and ``baseline`` code in fresh interpreters, alternating.

    The pairs alternate which side goes first, so a drift in machine load affects both.
    Warm-up runs (unmeasured) make sure bytecode caches are written before timing.
    """
    for _ in range(warmup):
        time_in_fresh_python(subject, env, setup)
        time_in_fresh_python(baseline, env, setup)
    subject_times: list[float] = []
    baseline_times: list[float] = []
    for index in range(repeat):
        if index % 2 == 0:
            subject_times.append(time_in_fresh_python(subject, env, setup))
            baseline_times.append(time_in_fresh_python(baseline, env, setup))
        else:
            baseline_times.append(time_in_fresh_python(baseline, env, setup))
            subject_times.append(time_in_fresh_python(subject, env, setup))
    return subject_times, baseline_times


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
