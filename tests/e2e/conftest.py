"""End-to-end fixtures: the local stack started the way a user starts it (`make run`)."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import urllib3

from plumsms_local.dynamodb import free_port
from plumsms_local.simulator.client import SimulatorClient
from tests.e2e.local_stack import spawn_stack, stack_env

WEBHOOK_KEY = "e2e-webhook-key-0123456789"
API_TOKEN = "e2e-api-token"
SMS_NUMBER = "+12435678910"
READY_LINE = "plumsms local stack is running"


@dataclass
class RunningStack:
    """A running local stack and clients for it."""

    url: str
    sim: SimulatorClient
    process: subprocess.Popen[str]
    output: list[str]
    http: urllib3.PoolManager
    webhook_key: str = WEBHOOK_KEY
    sms_number: str = SMS_NUMBER
    api_token: str = API_TOKEN

    def api(
        self, method: str, path: str, body: Any = None, **headers: str
    ) -> urllib3.BaseHTTPResponse:
        """Call the management API with the bearer token."""
        return self.http.request(
            method,
            self.url + path.lstrip("/"),
            body=json.dumps(body).encode() if body is not None else None,
            headers={
                "authorization": f"Bearer {API_TOKEN}",
                "content-type": "application/json",
                **headers,
            },
        )

    def api_json(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        """Call the management API and decode its JSON answer (asserting success)."""
        response = self.api(method, path, body, **headers)
        # The stack's last lines name the cause of a 5xx (its traceback is logged there).
        assert response.status < 400, (response.status, response.data[:500], self.output[-20:])
        return json.loads(response.data)

    def wait_for_status(self, message_id: str, statuses: set[str], timeout: float = 20.0) -> Any:
        """Poll ``GET /messages/{id}`` until its status is one of ``statuses``."""

        def reached() -> Any:
            message = self.api_json("GET", f"messages/{message_id}")
            return message if message["status"] in statuses else None

        return self.wait_until(reached, timeout=timeout)

    def post_form(self, path: str, fields: dict[str, str]) -> urllib3.BaseHTTPResponse:
        """POST a form, as Plum does."""
        return self.http.request_encode_body(
            "POST", self.url + path.lstrip("/"), fields=fields, encode_multipart=False
        )

    @staticmethod
    def wait_until(predicate: Any, timeout: float = 15.0, interval: float = 0.1) -> Any:
        """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            time.sleep(interval)


def _reader(stream: Any, lines: list[str], ready: queue.Queue[str]) -> None:
    for line in stream:
        lines.append(line.rstrip("\n"))
        if READY_LINE in line:
            ready.put(line)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """`plumsms-local` in a subprocess on free ports, with fast simulated delivery."""
    port, sim_port = free_port(), free_port()
    rules = tmp_path_factory.mktemp("rules") / "rules.yaml"
    rules.write_text(
        "help_text: 'E2E help'\nkeywords:\n  - keywords: [ping]\n    reply: 'pong {body}'\n"
    )
    env = stack_env(
        **{
            "PORT": str(port),
            "SIM_PORT": str(sim_port),
            "WEBHOOK_KEY": WEBHOOK_KEY,
            "API_TOKEN": API_TOKEN,
            "SMS_NUMBERS": SMS_NUMBER,
            "RULES_FILE": str(rules),
            "DISPATCH_INTERVAL_SECONDS": "0.5",
            "SIM_DELAY_SENT_SECONDS": "0.05",
            "SIM_DELAY_FINAL_SECONDS": "0.05",
            "SIM_SEED": "7",
            # Callbacks arrive twice and out of order; the reconciler covers dropped ones.
            "SIM_CALLBACK_DUPLICATE_RATE": "0.3",
            "SIM_CALLBACK_REORDER_RATE": "0.3",
            "SIM_CALLBACK_DROP_RATE": "0.2",
            "RECONCILE_AFTER_MINUTES": "0.02",
            "SEND_RATE_PER_SECOND": "20",
            # Not the checkout's .local-data/stack.json: a person's own make run may own it.
            "LOCAL_STATE_FILE": str(tmp_path_factory.mktemp("state") / "stack.json"),
        }
    )
    process = spawn_stack(env)
    lines: list[str] = []
    ready: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_reader, args=(process.stdout, lines, ready), daemon=True).start()
    try:
        ready.get(timeout=60)
    except queue.Empty:
        process.kill()
        pytest.fail("local stack did not start:\n" + "\n".join(lines[-40:]))
    running = RunningStack(
        url=f"http://127.0.0.1:{port}/",
        sim=SimulatorClient(f"http://127.0.0.1:{sim_port}"),
        process=process,
        output=lines,
        http=urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(total=15)),
    )
    yield running
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
