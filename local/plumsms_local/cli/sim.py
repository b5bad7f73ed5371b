"""smsctl simulate / inbox: text the bundle from a simulated phone and read what phones got."""

from __future__ import annotations

import argparse
import time
from typing import Any

import urllib3

from plumsms_local.cli.common import print_json, print_table, progress, unreachable
from plumsms_local.cli.errors import ApiError, UsageError
from plumsms_local.simulator.client import SimulatorClient, SimulatorError
from plumsms_local.simulator.engine import HELP, OPT_OUT

DEFAULT_PHONE = "+19998881234"
OTHER_PHONE = "+19998885678"


def register(subparsers: Any) -> None:
    """Add the simulator commands."""
    simulate = subparsers.add_parser(
        "simulate",
        help="text an SMS number from a simulated phone (local simulator)",
        description="A simulated phone texts the account, as a customer would: the"
        " simulator POSTs it to the bundle's Application URL and delivers the answer to"
        " the phone. When nothing comes back, smsctl says why.",
        epilog="""examples:
  smsctl simulate HOURS
  smsctl simulate --from +19998885678 STOP     # opt that phone out
  smsctl simulate --from +19998885678 START    # and back in""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    simulate.add_argument("body", help="the text to send")
    simulate.add_argument(
        "--from",
        dest="phone",
        default=DEFAULT_PHONE,
        help=f"the simulated phone texting (default {DEFAULT_PHONE})",
    )
    simulate.add_argument(
        "--to", help="the account's SMS number texted (default: the account's only number)"
    )
    simulate.add_argument(
        "--wait",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="wait this long for replies to reach the phone (0: don't wait)",
    )
    simulate.set_defaults(handler=_simulate)

    inbox = subparsers.add_parser("inbox", help="what a simulated phone has received")
    inbox.add_argument(
        "phone", nargs="?", default=DEFAULT_PHONE, help=f"the phone (default {DEFAULT_PHONE})"
    )
    inbox.add_argument("--follow", "-f", action="store_true", help="keep printing new messages")
    inbox.set_defaults(handler=_inbox)


def _client(args: argparse.Namespace) -> SimulatorClient:
    return SimulatorClient(args.sim_url)


def _call(args: argparse.Namespace, function: Any, *arguments: Any) -> Any:
    try:
        return function(*arguments)
    except SimulatorError as exc:
        raise ApiError(exc.status, exc.message) from exc
    except urllib3.exceptions.HTTPError as exc:
        raise unreachable(args, "the Plum simulator", args.sim_url, exc) from exc


def _simulate(args: argparse.Namespace) -> int:
    client = _client(args)
    before = len(_call(args, client.inbox, args.phone))
    to = args.to or _only_number(args)
    result = _call(args, client.send_text, args.phone, to, args.body)
    reply = result.get("reply") or {}
    expected = len(reply.get("sms_message_ids") or [])
    received: list[dict[str, Any]] = []
    if expected and args.wait > 0:
        progress(f"waiting up to {args.wait:g}s for {expected} reply(ies)...")
        deadline = time.monotonic() + args.wait
        while time.monotonic() < deadline:
            received = _call(args, client.inbox, args.phone)[before:]
            if len(received) >= expected:
                break
            time.sleep(0.2)
    if args.json:
        print_json({"result": result, "received": received})
        return 0
    phone, number = result.get("phone") or args.phone, result.get("to") or to
    if result.get("forwarded") and not reply.get("accepted", True):
        print(f"the bundle's answer was rejected: {reply.get('error')}")
        return 1
    if result.get("forwarded"):
        print(f"{phone} texted {number}; the bundle answered {expected} SMS")
    if not expected:
        for line in _why_nothing(args, client, result):
            print(line)
    for message in received:
        print(f"  <- {phone} got from {message.get('from')}: {message.get('body')}")
    return 0


def _only_number(args: argparse.Namespace) -> str:
    numbers = args.connection.sms_numbers
    if len(numbers) == 1:
        return str(numbers[0])
    known = f": {', '.join(numbers)}" if numbers else " (smsctl numbers lists them)"
    raise UsageError(f"--to is required: which of the account's numbers{known}")


def _why_nothing(
    args: argparse.Namespace, client: SimulatorClient, result: dict[str, Any]
) -> list[str]:
    """Why no SMS came back, and what to try instead."""
    phone, number, keyword = result.get("phone"), result.get("to"), result.get("keyword")
    try_this = f"smsctl simulate --from {phone} --to {number}"
    if keyword == HELP:
        return [
            f"{phone} texted {number}: HELP is answered by the carrier itself (as real carriers"
            " do), so Plum and the bundle never see it (the carrier's text is in the phone's"
            " inbox).",
            f"  to see the bundle answer, text a word its rules know: {try_this} HOURS",
        ]
    if not result.get("forwarded"):
        return [
            f"{phone} texted {number}, but the simulator has no Application URL for {number}"
            " (make run sets it; see docs/simulator.md)."
        ]
    if keyword == OPT_OUT:
        return [
            f"  {phone} is now opted out: the bundle suppresses pending sends to it and refuses"
            " new ones.",
            f"  to undo: {try_this} START",
        ]
    if phone in _call(args, client.unsubscribed):
        other = OTHER_PHONE if phone == DEFAULT_PHONE else DEFAULT_PHONE
        return [
            f"  why: {phone} opted out earlier (it texted STOP), so the bundle answers it nothing.",
            f"  to undo: {try_this} START   (or text from another phone: --from {other})",
        ]
    return [
        "  why: no rule matched and the rules have no default_reply"
        " (RULES_FILE; see docs/inbound.md)."
    ]


def _inbox(args: argparse.Namespace) -> int:
    client = _client(args)
    shown = 0
    while True:
        messages = _call(args, client.inbox, args.phone)
        fresh = messages[shown:]
        if args.json:
            print_json(fresh)
        elif not args.follow or fresh or shown == 0:
            if shown == 0:
                count = f"{len(messages)} message(s)" if messages else "empty"
                print(f"inbox of {args.phone} (simulated phone): {count}")
            if fresh:
                print_table(
                    ([m.get("at"), m.get("from"), m.get("body")] for m in fresh),
                    headers=["at", "from", "body"],
                )
        shown = len(messages)
        if not args.follow:
            return 0
        time.sleep(1.0)
