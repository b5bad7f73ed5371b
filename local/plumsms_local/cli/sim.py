"""smsctl simulate / inbox: text the bundle from a simulated phone and read what phones got."""

from __future__ import annotations

import argparse
import time
from typing import Any

import urllib3

from plumsms_local.cli.common import print_json, print_table, progress, unreachable
from plumsms_local.cli.errors import ApiError
from plumsms_local.simulator.client import SimulatorClient, SimulatorError

DEFAULT_PHONE = "+19998881234"


def register(subparsers: Any) -> None:
    """Add the simulator commands."""
    simulate = subparsers.add_parser(
        "simulate", help="text an SMS number from a simulated phone (local simulator)"
    )
    simulate.add_argument("body", help="the text to send")
    simulate.add_argument("--from", dest="phone", default=DEFAULT_PHONE, help="the phone texting")
    simulate.add_argument("--to", required=True, help="the account's SMS number")
    simulate.add_argument(
        "--wait",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="wait this long for replies to reach the phone (0: don't wait)",
    )
    simulate.set_defaults(handler=_simulate)

    inbox = subparsers.add_parser("inbox", help="what a simulated phone has received")
    inbox.add_argument("phone", nargs="?", default=DEFAULT_PHONE)
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
    result = _call(args, client.send_text, args.phone, args.to, args.body)
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
    if not result.get("forwarded"):
        print(f"not forwarded to the bundle ({result.get('keyword') or 'carrier keyword'})")
    elif not reply.get("accepted", True):
        print(f"the bundle's answer was rejected: {reply.get('error')}")
        return 1
    else:
        print(f"sent {result.get('sms_message_id')}; the bundle answered {expected} SMS")
    for message in received:
        print(f"  <- from {message.get('from')}: {message.get('body')}")
    return 0


def _inbox(args: argparse.Namespace) -> int:
    client = _client(args)
    shown = 0
    while True:
        messages = _call(args, client.inbox, args.phone)
        fresh = messages[shown:]
        shown = len(messages)
        if args.json:
            print_json(fresh)
        elif fresh or not args.follow:
            print_table(
                ([m.get("at"), m.get("from"), m.get("body")] for m in fresh),
                headers=["at", "from", "body"],
            )
        if not args.follow:
            return 0
        time.sleep(1.0)
