"""Options and output helpers shared by every smsctl command."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from plumsms_local.cli.api import ApiClient

DEFAULT_API_URL = "http://127.0.0.1:3000/"
DEFAULT_SIMULATOR_URL = "http://127.0.0.1:8700/"


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """--url, --token, --sim-url and --json, with environment defaults."""
    parser.add_argument(
        "--url",
        default=os.environ.get("SMSCTL_URL", DEFAULT_API_URL),
        help="bundle API base URL (env SMSCTL_URL; default: the local stack)",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("API_TOKEN"),
        help="bearer token of the local stack (env API_TOKEN); deployed stacks use SigV4",
    )
    parser.add_argument(
        "--sigv4",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="sign requests with AWS SigV4 (default: on for execute-api URLs)",
    )
    parser.add_argument(
        "--sim-url",
        default=os.environ.get("SMSCTL_SIM_URL", DEFAULT_SIMULATOR_URL),
        help="Plum simulator base URL (env SMSCTL_SIM_URL)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def api_client(args: argparse.Namespace) -> ApiClient:
    """The API client for the options given."""
    return ApiClient(args.url, token=args.token, sigv4=args.sigv4)


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
