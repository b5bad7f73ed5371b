"""``python -m bench [--quick] [--only NAME]``: run every ``bench/bench_*.py`` and report.

Each module runs in its own interpreter (``--in-process`` to debug), so one module's
environment, singletons or crash cannot touch the next; a module that fails is reported
and the run goes on. The figures are printed as a table and written to
``bench/results/latest.json``. Missed targets do not change the exit status (figures are
not tests); a module that fails does (1).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import pkgutil
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import import_module
from pathlib import Path
from typing import Any

from bench.harness import PROJECT_ROOT, RESULTS_DIR, Figure, measured

BENCH_DIR = Path(__file__).resolve().parent
PREFIX = "bench_"


@dataclass
class ModuleResult:
    """What one bench module produced."""

    module: str
    seconds: float = 0.0
    figures: list[Figure] = field(default_factory=list)
    error: str | None = None
    output: str = ""

    def to_json(self) -> dict[str, Any]:
        """The JSON form written to ``latest.json``."""
        return {
            "module": self.module,
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "figures": [figure.to_json() for figure in self.figures],
        }


def discover() -> list[str]:
    """Names of the bench modules, ``bench_*``, sorted."""
    return sorted(
        info.name for info in pkgutil.iter_modules([str(BENCH_DIR)]) if info.name.startswith(PREFIX)
    )


def select(available: Sequence[str], only: Sequence[str] | None) -> list[str]:
    """The modules ``--only`` names (``inbound`` or ``bench_inbound``), all if none."""
    if not only:
        return list(available)
    wanted = [name if name.startswith(PREFIX) else PREFIX + name for name in only]
    unknown = [name for name in wanted if name not in available]
    if unknown:
        raise SystemExit(
            f"unknown bench module(s): {', '.join(unknown)}; available: {', '.join(available)}"
        )
    return [name for name in available if name in wanted]


# -- running one module -------------------------------------------------------------------


def run_module(name: str, quick: bool) -> list[Figure]:
    """Import ``bench.<name>`` and call its ``run(quick)``; check what it returns."""
    module = import_module(f"bench.{name}")
    runner = getattr(module, "run", None)
    if not callable(runner):
        raise TypeError(f"bench.{name} has no run(quick: bool) -> list[Figure]")
    figures = runner(quick)
    if not isinstance(figures, list) or not all(isinstance(f, Figure) for f in figures):
        raise TypeError(f"bench.{name}.run returned {type(figures).__name__}, not list[Figure]")
    return figures


def run_in_process(name: str, quick: bool) -> ModuleResult:
    """Run a module in this interpreter (for debugging)."""
    began = time.perf_counter()
    result = ModuleResult(name)
    try:
        result.figures = run_module(name, quick)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        result.output = traceback.format_exc()
    result.seconds = time.perf_counter() - began
    return result


def run_isolated(name: str, quick: bool, timeout: float) -> ModuleResult:
    """Run a module in a fresh interpreter; its figures come back through a file."""
    began = time.perf_counter()
    result = ModuleResult(name)
    with tempfile.TemporaryDirectory() as tmp:
        figures_file = Path(tmp) / "figures.json"
        command = [
            sys.executable,
            "-m",
            "bench",
            "--worker",
            name,
            "--figures-file",
            str(figures_file),
        ]
        if quick:
            command.append("--quick")
        try:
            completed = subprocess.run(
                command,
                cwd=PROJECT_ROOT,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            result.error = f"timed out after {timeout:g} s"
            result.output = _text(exc.stdout) + _text(exc.stderr)
        else:
            result.output = completed.stdout + completed.stderr
            if completed.returncode != 0 or not figures_file.exists():
                last = completed.stderr.strip().splitlines()[-1:] or ["no output"]
                result.error = f"exit status {completed.returncode}: {last[0]}"
            else:
                rows = json.loads(figures_file.read_text(encoding="utf-8"))
                result.figures = [_figure(row) for row in rows]
    result.seconds = time.perf_counter() - began
    return result


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def _figure(row: dict[str, Any]) -> Figure:
    value = row.get("value")
    return Figure(
        name=str(row["name"]),
        value=math.nan if value is None else float(value),
        unit=str(row.get("unit", "")),
        target=row.get("target"),
        ok=row.get("ok"),
        note=str(row.get("note", "")),
    )


def worker(name: str, quick: bool, figures_file: Path) -> int:
    """The child side of ``run_isolated``."""
    figures = run_module(name, quick)
    figures_file.write_text(json.dumps([f.to_json() for f in figures]), encoding="utf-8")
    return 0


# -- reporting ----------------------------------------------------------------------------


def format_value(value: float) -> str:
    """A figure's value with sensible precision (``n/a`` when not measured)."""
    if not measured(value):
        return "n/a"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if magnitude < 1 else f"{value:.2f}"


def verdict(figure: Figure) -> str:
    """``ok``, ``MISSED`` or nothing when there is no target or no value."""
    if figure.ok is None:
        return ""
    return "ok" if figure.ok else "MISSED"


def print_module(result: ModuleResult, show_output: bool) -> None:
    """One module's figures as a table, or its error."""
    print(f"\n== {result.module} ({result.seconds:.1f} s)")
    if result.error:
        print(f"   FAILED: {result.error}")
        if result.output:
            tail = result.output.strip().splitlines()[-15:]
            print("\n".join(f"   | {line}" for line in tail))
    elif show_output and result.output.strip():
        print("\n".join(f"   | {line}" for line in result.output.strip().splitlines()))
    if not result.figures:
        return
    width = max(len(f.name) for f in result.figures)
    for figure in result.figures:
        target = figure.target or ""
        value = format_value(figure.value)
        print(
            f"   {figure.name:<{width}}  {value:>9} {figure.unit:<3} {target:<8} {verdict(figure)}"
        )
        if figure.note:
            print(f"   {'':<{width}}    {figure.note}")


def machine() -> dict[str, Any]:
    """The machine the figures come from."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
    }


def load_average() -> float | None:
    """The 1-minute load average: other work on the machine makes figures noisy."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def write_results(
    path: Path, results: list[ModuleResult], quick: bool, began: datetime, load: float | None
) -> None:
    """``latest.json``: when, where, which mode, and every module's figures."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "started_at": began.isoformat(timespec="seconds"),
        "quick": quick,
        "machine": machine(),
        "load_average": {"start": load, "end": load_average()},
        "modules": [result.to_json() for result in results],
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (< 1 minute)")
    parser.add_argument(
        "--only", action="append", metavar="NAME", help="run only this module (repeatable)"
    )
    parser.add_argument("--list", action="store_true", help="list the bench modules and exit")
    parser.add_argument(
        "--output", type=Path, default=RESULTS_DIR / "latest.json", help="results JSON file"
    )
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds one module may take (default 900)"
    )
    parser.add_argument("--in-process", action="store_true", help="no child interpreters")
    parser.add_argument("--verbose", action="store_true", help="show each module's output")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--figures-file", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected bench modules and report their figures."""
    args = parse_args(argv)
    if args.worker:
        return worker(args.worker, args.quick, args.figures_file)
    available = discover()
    if args.list:
        print("\n".join(available))
        return 0
    selected = select(available, args.only)
    began, load = datetime.now(UTC), load_average()
    mode = "quick" if args.quick else "full"
    cpus = machine()["cpus"]
    print(f"bench: {len(selected)} module(s), {mode} run, {cpus} CPUs, load average {load}")
    results: list[ModuleResult] = []
    for name in selected:
        print(f"-- running {name} ...", flush=True)
        if args.in_process:
            result = run_in_process(name, args.quick)
        else:
            result = run_isolated(name, args.quick, args.timeout)
        results.append(result)
        print_module(result, args.verbose)
        write_results(args.output, results, args.quick, began, load)
    failed = [r.module for r in results if r.error]
    missed = [f.name for r in results for f in r.figures if f.ok is False]
    elapsed = (datetime.now(UTC) - began).total_seconds()
    print(f"\nbench: {len(results)} module(s) in {elapsed:.0f} s; results in {args.output}")
    if missed:
        print(f"targets missed: {', '.join(missed)}")
    if failed:
        print(f"modules failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
