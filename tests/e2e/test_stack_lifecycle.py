"""`make run` as a person uses it: the banner, then Ctrl-C stops everything cleanly."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import urllib3

from plumsms_local.dynamodb import free_port
from plumsms_local.template import PROJECT_ROOT
from tests.e2e.local_stack import spawn_stack, stack_env

pytestmark = pytest.mark.e2e


def test_banner_names_everything_and_ctrl_c_stops_cleanly(tmp_path: Path) -> None:
    port, sim_port = free_port(), free_port()
    env = stack_env(
        PORT=str(port), SIM_PORT=str(sim_port), LOCAL_STATE_FILE=str(tmp_path / "stack.json")
    )
    process = spawn_stack(env)
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
    # AND it suggests a command the bundle answers (not HELP, which the carrier answers),
    # and how smsctl finds the stack from elsewhere
    assert "smsctl simulate --to +12435678910 HOURS" in banner
    assert f"SMSCTL_URL=http://127.0.0.1:{port}/" in banner
    assert f"SMSCTL_SIM_URL=http://127.0.0.1:{sim_port}/" in banner
    health = urllib3.request("GET", f"http://127.0.0.1:{sim_port}/sim/health", timeout=5)
    assert health.status == 200
    # WHEN the person presses Ctrl-C
    process.send_signal(signal.SIGINT)
    # THEN everything stops, the ports are released and the exit status is 0 (its output
    # read meanwhile: a full pipe would hold the stack's last lines, and its exit, back)
    process.communicate(timeout=30)
    assert process.returncode == 0
    for listening in (port, sim_port):
        with pytest.raises(urllib3.exceptions.HTTPError):
            urllib3.request("GET", f"http://127.0.0.1:{listening}/", timeout=2, retries=False)


def _start(tmp_path: Path, *args: str, **env_vars: str) -> tuple[subprocess.Popen[str], int, str]:
    port, sim_port = free_port(), free_port()
    env = stack_env(
        **{
            "PORT": str(port),
            "SIM_PORT": str(sim_port),
            "API_TOKEN": "lifecycle-token",
            "DISPATCH_INTERVAL_SECONDS": "0.3",
            "SIM_DELAY_SENT_SECONDS": "0.05",
            "SIM_DELAY_FINAL_SECONDS": "0.05",
            "LOCAL_STATE_FILE": str(tmp_path / "stack.json"),
            **env_vars,
        }
    )
    process = spawn_stack(env, *args)
    assert process.stdout is not None
    banner = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "Ctrl-C stops everything" not in banner:
        banner += process.stdout.readline()
    return process, port, banner


def _send_now(port: int) -> str:
    answer = urllib3.request(
        "POST",
        f"http://127.0.0.1:{port}/messages",
        json={"to": "+12125550199", "from": "+12435678910", "body": "hello"},
        headers={"authorization": "Bearer lifecycle-token"},
        timeout=10,
    )
    assert answer.status == 201, answer.data
    return str(answer.json()["id"])


def _drop_a_connection(port: int) -> None:
    # A client that sends a request and resets the connection without reading the answer.
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.sendall(b"GET /ui HTTP/1.1\r\nHost: x\r\n\r\n")


def test_make_run_prints_no_noise(tmp_path: Path) -> None:
    # GIVEN make run with its default log level
    process, port, banner = _start(tmp_path)
    assert process.stdout is not None
    # WHEN people use it: a send, a page load, dropped connections, a state file for smsctl
    assert json.loads((tmp_path / "stack.json").read_text())["api_token"] == "lifecycle-token"
    _send_now(port)
    for _ in range(3):
        _drop_a_connection(port)
    time.sleep(1.5)
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    output = banner + rest
    # THEN the terminal shows no tracebacks, no metrics blobs and no empty-metrics warnings
    assert "Traceback" not in output
    assert '"_aws"' not in output
    assert "No application metrics" not in output
    # AND the state file is gone with the stack
    assert not (tmp_path / "stack.json").exists()


def test_verbose_shows_the_status_changes(tmp_path: Path) -> None:
    # GIVEN make run --verbose (LOG_LEVEL=INFO does the same)
    process, port, _ = _start(tmp_path, "--verbose")
    assert process.stdout is not None
    try:
        # WHEN a message is sent
        message_id = _send_now(port)
        # THEN its status changes are logged with its id
        deadline = time.monotonic() + 30
        seen = ""
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            seen += line
            if '"status change"' in line and message_id in line and '"delivered"' in line:
                break
        else:
            pytest.fail("no 'status change' line for the message:\n" + seen[-3000:])
    finally:
        process.send_signal(signal.SIGINT)
        # Read to the end: at INFO the stack writes more than a pipe holds while it stops.
        process.communicate(timeout=30)


def test_a_port_in_use_is_named_with_its_variable(tmp_path: Path) -> None:
    # GIVEN something already listening on the API port
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **os.environ,
            "PORT": str(port),
            "SIM_PORT": str(free_port()),
            "LOCAL_STATE_FILE": str(tmp_path / "stack.json"),
        }
        # WHEN make run starts
        done = subprocess.run(
            [sys.executable, "-m", "plumsms_local.stack"],
            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    # THEN it says which port and which variable moves it, without a traceback
    assert done.returncode == 1
    assert f"port {port} is already in use" in done.stderr and "PORT=" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
