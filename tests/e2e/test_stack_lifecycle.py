"""`make run` as a person uses it: the banner, then Ctrl-C stops everything cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import urllib3

from plumsms_local.dynamodb import free_port
from plumsms_local.template import PROJECT_ROOT

pytestmark = pytest.mark.e2e


def test_banner_names_everything_and_ctrl_c_stops_cleanly() -> None:
    port, sim_port = free_port(), free_port()
    env = {**os.environ, "PORT": str(port), "SIM_PORT": str(sim_port), "PYTHONUNBUFFERED": "1"}
    for name in ("WEBHOOK_KEY", "API_TOKEN", "AWS_ENDPOINT_URL_DYNAMODB", "PLUM_API_URL"):
        env.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "plumsms_local.stack"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if line.startswith("Ctrl-C stops everything"):
            break
    banner = "".join(lines)
    # GIVEN no WEBHOOK_KEY or API_TOKEN: both are generated and printed with every URL
    assert f"http://127.0.0.1:{port}/plum/inbound?key=" in banner
    assert "API token (Bearer)" in banner and "Webhook key" in banner
    assert f"http://127.0.0.1:{sim_port}/" in banner
    health = urllib3.request("GET", f"http://127.0.0.1:{sim_port}/sim/health", timeout=5)
    assert health.status == 200
    # WHEN the person presses Ctrl-C
    process.send_signal(signal.SIGINT)
    # THEN everything stops, the ports are released and the exit status is 0
    assert process.wait(timeout=30) == 0
    for listening in (port, sim_port):
        with pytest.raises(urllib3.exceptions.HTTPError):
            urllib3.request("GET", f"http://127.0.0.1:{listening}/", timeout=2, retries=False)
