"""smsctl send / schedule / cancel / reschedule: the sending routes of the API.

``send`` sends now; ``schedule`` sends at a time (``--at``, with ``--tz``), optionally
repeating (``--every`` daily/weekly/monthly or ``--cron``, ending with ``--count`` or
``--until``) and holding sends inside quiet hours (``--quiet 21:00-08:00``);
``cancel`` cancels a pending message; ``reschedule`` moves it or changes its body.
Every request carries an ``Idempotency-Key`` (``--idempotency-key``, else a fresh one),
so a retried command never creates a second message.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import uuid
from typing import Any

from plumsms_local.cli import times
from plumsms_local.cli.common import (
    api_client,
    print_json,
    print_table,
    progress,
    schedule_lines,
)
from plumsms_local.cli.errors import UsageError

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_QUIET = re.compile(r"^(\d{1,2}:\d{2})-(\d{1,2}:\d{2})$")
_COLUMNS = ("id", "status", "send_at", "to", "from", "segments", "encoding")
FIELD_FLAGS = {
    "to": "--to",
    "from": "--from",
    "body": "BODY",
    "send_at": "--at",
    "time_zone": "--tz",
    "recurrence": "--every/--cron",
    "recurrence.cron": "--cron",
    "recurrence.frequency": "--every",
    "recurrence.interval": "--interval",
    "recurrence.by_weekday": "--on",
    "recurrence.count": "--count",
    "recurrence.until": "--until",
    "recurrence.time_zone": "--tz",
    "quiet_hours": "--quiet",
    "quiet_hours.start": "--quiet",
    "quiet_hours.end": "--quiet",
    "quiet_hours.time_zone": "--quiet-tz",
}
"""API fields -> the flags a person typed, so refusals name what they can change."""

_SEND_EXAMPLES = """examples:
  smsctl send --to +12125551234 "Your order has shipped"
  echo "from a file" | smsctl send --to +12125551234 -
  smsctl --json send --to +12125551234 "Hi" | jq -r .id
  id=$(smsctl send -q --to +12125551234 "Hi")

--from defaults to the account's number when it has only one (smsctl numbers lists them).
The message is sent at once: the dispatcher hands it to Plum within seconds.
"""

_SCHEDULE_EXAMPLES = """examples:
  smsctl schedule --to +12125551234 --in 10m "Reminder: pickup today"
  smsctl schedule --to +12125551234 --at +2h "Two hours from now"
  smsctl schedule --to +12125551234 --at 2026-07-01T09:00 "9am here (this computer's zone)"
  smsctl schedule --to +12125551234 --at 2026-07-01T09:00 --tz Europe/Paris "9am in Paris"
  smsctl schedule --to +12125551234 --at 09:00... --every daily --count 5 "Daily, five times"
  smsctl schedule --to +12125551234 --cron '0 9 * * MON-FRI' --until 2026-12-31 "Weekdays"

times: ISO 8601 with a zone (...Z, +02:00) is that instant; without one it is in --tz,
else in this computer's zone (smsctl says which); +10m / --in 10m is from now.
"""


def _add_message_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--to", required=True, help="recipient phone number (E.164 or national)")
    parser.add_argument(
        "--from",
        dest="from_",
        metavar="NUMBER",
        help="one of the account's SMS numbers (default: $SMSCTL_FROM, else the only one)",
    )
    parser.add_argument("--idempotency-key", help="make retries safe (default: a fresh key)")
    parser.add_argument("body", help="the message text ('-' reads it from stdin)")
    parser.set_defaults(field_flags=FIELD_FLAGS)


def register(subparsers: Any) -> None:
    """Add the sending commands."""
    raw = argparse.RawDescriptionHelpFormatter
    send = subparsers.add_parser(
        "send", help="send an SMS now", epilog=_SEND_EXAMPLES, formatter_class=raw
    )
    _add_message_options(send)
    send.add_argument(
        "--quiet", "-q", action="store_true", help="print only the message id (for scripts)"
    )
    send.set_defaults(handler=_send)

    schedule = subparsers.add_parser(
        "schedule",
        help="send an SMS later, optionally repeating and outside quiet hours",
        epilog=_SCHEDULE_EXAMPLES.replace("--at 09:00... ", "--at 2026-07-01T09:00 "),
        formatter_class=raw,
    )
    _add_message_options(schedule)
    when = schedule.add_mutually_exclusive_group()
    when.add_argument("--at", metavar="WHEN", help="when: ISO 8601 (zone optional) or +10m")
    when.add_argument("--in", dest="in_", metavar="DURATION", help="how long from now: 10m, 2h")
    schedule.add_argument("--tz", help="IANA time zone of --at and of the rules, e.g. Europe/Paris")
    repeat = schedule.add_mutually_exclusive_group()
    repeat.add_argument("--every", choices=["daily", "weekly", "monthly"], help="repeat")
    repeat.add_argument("--cron", help="repeat on a cron rule, e.g. '0 9 * * MON-FRI'")
    schedule.add_argument("--interval", type=int, help="every N days/weeks/months (default 1)")
    schedule.add_argument("--on", help="weekly on these days, e.g. MO,TH")
    schedule.add_argument("--count", type=int, help="stop after this many sends")
    schedule.add_argument("--until", metavar="WHEN", help="stop after this date or time")
    schedule.add_argument("--quiet", help="quiet hours in the recipient's zone, e.g. 21:00-08:00")
    schedule.add_argument("--quiet-tz", help="time zone of the quiet hours (default: --tz)")
    schedule.set_defaults(handler=_schedule)

    numbers = subparsers.add_parser(
        "numbers", help="the account's SMS numbers (the valid --from values)"
    )
    numbers.set_defaults(handler=_numbers)

    cancel = subparsers.add_parser("cancel", help="cancel a pending message")
    cancel.add_argument("id", help="the message id")
    cancel.set_defaults(handler=_cancel)

    reschedule = subparsers.add_parser(
        "reschedule", help="move a pending message or change its text"
    )
    reschedule.add_argument("id", help="the message id")
    reschedule.add_argument("--at", metavar="WHEN", help="the new time: as schedule --at")
    reschedule.add_argument("--tz", help="IANA time zone of --at")
    reschedule.add_argument("--body", help="the new text ('-' reads it from stdin)")
    reschedule.set_defaults(handler=_reschedule, field_flags=FIELD_FLAGS)


def _text(value: str) -> str:
    return sys.stdin.read().rstrip("\n") if value == "-" else value


def sender(args: argparse.Namespace) -> str:
    """--from, else $SMSCTL_FROM, else the account's only number; ``UsageError`` if unsure."""
    if args.from_:
        return str(args.from_)
    if os.environ.get("SMSCTL_FROM"):
        return os.environ["SMSCTL_FROM"]
    numbers = args.connection.sms_numbers
    if len(numbers) == 1:
        return str(numbers[0])
    if numbers:
        raise UsageError(
            f"--from: the account has several numbers ({', '.join(numbers)}); pick one"
        )
    raise UsageError("--from is required (no running make run or SMS_NUMBERS names the numbers)")


def _base_request(args: argparse.Namespace) -> dict[str, Any]:
    return {"to": args.to, "from": sender(args), "body": _text(args.body)}


def _post(args: argparse.Namespace, payload: dict[str, Any], now: bool) -> int:
    key = args.idempotency_key or str(uuid.uuid4())
    response = api_client(args).request(
        "POST", "messages", body=payload, headers={IDEMPOTENCY_HEADER: key}
    )
    answer = json.loads(response.read())
    replayed = (response.headers.get(REPLAYED_HEADER) or "").lower() == "true"
    if getattr(args, "quiet", None) is True and not args.json:
        print(answer.get("id"))
        return 0
    _show(args, answer)
    if replayed:
        progress(f"(replayed: key {key} was used before; nothing new sent)")
    elif now and not args.json:
        progress(f"sending now; follow it with: smsctl show {answer.get('id')}  (or smsctl tail)")
    return 0


def _send(args: argparse.Namespace) -> int:
    return _post(args, _base_request(args), now=True)


def _when(args: argparse.Namespace, flag: str, value: str) -> times.When:
    tz = times.zone(args.tz, "--tz") if getattr(args, "tz", None) else None
    when = times.parse(value, flag, tz=tz)
    if when.assumed_zone:
        zone = when.zone or "this computer's UTC offset"
        progress(f"{flag} {value}: no zone given, read as local time ({zone}); --tz chooses one")
    return when


def _put_time(payload: dict[str, Any], when: times.When) -> None:
    # A wall-clock time in this computer's zone goes as the instant it names, so the
    # quiet hours keep their default zone (the recipient's); in --tz it goes as written.
    payload["send_at"] = when.utc() if when.assumed_zone else when.text


def schedule_request(args: argparse.Namespace) -> dict[str, Any]:
    """The POST /messages body for ``smsctl schedule``; ``UsageError`` on bad usage."""
    payload = _base_request(args)
    repeating = args.every or args.cron
    if not (args.at or args.in_) and not repeating:
        raise UsageError(
            "--at or --in is required (or --every/--cron to start now); send sends now"
        )
    if args.at:
        _put_time(payload, _when(args, "--at", args.at))
    elif args.in_:
        payload["send_at"] = times.duration(args.in_, "--in").utc()
    if args.tz:
        payload["time_zone"] = times.zone(args.tz, "--tz")
    if repeating:
        if args.count is None and args.until is None:
            raise UsageError("a repeating message needs --count or --until")
        rule: dict[str, Any] = {"cron": args.cron} if args.cron else {"frequency": args.every}
        if args.interval is not None:
            rule["interval"] = args.interval
        if args.on:
            rule["by_weekday"] = [d.strip().upper()[:2] for d in args.on.split(",") if d.strip()]
        if args.count is not None:
            rule["count"] = args.count
        if args.until:
            until = _when(args, "--until", args.until)
            rule["until"] = until.utc() if until.assumed_zone or not until.zone else until.text
        if not args.tz:
            local = times.local_zone()
            if local:
                rule["time_zone"] = local  # a series follows this computer's clock (DST)
        payload["recurrence"] = rule
    elif args.interval or args.on or args.count or args.until:
        raise UsageError("--interval, --on, --count and --until go with --every or --cron")
    if args.quiet:
        match = _QUIET.match(args.quiet.replace(" ", ""))
        if match is None:
            raise UsageError("--quiet takes START-END, e.g. 21:00-08:00")
        quiet: dict[str, Any] = {
            "start": match.group(1).zfill(5),
            "end": match.group(2).zfill(5),
        }
        if args.quiet_tz:
            quiet["time_zone"] = times.zone(args.quiet_tz, "--quiet-tz")
        payload["quiet_hours"] = quiet
    elif args.quiet_tz:
        raise UsageError("--quiet-tz goes with --quiet")
    return payload


def _schedule(args: argparse.Namespace) -> int:
    return _post(args, schedule_request(args), now=False)


def _numbers(args: argparse.Namespace) -> int:
    numbers = list(args.connection.sms_numbers)
    if args.json:
        print_json(numbers)
        return 0
    if not numbers:
        raise UsageError("no numbers known: start make run, or set SMS_NUMBERS")
    for number in numbers:
        print(number)
    return 0


def _cancel(args: argparse.Namespace) -> int:
    _show(args, api_client(args).json("DELETE", f"messages/{args.id}"))
    return 0


def _reschedule(args: argparse.Namespace) -> int:
    payload: dict[str, Any] = {}
    if args.tz and not args.at:
        raise UsageError("--tz goes with --at")
    if args.at:
        _put_time(payload, _when(args, "--at", args.at))
        if args.tz:
            payload["time_zone"] = times.zone(args.tz, "--tz")
    if args.body is not None:
        payload["body"] = _text(args.body)
    if not payload:
        raise UsageError("give --at and/or --body")
    _show(args, api_client(args).json("PATCH", f"messages/{args.id}", body=payload))
    return 0


def _show(args: argparse.Namespace, message: dict[str, Any]) -> None:
    if args.json:
        print_json(message)
        return
    print_table([[message.get(c) for c in _COLUMNS]], _COLUMNS)
    for line in schedule_lines(message.get("schedule")):
        print(line)
    if message.get("error"):
        print(f"error: {message['error']}")
