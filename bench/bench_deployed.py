"""Cold starts of the built artifacts, and the layer's size (issue 10, item 5).

Each function's handler module is imported the way Lambda imports it: a fresh python3.13
with only the function's directory, the layer's ``python/`` and the runtime's boto3 on
its path, and the function's environment resolved from template.yaml. The baseline is
the bare third-party work the same function needs (the packages it loads, imported the
same way, from the same layer, objects created as a hand-written handler would), so the
ratio is the cost of the bundle's own code (target <= 1.1). A third series imports the
layer without its precompiled bytecode and writes none, as Lambda's read-only /opt does:
what every cold start paid before the layer was built with ``compileall``.

Times are the child's CPU time (``process_time``): on a shared 2-core machine the wall
clock of an import mostly measures the neighbours, while its CPU time hardly moves.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.bench_inbound import BARE_DEPENDENCIES
from bench.harness import PROJECT_ROOT, Figure, at_most, median, ms, ratio
from tests.deployed import cfn
from tests.deployed.conftest import BUILD_DIR, RUNTIME_DIR, python313

TIMED = """
import sys, time, json
sys.path[:] = {path!r} + [p for p in sys.path if p and "site-packages" not in p]
started = time.process_time()
{code}
elapsed = time.process_time() - started
print("BENCH " + json.dumps([elapsed, sorted(sys.modules)]))
"""


def _run(python: str, path: list[str], code: str, env: dict[str, str]) -> tuple[float, list[str]]:
    program = TIMED.format(path=path, code=code)
    done = subprocess.run(
        [python, "-I", "-S", "-c", program],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=path[0],
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH ")), None)
    if done.returncode or line is None:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "no timing")
    elapsed, modules = json.loads(line[6:])
    return float(elapsed), list(modules)


def _environment(definition: cfn.FunctionDefinition, task_root: Path) -> dict[str, str]:
    return {
        **definition.environment,
        **cfn.lambda_environment(definition, "us-east-1"),
        "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        # Imports make no call; an unreachable endpoint makes sure of it.
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def layer_size(layer: Path) -> float:
    """Megabytes of the unzipped layer."""
    return sum(p.stat().st_size for p in layer.rglob("*") if p.is_file()) / 1e6


def run(quick: bool) -> list[Figure]:
    """Every figure of this module."""
    if not (BUILD_DIR / "template.yaml").exists():
        subprocess.run(["make", "-s", "artifacts"], cwd=PROJECT_ROOT, check=True)
    python = python313()
    layer = BUILD_DIR / "PlumSmsLayer" / "python"
    figures = [at_most("layer size (unzipped)", layer_size(layer.parent), "MB", 40)]
    template = PROJECT_ROOT / "template.yaml"
    definitions = cfn.functions(
        template, BUILD_DIR / "template.yaml", cfn.placeholder_deployment(template)
    )
    repeat = 3 if quick else 15
    with tempfile.TemporaryDirectory() as scratch:
        # The same layer without bytecode: what SAM's python builder shipped.
        sourced = Path(scratch) / "python"
        shutil.copytree(layer, sourced, ignore=shutil.ignore_patterns("__pycache__"))
        for name, definition in sorted(definitions.items()):
            task_root = BUILD_DIR / name
            env = _environment(definition, task_root)
            module = definition.handler.split(".", 1)[0]
            path = [str(task_root), str(layer), str(RUNTIME_DIR)]
            _, loaded = _run(python, path, f"import {module}", env)
            bare = "\n".join(code for mod, code in BARE_DEPENDENCIES if mod in set(loaded))
            series: dict[str, list[float]] = {"handler": [], "bare": [], "no_pyc": []}
            no_pyc_path = [str(task_root), str(sourced), str(RUNTIME_DIR)]
            for _ in range(repeat):
                series["handler"].append(_run(python, path, f"import {module}", env)[0])
                series["bare"].append(_run(python, path, bare, env)[0])
                series["no_pyc"].append(_run(python, no_pyc_path, f"import {module}", env)[0])
            handler, baseline, no_pyc = (median(series[k]) for k in ("handler", "bare", "no_pyc"))
            figures += [
                Figure(f"cold start {name}", ms(handler), "ms", note="handler module import"),
                at_most(
                    f"cold start {name} / bare dependencies",
                    ratio(handler, baseline),
                    "x",
                    1.1,
                    f"bare: {ms(baseline):.0f} ms",
                ),
                Figure(
                    f"cold start {name} without precompiled layer",
                    ms(no_pyc),
                    "ms",
                    note=f"{ratio(no_pyc, handler):.1f}x the precompiled layer",
                ),
            ]
    return figures


if __name__ == "__main__":
    for figure in run(quick=bool(os.environ.get("QUICK"))):
        print(figure)
