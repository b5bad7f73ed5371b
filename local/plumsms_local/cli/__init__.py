"""``smsctl``: the command line for the bundle's API and the local Plum simulator.

Each command group lives in its own module with a ``register(subparsers)`` function;
``main`` wires them together. Exit codes: 0 success, 1 the API refused the request,
2 bad usage, 3 the API or simulator could not be reached.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from plumsms_local.cli.api import ApiError, Unreachable
from plumsms_local.cli.common import add_connection_options

# Command modules; each defines register(subparsers).
COMMAND_MODULES = ("sim", "sending", "log")

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available command group."""
    parser = argparse.ArgumentParser(
        prog="smsctl", description="Send, schedule and inspect SMS through the plumsms bundle."
    )
    add_connection_options(parser)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"plumsms_local.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"plumsms_local.cli.{name}":
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
        return code
    except ApiError as exc:
        print(f"smsctl: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except Unreachable as exc:
        print(f"smsctl: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
