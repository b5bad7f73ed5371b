"""``make run``: the whole bundle on one machine.

Starts, in one process: the embedded DynamoDB-compatible server (tables from
``template.yaml``) unless ``AWS_ENDPOINT_URL_DYNAMODB`` points elsewhere; the Plum DEV
simulator unless ``PLUM_API_URL`` points elsewhere; the local API gateway serving the
template's routes on ``127.0.0.1:$PORT``; and a timer that invokes every scheduled
function with EventBridge's event shape. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import signal
import sys
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from plumsms.adapters.dispatch_trigger import register_in_process
from plumsms_local import dynamodb, template
from plumsms_local.gateway import LocalGateway
from plumsms_local.lambda_runtime import LocalFunction

log = logging.getLogger("plumsms.local")

DEFAULT_PORT = 3000
DEFAULT_SIM_PORT = 8700
DEFAULT_SMS_NUMBERS = "+12435678910"
DEFAULT_PLUM_USERNAME = "plum-sim"
DEFAULT_PLUM_PASSWORD = "plum-sim"  # noqa: S105 - the simulator's local login, not a secret
DEFAULT_DISPATCH_INTERVAL = 5.0
TABLE_NAME = "plumsms-local"
DISPATCHER = "ScheduledSendFunction"


@dataclass
class StackConfig:
    """What ``make run`` reads from the environment (all optional)."""

    port: int = DEFAULT_PORT
    sim_port: int = DEFAULT_SIM_PORT
    host: str = "127.0.0.1"
    api_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    webhook_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    # Random per run unless CURSOR_KEY is given: cursors of an earlier run then fail
    # with a clear 400 and a listing starts again from page one.
    cursor_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    plum_username: str = DEFAULT_PLUM_USERNAME
    plum_password: str = DEFAULT_PLUM_PASSWORD
    sms_numbers: str = DEFAULT_SMS_NUMBERS
    plum_api_url: str | None = None
    dynamodb_endpoint: str | None = None
    dispatch_interval: float = DEFAULT_DISPATCH_INTERVAL
    data_file: Path | None = None
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> StackConfig:
        """Build from the environment; unset variables keep their defaults."""
        config = cls()
        ints = {"PORT": "port", "SIM_PORT": "sim_port"}
        for name, attr in ints.items():
            if env.get(name):
                setattr(config, attr, _positive_int(name, env[name]))
        text = {
            "API_TOKEN": "api_token",
            "WEBHOOK_KEY": "webhook_key",
            "CURSOR_KEY": "cursor_key",
            "PLUM_USERNAME": "plum_username",
            "PLUM_PASSWORD": "plum_password",
            "SMS_NUMBERS": "sms_numbers",
            "PLUM_API_URL": "plum_api_url",
            "AWS_ENDPOINT_URL_DYNAMODB": "dynamodb_endpoint",
            "LOG_LEVEL": "log_level",
        }
        for name, attr in text.items():
            if env.get(name):
                setattr(config, attr, env[name])
        if env.get("DISPATCH_INTERVAL_SECONDS"):
            try:
                config.dispatch_interval = float(env["DISPATCH_INTERVAL_SECONDS"])
            except ValueError:
                raise SystemExit("DISPATCH_INTERVAL_SECONDS: must be a number of seconds") from None
            if config.dispatch_interval <= 0:
                raise SystemExit("DISPATCH_INTERVAL_SECONDS: must be greater than 0")
        if env.get("LOCAL_DATA_FILE"):
            config.data_file = Path(env["LOCAL_DATA_FILE"])
        if len(config.webhook_key) < 16:
            raise SystemExit("WEBHOOK_KEY: must be at least 16 characters")
        if len(config.cursor_key) < 16:
            raise SystemExit("CURSOR_KEY: must be at least 16 characters")
        return config


def _positive_int(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name}: must be a whole number") from None
    if not 0 <= value <= 65535:
        raise SystemExit(f"{name}: must be a TCP port (0-65535)")
    return value


def scheduled_event(function: str, at: datetime | None = None) -> dict[str, Any]:
    """The event EventBridge Scheduler/Rules send to a scheduled Lambda function."""
    now = (at or datetime.now(UTC)).replace(microsecond=0)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": now.isoformat().replace("+00:00", "Z"),
        "region": dynamodb.REGION,
        "resources": [f"arn:aws:events:{dynamodb.REGION}:000000000000:rule/local-{function}"],
        "detail": {},
    }


def scheduled_functions() -> dict[str, LocalFunction]:
    """Every function with a ``Schedule`` event in the template."""
    found: dict[str, LocalFunction] = {}
    for name, resource in template.load()["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        events = (props.get("Events") or {}).values()
        if any(e.get("Type") in {"Schedule", "ScheduleV2"} for e in events):
            module = props["Handler"].split(".", 1)[0]
            path = template.TEMPLATE.parent / props["CodeUri"] / f"{module}.py"
            found[name] = LocalFunction(name, path, timeout_seconds=_timeout(props))
    return found


def _timeout(props: Mapping[str, Any]) -> float:
    value = props.get("Timeout") or template.load().get("Globals", {}).get("Function", {}).get(
        "Timeout", 10
    )
    return float(value)


class Ticker:
    """Invokes scheduled functions on an interval, one after another, until stopped."""

    def __init__(self, functions: Mapping[str, LocalFunction], interval: float) -> None:
        self.functions = dict(functions)
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)

    def start(self) -> None:
        """Start ticking in the background."""
        if self.functions:
            self._thread.start()

    def stop(self) -> None:
        """Stop after the current tick."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def tick(self) -> None:
        """Invoke each scheduled function once."""
        for name in self.functions:
            # A failing scheduled run is logged and retried next tick, as on AWS.
            self.run_one(name, scheduled_event(name))

    def run_one(self, name: str, event: dict[str, Any]) -> None:
        """Invoke one scheduled function with ``event`` (logged, never raised)."""
        try:
            self.functions[name].invoke(event)
        except Exception:
            log.exception("run of %s failed", name)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()


class LocalStack:
    """The embedded database, the Plum simulator, the gateway and the scheduler."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.database: dynamodb.EmbeddedDynamoDB | None = None
        self.simulator: Any = None
        self.gateway: LocalGateway | None = None
        self.ticker: Ticker | None = None

    @property
    def url(self) -> str:
        """The gateway's base URL."""
        assert self.gateway is not None
        return self.gateway.url

    @property
    def application_url(self) -> str:
        """The Application URL to give Plum (the simulator is configured with it)."""
        return f"{self.url}plum/inbound?key={self.config.webhook_key}"

    def start(self) -> LocalStack:
        """Start every part, wire them together, and import every function."""
        config = self.config
        endpoint = config.dynamodb_endpoint
        if endpoint is None:
            self.database = dynamodb.EmbeddedDynamoDB().start()
            endpoint = self.database.endpoint
        plum_api_url = config.plum_api_url
        if plum_api_url is None:
            self.simulator = self._start_simulator()
            plum_api_url = self.simulator.api_url
        self._set_function_env(endpoint, plum_api_url)
        client = dynamodb.client_for(endpoint)
        dynamodb.create_table(client, TABLE_NAME)
        if config.data_file and config.data_file.exists():
            _load_snapshot(client, config.data_file)
        self.gateway = LocalGateway(config.api_token, config.host, config.port)
        os.environ["PUBLIC_BASE_URL"] = self.gateway.url
        self.ticker = Ticker(scheduled_functions(), config.dispatch_interval)
        self._wire_send_now(self.ticker)
        self.gateway.warm()
        self.gateway.start()
        if self.simulator is not None:
            for number in _numbers(config.sms_numbers):
                self.simulator.simulator.set_application_url(number, self.application_url)
        self.ticker.start()
        return self

    @staticmethod
    def _wire_send_now(ticker: Ticker) -> None:
        """Send-now invokes the dispatcher in-process (on AWS: an async Lambda invoke)."""
        dispatcher = ticker.functions.get(DISPATCHER)
        if dispatcher is None:
            return
        os.environ["SCHEDULED_SEND_FUNCTION"] = DISPATCHER

        def invoke_async(event: dict[str, Any]) -> None:
            # An async invoke returns at once; the API request is still waiting.
            threading.Thread(target=ticker.run_one, args=(DISPATCHER, event), daemon=True).start()

        register_in_process(DISPATCHER, invoke_async)

    def stop(self) -> None:
        """Stop in reverse order; save a snapshot if asked to."""
        if self.ticker:
            self.ticker.stop()
        if self.gateway:
            self.gateway.stop()
        if self.config.data_file:
            endpoint = os.environ["AWS_ENDPOINT_URL_DYNAMODB"]
            _save_snapshot(dynamodb.client_for(endpoint), self.config.data_file)
        if self.simulator:
            self.simulator.stop()
        if self.database:
            self.database.stop()

    def _start_simulator(self) -> Any:
        from plumsms_local.simulator.config import SimulatorConfig  # noqa: PLC0415
        from plumsms_local.simulator.server import PlumSimulator  # noqa: PLC0415

        sim_config = SimulatorConfig.from_env(
            {
                **os.environ,
                "PLUM_USERNAME": self.config.plum_username,
                "PLUM_PASSWORD": self.config.plum_password,
                "SMS_NUMBERS": self.config.sms_numbers,
            }
        )
        simulator = PlumSimulator(sim_config, host=self.config.host, port=self.config.sim_port)
        simulator.start()
        return simulator

    def _set_function_env(self, endpoint: str, plum_api_url: str) -> None:
        # The functions read their configuration from the environment, as on Lambda.
        os.environ.update(
            {
                "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
                "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "local"),
                "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
                "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", dynamodb.REGION),
                "TABLE_NAME": TABLE_NAME,
                "WEBHOOK_KEY": self.config.webhook_key,
                "CURSOR_KEY": self.config.cursor_key,
                "API_TOKEN": self.config.api_token,
                "PLUM_API_URL": plum_api_url,
                "PLUM_USERNAME": self.config.plum_username,
                "PLUM_PASSWORD": self.config.plum_password,
                "SMS_NUMBERS": self.config.sms_numbers,
                "POWERTOOLS_SERVICE_NAME": "plumsms",
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
            }
        )

    def banner(self) -> str:
        """What a person needs to start using the stack."""
        c = self.config
        rows = [
            ("API (routes of template.yaml)", self.url),
            ("Application URL (inbound)", self.application_url),
            ("Result URL", f"{self.url}plum/status?key={c.webhook_key}&ref=<id>"),
            ("Webhook key", c.webhook_key),
            ("API token (Bearer)", c.api_token),
            ("Web page", f"{self.url}ui"),
        ]
        if self.simulator is not None:
            rows += [
                ("Plum simulator", f"{self.simulator.base_url}/"),
                ("Plum API (simulated)", self.simulator.api_url),
                ("Plum login (simulator)", f"{c.plum_username} / {c.plum_password}"),
            ]
        else:
            rows.append(("Plum API", os.environ["PLUM_API_URL"]))
        rows += [
            ("SMS numbers", c.sms_numbers),
            ("DynamoDB", f"{os.environ['AWS_ENDPOINT_URL_DYNAMODB']} (table {TABLE_NAME})"),
            ("Dispatcher runs every", f"{c.dispatch_interval:g} s"),
        ]
        first_number = _numbers(c.sms_numbers)[0]
        lines = ["", "plumsms local stack is running"]
        lines += [f"  {label:<31}{value}" for label, value in rows]
        lines += [
            "",
            "Try it (another terminal):",
            f"  export API_TOKEN={c.api_token}",
            f"  .venv/bin/smsctl simulate --from +19998881234 --to {first_number} 'HELP'",
            "Ctrl-C stops everything.",
            "",
        ]
        return "\n".join(lines)


def _numbers(raw: str) -> list[str]:
    return [n.strip() for n in raw.split(",") if n.strip()]


def _save_snapshot(client: Any, path: Path) -> None:
    """Write every item to ``path`` (a developer convenience; the product never scans)."""
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=TABLE_NAME):
        items.extend(page["Items"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(items))
    log.info("saved %d items to %s", len(items), path)


def _load_snapshot(client: Any, path: Path) -> None:
    items = json.loads(path.read_text())
    for start in range(0, len(items), 25):
        chunk = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        request: dict[str, Any] = {TABLE_NAME: chunk}
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
    log.info("loaded %d items from %s", len(items), path)


def main(argv: list[str] | None = None) -> int:
    """Run the local stack until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="plumsms-local", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="keep data between runs in this JSON file")
    args = parser.parse_args(argv)
    config = StackConfig.from_env(os.environ)
    if args.data:
        config.data_file = args.data
    logging.basicConfig(
        level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("werkzeug", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    stack = LocalStack(config)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        stack.start()
    except OSError as exc:
        print(f"plumsms-local: cannot start: {exc}", file=sys.stderr)
        stack.stop()
        return 1
    print(stack.banner(), flush=True)
    try:
        stopping.wait()
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping...", flush=True)
        stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
