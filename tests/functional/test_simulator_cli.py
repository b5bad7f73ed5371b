"""``python -m plumsms_local.simulator``: serves until interrupted, reads the environment."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from typing import IO

import pytest

from plumsms_local.simulator import SimulatorClient


def _lines(stream: IO[str], into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line)


def test_serves_until_interrupted() -> None:
    env = {
        **os.environ,
        "PLUM_USERNAME": "cli-user",
        "SMS_NUMBERS": "2435678910,2435678911",
        "SIM_SEED": "9",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "plumsms_local.simulator", "--port", "0"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(process.stderr, lines), daemon=True).start()
    try:
        base_url = None
        while base_url is None:
            match = re.search(r"listening on (http://\S+)", lines.get(timeout=20))
            base_url = match.group(1) if match else None
        health = SimulatorClient(base_url).health()
        assert health["sms_numbers"] == ["+12435678910", "+12435678911"]
        assert health["seed"] == 9
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize(("variable", "value"), [("SIM_SEED", "abc"), ("SMS_NUMBERS", "12")])
def test_bad_configuration_exits_2_naming_the_variable(variable: str, value: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "plumsms_local.simulator", "--port", "0"],
        env={**os.environ, variable: value},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert variable in result.stderr
