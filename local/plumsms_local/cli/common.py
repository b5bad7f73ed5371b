"""Options, connection settings and output helpers shared by every smsctl command.

Where smsctl finds the stack, first found wins: the flags (``--url``, ``--token``,
``--sim-url``), then the variables (``SMSCTL_URL``, ``API_TOKEN``, ``SMSCTL_SIM_URL``),
then the state file ``make run`` writes (``.local-data/stack.json`` in the checkout,
``LOCAL_STATE_FILE`` moves it), then ``http://127.0.0.1:3000/`` and ``:8700``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import urllib3

from plumsms_local import state
from plumsms_local.cli.api import ApiClient
from plumsms_local.cli.errors import Unreachable

DEFAULT_API_URL = "http://127.0.0.1:3000/"
DEFAULT_SIMULATOR_URL = "http://127.0.0.1:8700/"
URL_VARIABLE, SIM_URL_VARIABLE, TOKEN_VARIABLE = "SMSCTL_URL", "SMSCTL_SIM_URL", "API_TOKEN"


def add_connection_options(parser: argparse.ArgumentParser, *, after_command: bool) -> None:
    """--url, --token, --sigv4, --sim-url and --json.

    They are accepted before the command and after it; given after it, they need not
    repeat defaults (``SUPPRESS`` keeps the value given before the command).
    """
    default: Any = argparse.SUPPRESS if after_command else None
    group = parser.add_argument_group("connection and output (before or after the command)")
    group.add_argument(
        "--url",
        default=default,
        help=f"bundle API base URL (env {URL_VARIABLE}; default: the stack make run started)",
    )
    group.add_argument(
        "--token",
        default=default,
        help=f"bearer token of the local stack (env {TOKEN_VARIABLE}; default: make run's)",
    )
    group.add_argument(
        "--sigv4",
        action=argparse.BooleanOptionalAction,
        default=default,
        help="sign requests with AWS SigV4 (default: on for execute-api URLs)",
    )
    group.add_argument(
        "--sim-url",
        default=default,
        help=f"Plum simulator base URL (env {SIM_URL_VARIABLE}; default: make run's)",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=default if after_command else False,
        help="print JSON for scripts (errors too, on stderr)",
    )


@dataclass
class Connection:
    """Where the API and the simulator are, and where each setting came from."""

    api_url: str
    api_url_from: str
    token: str | None
    sim_url: str
    sim_url_from: str
    sms_numbers: list[str] = field(default_factory=list)
    stack: state.StackState | None = None
    state_path: str = ""

    def hint(self, source: str) -> str:
        """What to do when nothing answers at a URL that came from ``source``."""
        if source == "state":
            running = self.stack is not None and state.process_alive(self.stack.pid)
            if not running:
                return (
                    f"{self.state_path} names a make run (pid"
                    f" {self.stack.pid if self.stack else '?'}) that is no longer running;"
                    " start it again with `make run`"
                )
            return f"the URL came from {self.state_path}, written by make run"
        if source == "default":
            return (
                f"no running make run found ({self.state_path} is missing); start `make run`"
                f" in this checkout, or give --url/{URL_VARIABLE} and --sim-url/{SIM_URL_VARIABLE}"
            )
        return f"the URL came from {source}"


def resolve_connection(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> None:
    """Fill ``args.url``, ``args.token``, ``args.sim_url`` and ``args.connection``."""
    env = os.environ if env is None else env
    path = state.state_file(env)
    stack = state.read(path)
    api_url, api_from = _pick(
        args.url, env.get(URL_VARIABLE), stack.api_url if stack else None, DEFAULT_API_URL,
        "--url", URL_VARIABLE,
    )  # fmt: skip
    sim_url, sim_from = _pick(
        args.sim_url, env.get(SIM_URL_VARIABLE), stack.sim_url if stack else None,
        DEFAULT_SIMULATOR_URL, "--sim-url", SIM_URL_VARIABLE,
    )  # fmt: skip
    token = args.token or env.get(TOKEN_VARIABLE)
    # The state file's token belongs to the stack it describes, not to another URL.
    if token is None and stack is not None and api_url.rstrip("/") == stack.api_url.rstrip("/"):
        token = stack.api_token
    numbers = [n.strip() for n in env.get("SMS_NUMBERS", "").split(",") if n.strip()]
    if not numbers and stack is not None and api_from == "state":
        numbers = stack.sms_numbers
    args.url, args.sim_url, args.token = api_url, sim_url, token
    args.connection = Connection(
        api_url, api_from, token, sim_url, sim_from, numbers, stack, _shown(path)
    )


def _pick(
    flag: str | None, variable: str | None, saved: str | None, default: str, *names: str
) -> tuple[str, str]:
    if flag:
        return flag, names[0]
    if variable:
        return variable, names[1]
    if saved:
        return saved, "state"
    return default, "default"


def _shown(path: os.PathLike[str]) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return os.fspath(path)


def unreachable(args: argparse.Namespace, what: str, url: str, exc: Exception) -> Unreachable:
    """The error for ``exc`` raised while calling ``url``, with what to do about it."""
    connection: Connection | None = getattr(args, "connection", None)
    source = ""
    if connection is not None:
        source = connection.api_url_from if what == "the bundle API" else connection.sim_url_from
    hint = connection.hint(source) if connection is not None else ""
    return Unreachable(what, url, connection_failure(exc), hint)


def connection_failure(exc: BaseException) -> str:
    """A few words for why a connection failed."""
    reason = getattr(exc, "reason", None) or exc
    if isinstance(reason, urllib3.exceptions.NewConnectionError):
        return "connection refused: nothing listens there"
    if isinstance(reason, urllib3.exceptions.ConnectTimeoutError):
        return "connection timed out"
    if isinstance(reason, urllib3.exceptions.ReadTimeoutError):
        return "no answer in time"
    if isinstance(reason, urllib3.exceptions.NameResolutionError):
        return "unknown host name"
    return type(reason).__name__


def api_client(args: argparse.Namespace) -> ApiClient:
    """The API client for the options given."""
    return ApiClient(
        args.url,
        token=args.token,
        sigv4=args.sigv4,
        on_unreachable=lambda url, exc: unreachable(args, "the bundle API", url, exc),
    )


def print_json(value: Any) -> None:
    """Print ``value`` as indented JSON."""
    json.dump(value, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def print_table(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> None:
    """Print rows as an aligned text table."""
    cells = [[str(c) if c is not None else "" for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=False)]
    line = "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line.rstrip())
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())


def progress(message: str) -> None:
    """A progress line on stderr, so stdout stays clean for --json."""
    print(message, file=sys.stderr, flush=True)


def repeats(schedule: Mapping[str, Any] | None) -> str:
    """A series' rule in a few words (``daily``, ``every 2 weeks on MO,WE``, ``cron 0 9 * * *``),
    with its zone and end; empty for a send that does not repeat."""
    rule = (schedule or {}).get("recurrence") or {}
    if not rule:
        return ""
    if rule.get("cron"):
        what = f"cron {rule['cron']}"
    else:
        unit = {"daily": "day", "weekly": "week", "monthly": "month"}[rule["frequency"]]
        interval = int(rule.get("interval") or 1)
        what = rule["frequency"] if interval == 1 else f"every {interval} {unit}s"
        if rule.get("by_weekday"):
            what += " on " + ",".join(rule["by_weekday"])
    if rule.get("time_zone"):
        what += f" in {rule['time_zone']}"
    if rule.get("count"):
        what += f", {rule['count']} times"
    elif rule.get("until"):
        what += f", until {rule['until']}"
    return what


def schedule_lines(schedule: Mapping[str, Any] | None) -> list[str]:
    """The series and quiet hours of a send, one ``name: value`` line each."""
    schedule = schedule or {}
    lines = []
    rule = repeats(schedule)
    if rule:
        lines.append(f"repeats: {rule} (this is #{schedule.get('occurrence', 1)})")
    if schedule.get("series_id"):
        lines.append(f"series: {schedule['series_id']}")
    quiet = schedule.get("quiet_hours")
    if quiet:
        zone = f" {quiet['time_zone']}" if quiet.get("time_zone") else ""
        lines.append(f"quiet hours: {quiet['start']}-{quiet['end']}{zone}")
    return lines
