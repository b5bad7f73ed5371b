"""``make run``: the whole bundle on one machine.

Starts, in one process: the embedded DynamoDB-compatible server (tables from
``template.yaml``) unless ``AWS_ENDPOINT_URL_DYNAMODB`` points elsewhere; the Plum DEV
simulator unless ``PLUM_API_URL`` points elsewhere; the local API gateway serving the
template's routes on ``127.0.0.1:$PORT``; and a timer that invokes every scheduled
function with EventBridge's event shape. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import faulthandler
import logging
import os
import secrets
import signal
import sys
import threading
import uuid
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from plumsms.adapters.dispatch_trigger import register_in_process
from plumsms_local import dynamodb, snapshot, state, template
from plumsms_local.gateway import AUTH_HINT, LocalGateway
from plumsms_local.lambda_runtime import LocalFunction

log = logging.getLogger("plumsms.local")

DEFAULT_PORT = 3000
STOP_REPORT_SECONDS = 10
"""A stop still running after this long prints every thread's stack (stderr)."""
DEFAULT_SIM_PORT = 8700
DEFAULT_SMS_NUMBERS = "+12435678910"
DEFAULT_PLUM_USERNAME = "plum-sim"
DEFAULT_PLUM_PASSWORD = "plum-sim"  # noqa: S105 - the simulator's local login, not a secret
DEFAULT_DISPATCH_INTERVAL = 5.0
TABLE_NAME = "plumsms-local"
DISPATCHER = "ScheduledSendFunction"
SCHEDULED_ENVIRONMENTS = 4
"""Invocations of a scheduled function that may run at once locally (Lambda: many more)."""


@dataclass
class StackConfig:
    """What ``make run`` reads from the environment (all optional)."""

    port: int = DEFAULT_PORT
    sim_port: int = DEFAULT_SIM_PORT
    host: str = "127.0.0.1"
    api_token: str | None = None
    """``API_TOKEN``; else the one kept in the data file; else a new random one."""
    webhook_key: str | None = None
    """``WEBHOOK_KEY``; else the one kept in the data file; else a new random one."""
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
    save_interval: float = snapshot.DEFAULT_SAVE_INTERVAL
    log_level: str | None = None
    """``LOG_LEVEL`` of the stack and the functions (default: warnings and errors only)."""
    state_file: Path = field(default_factory=state.state_file)

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
            config.dispatch_interval = _seconds("DISPATCH_INTERVAL_SECONDS", env)
        if env.get("LOCAL_SAVE_INTERVAL_SECONDS"):
            config.save_interval = _seconds("LOCAL_SAVE_INTERVAL_SECONDS", env)
        if env.get("LOCAL_DATA_FILE"):
            config.data_file = Path(env["LOCAL_DATA_FILE"])
        config.state_file = state.state_file(env)
        if config.webhook_key is not None and len(config.webhook_key) < 16:
            raise SystemExit("WEBHOOK_KEY: must be at least 16 characters")
        if config.log_level is not None and not isinstance(
            logging.getLevelName(config.log_level.upper()), int
        ):
            raise SystemExit("LOG_LEVEL: one of DEBUG, INFO, WARNING, ERROR")
        if len(config.cursor_key) < 16:
            raise SystemExit("CURSOR_KEY: must be at least 16 characters")
        return config


def _seconds(name: str, env: Mapping[str, str]) -> float:
    try:
        value = float(env[name])
    except ValueError:
        raise SystemExit(f"{name}: must be a number of seconds") from None
    if value <= 0:
        raise SystemExit(f"{name}: must be greater than 0")
    return value


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
            # Send-now invokes and the tick overlap, as on Lambda: each its own environment.
            found[name] = LocalFunction(
                name, path, timeout_seconds=_timeout(props), environments=SCHEDULED_ENVIRONMENTS
            )
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
        self.saver: snapshot.PeriodicSaver | None = None
        self._client: Any = None

    @property
    def api_token(self) -> str:
        """The bearer token of the management API (resolved by ``start``)."""
        assert self.config.api_token is not None
        return self.config.api_token

    @property
    def webhook_key(self) -> str:
        """The webhook key (resolved by ``start``)."""
        assert self.config.webhook_key is not None
        return self.config.webhook_key

    @property
    def url(self) -> str:
        """The gateway's base URL."""
        assert self.gateway is not None
        return self.gateway.url

    @property
    def application_url(self) -> str:
        """The Application URL to give Plum (the simulator is configured with it)."""
        return f"{self.url}plum/inbound?key={self.webhook_key}"

    def start(self) -> LocalStack:
        """Start every part, wire them together, and import every function."""
        config = self.config
        kept = snapshot.read(config.data_file) if config.data_file else snapshot.Snapshot()
        self._resolve_secrets(kept.secrets)
        endpoint = config.dynamodb_endpoint
        if endpoint is None:
            self.database = dynamodb.EmbeddedDynamoDB().start()
            endpoint = self.database.endpoint
        plum_api_url = config.plum_api_url
        if plum_api_url is None:
            with _naming_port("SIM_PORT", config.sim_port):
                self.simulator = self._start_simulator()
            plum_api_url = self.simulator.api_url
        self._set_function_env(endpoint, plum_api_url)
        self._client = dynamodb.client_for(endpoint)
        dynamodb.create_table(self._client, TABLE_NAME)
        if config.data_file:
            snapshot.put_items(self._client, TABLE_NAME, kept.items)
            log.info("loaded %d items from %s", len(kept.items), config.data_file)
            self.saver = snapshot.PeriodicSaver(
                config.data_file, self._collect, config.save_interval
            )
            self.saver.save()  # the secrets are kept from the first second
            self.saver.start()
        with _naming_port("PORT", config.port):
            self.gateway = LocalGateway(
                self.api_token, config.host, config.port, token_hint=self._token_hint()
            )
        os.environ["PUBLIC_BASE_URL"] = self.gateway.url
        self.ticker = Ticker(scheduled_functions(), config.dispatch_interval)
        self._wire_send_now(self.ticker)
        self.gateway.warm()
        self.gateway.start()
        if self.simulator is not None:
            for number in _numbers(config.sms_numbers):
                self.simulator.simulator.set_application_url(number, self.application_url)
        self.ticker.start()
        self._write_state()
        return self

    def _resolve_secrets(self, kept: Mapping[str, str]) -> None:
        # Explicit variables win; then what the data file kept; then new random values.
        config = self.config
        config.api_token = config.api_token or kept.get("api_token") or secrets.token_urlsafe(24)
        config.webhook_key = (
            config.webhook_key or kept.get("webhook_key") or secrets.token_urlsafe(24)
        )

    def _token_hint(self) -> str:
        where = str(self.config.state_file)
        with contextlib.suppress(ValueError):
            where = str(self.config.state_file.relative_to(Path.cwd()))
        hint = AUTH_HINT.format(state_file=where)
        if self.config.data_file:
            hint += f"; it is kept in {self.config.data_file} between runs"
        return hint

    def _collect(self) -> snapshot.Snapshot:
        return snapshot.Snapshot(
            items=snapshot.scan_items(self._client, TABLE_NAME),
            secrets={"api_token": self.api_token, "webhook_key": self.webhook_key},
        )

    def _write_state(self) -> None:
        found = state.StackState(
            api_url=self.url,
            api_token=self.api_token,
            sim_url=f"{self.simulator.base_url}/" if self.simulator is not None else None,
            sms_numbers=_numbers(self.config.sms_numbers),
            pid=os.getpid(),
        )
        try:
            state.write(found, self.config.state_file)
        except OSError as exc:
            log.warning("cannot write %s (%s): smsctl needs --url/--token", exc.filename, exc)

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
        """Stop in reverse order; save the data file a last time if there is one."""
        state.remove(self.config.state_file, os.getpid())
        if self.ticker:
            self.ticker.stop()
        if self.gateway:
            self.gateway.stop()
        if self.saver:
            self.saver.stop()
            self.saver.save()
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
                "WEBHOOK_KEY": self.webhook_key,
                "CURSOR_KEY": self.config.cursor_key,
                "API_TOKEN": self.api_token,
                "PLUM_API_URL": plum_api_url,
                "PLUM_USERNAME": self.config.plum_username,
                "PLUM_PASSWORD": self.config.plum_password,
                "SMS_NUMBERS": self.config.sms_numbers,
                "POWERTOOLS_SERVICE_NAME": "plumsms",
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_LOG_LEVEL": self.config.log_level
                or os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
            }
        )

    def banner(self) -> str:
        """What a person needs to start using the stack."""
        c = self.config
        rows = [
            ("API (routes of template.yaml)", self.url),
            ("Application URL (inbound)", self.application_url),
            ("Result URL", f"{self.url}plum/status?key={self.webhook_key}&ref=<id>"),
            ("Webhook key", self.webhook_key),
            ("API token (Bearer)", self.api_token),
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
        if c.data_file:
            rows.append(("Data kept in", f"{c.data_file} (saved every {c.save_interval:g} s)"))
        rows.append(("smsctl reads", str(c.state_file)))
        first_number = _numbers(c.sms_numbers)[0]
        lines = ["", "plumsms local stack is running"]
        lines += [f"  {label:<31}{value}" for label, value in rows]
        lines += [
            "",
            "Try it (another terminal, same checkout): a customer texts HOURS, a rule answers",
            f"  .venv/bin/smsctl simulate --to {first_number} HOURS",
            "  .venv/bin/smsctl tail",
            "From elsewhere, tell smsctl where this stack is:",
            f"  export SMSCTL_URL={self.url} API_TOKEN={self.api_token}",
        ]
        if self.simulator is not None:
            lines.append(f"  export SMSCTL_SIM_URL={self.simulator.base_url}/")
        lines += ["Ctrl-C stops everything.", ""]
        return "\n".join(lines)


def _numbers(raw: str) -> list[str]:
    return [n.strip() for n in raw.split(",") if n.strip()]


def configure_logging(level: str | None) -> None:
    """The stack's own log lines at ``level`` (default INFO: a few lines at start and stop)."""
    logging.basicConfig(
        level=(level or "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("werkzeug", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Locally metrics are disabled, so every invocation "publishes" an empty set; Powertools
    # warns about each one. On AWS the functions emit metrics and this never shows.
    warnings.filterwarnings("ignore", message="No application metrics to publish")


class PortInUse(OSError):
    """A port the stack needs is taken (the message names the port and its variable)."""


@contextlib.contextmanager
def _naming_port(variable: str, port: int) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise PortInUse(
            f"port {port} is already in use (another make run?); choose another with"
            f" {variable}=<port>, e.g. {variable}={port + 1} make run"
        ) from exc


def main(argv: list[str] | None = None) -> int:
    """Run the local stack until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="plumsms-local", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, help="keep data between runs in this JSON file (LOCAL_DATA_FILE)"
    )
    parser.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="log at INFO: requests, status changes, saves (same as LOG_LEVEL=INFO)",
    )
    args = parser.parse_args(argv)
    config = StackConfig.from_env(os.environ)
    if args.data:
        config.data_file = args.data
    if args.verbose:
        config.log_level = "INFO"
    configure_logging(config.log_level)
    stack = LocalStack(config)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        stack.start()
    except (OSError, snapshot.SnapshotError) as exc:
        print(f"plumsms-local: cannot start: {exc}", file=sys.stderr)
        stack.stop()
        return 1
    try:
        # Inside the try: a Ctrl-C right after the banner (before the wait) stops cleanly.
        print(stack.banner(), flush=True)
        stopping.wait()
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping...", flush=True)
        # A stop that hangs says where: every thread's stack, on stderr, after 10 s.
        faulthandler.dump_traceback_later(STOP_REPORT_SECONDS, exit=False)
        stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
