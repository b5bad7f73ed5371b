"""``LOCAL_DATA_FILE``: what a person did survives a restart, and a kill loses at most one
save interval. The stack runs as ``make run`` runs it, in a subprocess."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import urllib3

from plumsms_local import snapshot
from plumsms_local.dynamodb import free_port
from plumsms_local.simulator.client import SimulatorClient
from tests.e2e.local_stack import spawn_stack, stack_env

pytestmark = pytest.mark.e2e

SMS_NUMBER = "+12435678910"
CUSTOMER = "+12125550101"
QUITTER = "+12125550102"
SAVE_INTERVAL = 0.5
HTTP = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(total=15))


@dataclass
class Stack:
    process: subprocess.Popen[str]
    url: str
    sim: SimulatorClient
    banner: str

    @property
    def token(self) -> str:
        return next(
            line.split()[-1] for line in self.banner.splitlines() if "API token (Bearer)" in line
        )

    def api(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        response = HTTP.request(
            method,
            self.url + path,
            body=json.dumps(body).encode() if body is not None else None,
            headers={"authorization": f"Bearer {self.token}", **headers},
        )
        assert response.status < 400, (response.status, response.data[:300])
        return json.loads(response.data)


def start(tmp_path: Path, data_file: Path) -> Stack:
    port, sim_port = free_port(), free_port()
    env = stack_env(
        **{
            "PORT": str(port),
            "SIM_PORT": str(sim_port),
            "SMS_NUMBERS": SMS_NUMBER,
            "LOCAL_DATA_FILE": str(data_file),
            "LOCAL_SAVE_INTERVAL_SECONDS": str(SAVE_INTERVAL),
            "LOCAL_STATE_FILE": str(tmp_path / "stack.json"),
            "SIM_DELAY_SENT_SECONDS": "0.05",
            "SIM_DELAY_FINAL_SECONDS": "0.05",
        }
    )
    process = spawn_stack(env)
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("Ctrl-C stops everything"):
            break
    else:
        process.kill()
    banner = "".join(lines)
    assert "plumsms local stack is running" in banner, banner
    return Stack(
        process,
        f"http://127.0.0.1:{port}/",
        SimulatorClient(f"http://127.0.0.1:{sim_port}"),
        banner,
    )


@pytest.fixture
def stacks() -> Iterator[list[Stack]]:
    started: list[Stack] = []
    yield started
    for stack in started:
        if stack.process.poll() is None:
            stack.process.kill()
        stack.process.wait(timeout=30)


def make_every_kind_of_record(stack: Stack) -> dict[str, Any]:
    """An inbound SMS with its reply, an opt-out, a scheduled send, an idempotency record."""
    inbound = stack.sim.send_text(CUSTOMER, SMS_NUMBER, "HOURS")
    assert inbound["reply"]["sms_message_ids"], inbound
    stack.sim.send_text(QUITTER, SMS_NUMBER, "STOP")
    later = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    request = {"to": CUSTOMER, "from": SMS_NUMBER, "body": "tomorrow", "send_at": later.isoformat()}
    scheduled = stack.api(
        "POST",
        "messages",
        request,
        **{"Idempotency-Key": "keep-me-0001", "content-type": "application/json"},
    )
    return {"inbound": inbound["sms_message_id"], "scheduled": scheduled["id"], "request": request}


def assert_everything_is_back(stack: Stack, made: dict[str, Any], token: str) -> None:
    # The API token is the one of the first run (nobody set API_TOKEN).
    assert stack.token == token
    inbound = stack.api("GET", f"messages/{made['inbound']}")
    assert inbound["type"] == "inbound" and inbound["body"] == "HOURS"
    listed = stack.api("GET", f"messages?number={CUSTOMER.replace('+', '%2B')}&type=reply")
    assert [m["body"] for m in listed["items"]] == ["We are open Monday to Friday, 9am to 5pm."]
    assert stack.api("GET", f"messages/{made['scheduled']}")["status"] == "scheduled"
    opted_out = [o["number"] for o in stack.api("GET", "opt-outs")["items"]]
    assert QUITTER in opted_out
    # The idempotency record: the same key and body is a replay of the same message.
    replay = HTTP.request(
        "POST",
        stack.url + "messages",
        body=json.dumps(made["request"]).encode(),
        headers={
            "authorization": f"Bearer {token}",
            "content-type": "application/json",
            "Idempotency-Key": "keep-me-0001",
        },
    )
    assert json.loads(replay.data).get("id") == made["scheduled"], replay.data[:300]


def test_data_survives_a_clean_restart(tmp_path: Path, stacks: list[Stack]) -> None:
    data_file = tmp_path / "data.json"
    # GIVEN a stack with a data file, and records of every kind in it
    first = start(tmp_path, data_file)
    stacks.append(first)
    made = make_every_kind_of_record(first)
    # WHEN the person presses Ctrl-C (the crash of issue 13: reply_xml is Binary)
    first.process.send_signal(signal.SIGINT)
    rest, _ = first.process.communicate(timeout=30)  # read while it stops: no full pipe
    assert first.process.returncode == 0
    assert "Traceback" not in (rest or "")
    # THEN the next run has all of it back, with the same API token
    second = start(tmp_path, data_file)
    stacks.append(second)
    assert_everything_is_back(second, made, first.token)


def test_a_kill_loses_at_most_one_save_interval(tmp_path: Path, stacks: list[Stack]) -> None:
    data_file = tmp_path / "data.json"
    first = start(tmp_path, data_file)
    stacks.append(first)
    made = make_every_kind_of_record(first)
    # WHEN the stack is killed (no chance to save at exit) one save interval later
    time.sleep(SAVE_INTERVAL * 3)
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=30)
    # THEN the file is whole and the periodic saves kept everything made before
    assert snapshot.read(data_file).items
    second = start(tmp_path, data_file)
    stacks.append(second)
    assert_everything_is_back(second, made, first.token)
