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
import os
import re
import sys
import uuid
from typing import Any

from plumsms_local.cli.common import api_client, print_json, print_table

IDEMPOTENCY_HEADER = "Idempotency-Key"
_QUIET = re.compile(r"^(\d{1,2}:\d{2})-(\d{1,2}:\d{2})$")
_COLUMNS = ("id", "status", "send_at", "to", "from", "segments", "encoding")


def _default_from() -> str | None:
    numbers = [n.strip() for n in os.environ.get("SMS_NUMBERS", "").split(",") if n.strip()]
    return os.environ.get("SMSCTL_FROM") or (numbers[0] if numbers else None)


def _add_message_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--to", required=True, help="recipient phone number (E.164 or national)")
    parser.add_argument(
        "--from",
        dest="from_",
        metavar="NUMBER",
        default=_default_from(),
        help="one of the account's SMS numbers (default: $SMSCTL_FROM, else first of $SMS_NUMBERS)",
    )
    parser.add_argument("--idempotency-key", help="make retries safe (default: a fresh key)")
    parser.add_argument("body", help="the message text ('-' reads it from stdin)")


def register(subparsers: Any) -> None:
    """Add the sending commands."""
    send = subparsers.add_parser("send", help="send an SMS now")
    _add_message_options(send)
    send.set_defaults(handler=_send)

    schedule = subparsers.add_parser(
        "schedule", help="send an SMS later, optionally repeating and outside quiet hours"
    )
    _add_message_options(schedule)
    schedule.add_argument("--at", help="when: ISO 8601, e.g. 2025-07-01T09:00 (with --tz) or ...Z")
    schedule.add_argument("--tz", help="IANA time zone of --at and of the rules, e.g. Europe/Paris")
    repeat = schedule.add_mutually_exclusive_group()
    repeat.add_argument("--every", choices=["daily", "weekly", "monthly"], help="repeat")
    repeat.add_argument("--cron", help="repeat on a cron rule, e.g. '0 9 * * MON-FRI'")
    schedule.add_argument("--interval", type=int, help="every N days/weeks/months (default 1)")
    schedule.add_argument("--on", help="weekly on these days, e.g. MO,TH")
    schedule.add_argument("--count", type=int, help="stop after this many sends")
    schedule.add_argument("--until", help="stop after this date or time (ISO 8601)")
    schedule.add_argument("--quiet", help="quiet hours in the recipient's zone, e.g. 21:00-08:00")
    schedule.add_argument("--quiet-tz", help="time zone of the quiet hours (default: --tz)")
    schedule.set_defaults(handler=_schedule)

    cancel = subparsers.add_parser("cancel", help="cancel a pending message")
    cancel.add_argument("id", help="the message id")
    cancel.set_defaults(handler=_cancel)

    reschedule = subparsers.add_parser(
        "reschedule", help="move a pending message or change its text"
    )
    reschedule.add_argument("id", help="the message id")
    reschedule.add_argument("--at", help="the new time (ISO 8601)")
    reschedule.add_argument("--tz", help="IANA time zone of --at")
    reschedule.add_argument("--body", help="the new text ('-' reads it from stdin)")
    reschedule.set_defaults(handler=_reschedule)


def _text(value: str) -> str:
    return sys.stdin.read().rstrip("\n") if value == "-" else value


def _usage(message: str) -> int:
    print(f"smsctl: {message}", file=sys.stderr)
    return 2


def _base_request(args: argparse.Namespace) -> dict[str, Any]:
    return {"to": args.to, "from": args.from_, "body": _text(args.body)}


def _post(args: argparse.Namespace, payload: dict[str, Any]) -> int:
    key = args.idempotency_key or str(uuid.uuid4())
    answer = api_client(args).json(
        "POST", "messages", body=payload, headers={IDEMPOTENCY_HEADER: key}
    )
    _show(args, answer)
    return 0


def _send(args: argparse.Namespace) -> int:
    if not args.from_:
        return _usage("--from is required (or set SMSCTL_FROM / SMS_NUMBERS)")
    return _post(args, _base_request(args))


def schedule_request(args: argparse.Namespace) -> dict[str, Any]:
    """The POST /messages body for ``smsctl schedule``; ``ValueError`` on bad usage."""
    payload = _base_request(args)
    repeating = args.every or args.cron
    if not args.at and not repeating:
        raise ValueError("--at is required (or --every/--cron to start now); use send for now")
    if args.at:
        payload["send_at"] = args.at
    if args.tz:
        payload["time_zone"] = args.tz
    if repeating:
        if args.count is None and args.until is None:
            raise ValueError("a repeating message needs --count or --until")
        rule: dict[str, Any] = {"cron": args.cron} if args.cron else {"frequency": args.every}
        if args.interval is not None:
            rule["interval"] = args.interval
        if args.on:
            rule["by_weekday"] = [d.strip().upper()[:2] for d in args.on.split(",") if d.strip()]
        if args.count is not None:
            rule["count"] = args.count
        if args.until:
            rule["until"] = args.until
        payload["recurrence"] = rule
    elif args.interval or args.on or args.count or args.until:
        raise ValueError("--interval, --on, --count and --until go with --every or --cron")
    if args.quiet:
        match = _QUIET.match(args.quiet.replace(" ", ""))
        if match is None:
            raise ValueError("--quiet takes START-END, e.g. 21:00-08:00")
        quiet: dict[str, Any] = {
            "start": match.group(1).zfill(5),
            "end": match.group(2).zfill(5),
        }
        if args.quiet_tz:
            quiet["time_zone"] = args.quiet_tz
        payload["quiet_hours"] = quiet
    elif args.quiet_tz:
        raise ValueError("--quiet-tz goes with --quiet")
    return payload


def _schedule(args: argparse.Namespace) -> int:
    if not args.from_:
        return _usage("--from is required (or set SMSCTL_FROM / SMS_NUMBERS)")
    try:
        payload = schedule_request(args)
    except ValueError as exc:
        return _usage(str(exc))
    return _post(args, payload)


def _cancel(args: argparse.Namespace) -> int:
    _show(args, api_client(args).json("DELETE", f"messages/{args.id}"))
    return 0


def _reschedule(args: argparse.Namespace) -> int:
    payload: dict[str, Any] = {}
    if args.at:
        payload["send_at"] = args.at
    if args.tz:
        if not args.at:
            return _usage("--tz goes with --at")
        payload["time_zone"] = args.tz
    if args.body is not None:
        payload["body"] = _text(args.body)
    if not payload:
        return _usage("give --at and/or --body")
    _show(args, api_client(args).json("PATCH", f"messages/{args.id}", body=payload))
    return 0


def _show(args: argparse.Namespace, message: dict[str, Any]) -> None:
    if args.json:
        print_json(message)
        return
    print_table([[message.get(c) for c in _COLUMNS]], _COLUMNS)
    schedule = message.get("schedule") or {}
    if schedule.get("recurrence"):
        rule = schedule["recurrence"]
        what = rule.get("cron") or rule.get("frequency")
        end = f"{rule['count']} times" if rule.get("count") else f"until {rule.get('until')}"
        print(
            f"repeats: {what} in {rule.get('time_zone')}, {end} (this is #{schedule['occurrence']})"
        )
    if schedule.get("quiet_hours"):
        quiet = schedule["quiet_hours"]
        print(f"quiet hours: {quiet['start']}-{quiet['end']} {quiet.get('time_zone')}")
    if message.get("error"):
        print(f"error: {message['error']}")
