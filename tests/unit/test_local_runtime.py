"""The local Lambda runtime: execution environments, serial by default, concurrent on demand."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from plumsms_local.lambda_runtime import LocalFunction

HANDLER = """
import threading, time
ENVIRONMENT = object()
busy = threading.Lock()

def lambda_handler(event, context):
    # One event at a time per environment: a second one here would find the lock held.
    assert busy.acquire(blocking=False), "two events in one environment"
    try:
        time.sleep(event["seconds"])
        return id(ENVIRONMENT)
    finally:
        busy.release()
"""


def invoke_together(function: LocalFunction, count: int) -> tuple[list[int], float]:
    results: list[int] = []
    lock = threading.Lock()

    def one() -> None:
        value = function.invoke({"seconds": 0.3})
        with lock:
            results.append(value)

    began = time.monotonic()
    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, time.monotonic() - began


def test_concurrent_invocations_run_in_their_own_environments(tmp_path: Path) -> None:
    # GIVEN a function allowed three environments
    handler = tmp_path / "app.py"
    handler.write_text(HANDLER)
    function = LocalFunction("f", handler, environments=3)
    # WHEN three invocations arrive at once
    results, elapsed = invoke_together(function, 3)
    # THEN they ran side by side, each in its own environment (module instance)
    assert elapsed < 0.75
    assert len(set(results)) == 3
    # AND later invocations, one at a time, reuse a warm environment
    assert function.invoke({"seconds": 0}) in set(results)


def test_one_environment_serialises_invocations(tmp_path: Path) -> None:
    # GIVEN the default: one environment
    handler = tmp_path / "app.py"
    handler.write_text(HANDLER)
    function = LocalFunction("g", handler)
    # WHEN three invocations arrive at once
    results, elapsed = invoke_together(function, 3)
    # THEN they ran one after the other in the same environment
    assert elapsed >= 0.85
    assert len(set(results)) == 1
