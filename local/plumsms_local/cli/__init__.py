"""``smsctl``: the command line for the bundle's API and the local Plum simulator.

Each command group lives in its own module with a ``register(subparsers)`` function;
``main`` wires them together and is the one place errors are reported: one line
``smsctl: <what>`` on stderr (a JSON object with ``--json``), never a traceback. Exit
codes: 0 success, 1 the API refused the request, 2 bad usage, 3 the API or simulator
could not be reached. When the reader of stdout goes away early (``| head``), smsctl
stops quietly with the exit code of what it did.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any, NoReturn

import urllib3

from plumsms_local.cli.common import add_connection_options, resolve_connection, unreachable
from plumsms_local.cli.errors import (
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    ApiError,
    CliError,
    UsageError,
)

__all__ = ["EXIT_OK", "EXIT_REFUSED", "EXIT_UNREACHABLE", "EXIT_USAGE", "build_parser", "main"]

# Command modules; each defines register(subparsers).
COMMAND_MODULES = ("sim", "sending", "log")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose mistakes go through smsctl's one error path."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _version() -> str:
    try:
        return metadata.version("plumsms")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available command group."""
    parser = _Parser(
        prog="smsctl",
        description="Send, schedule and inspect SMS through the plumsms bundle.",
        epilog=(
            "smsctl finds the stack `make run` started through .local-data/stack.json;"
            " --url/SMSCTL_URL, --token/API_TOKEN and --sim-url/SMSCTL_SIM_URL override it."
            " `smsctl COMMAND --help` describes each command with examples."
        ),
    )
    parser.add_argument("--version", action="version", version=f"smsctl {_version()}")
    add_connection_options(parser, after_command=False)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"plumsms_local.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"plumsms_local.cli.{name}":
                raise
            continue
        module.register(subparsers)
    for command in subparsers.choices.values():
        add_connection_options(command, after_command=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in argv
    args: argparse.Namespace | None = None
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help and --version
            return int(exc.code or 0)
        as_json = bool(args.json)
        resolve_connection(args)
        code: int = args.handler(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        # The reader left (`| head`); what the command did is done: exit quietly.
        _silence_stdout()
        return EXIT_OK
    except urllib3.exceptions.HTTPError as exc:  # a connection lost mid-answer
        url = str(getattr(args, "url", "") or "")
        error = unreachable(args, "the bundle API", url, exc) if args else None
        return _report(error or exc, EXIT_UNREACHABLE, as_json, {"url": url})
    except CliError as exc:
        if isinstance(exc, ApiError) and args is not None:
            exc = exc.naming(getattr(args, "field_flags", {}))
        return _report(exc, exc.exit_code, as_json, exc.details())
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _report(f"{where}{exc.strerror or exc}", EXIT_REFUSED, as_json, {})
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if os.environ.get("SMSCTL_DEBUG"):
            raise
        message = f"unexpected error ({type(exc).__name__}: {exc}); SMSCTL_DEBUG=1 shows details"
        return _report(message, EXIT_REFUSED, as_json, {})


def _report(error: object, code: int, as_json: bool, details: dict[str, Any]) -> int:
    message = str(error)
    with contextlib.suppress(OSError):
        if as_json:
            body = {"message": message, "exit_code": code, **details}
            print(json.dumps({"error": body}, ensure_ascii=False), file=sys.stderr)
        else:
            print(f"smsctl: {message}", file=sys.stderr)
    return code


def _silence_stdout() -> None:
    # Python flushes stdout again at exit; point it at /dev/null so that flush is quiet.
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    raise SystemExit(main())
