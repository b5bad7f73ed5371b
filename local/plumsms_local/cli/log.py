"""smsctl logs / show / tail / export / ui: the message log, from the same API as the page.

``logs`` prints a page (or every page) of a filtered search; ``show`` one message with its
history; ``tail`` follows new messages; ``export`` follows the export's cursor header to
write a whole filtered set as CSV or JSON Lines; ``ui`` opens the web page, signed in.

On AWS the API is IAM-authorised, which a browser cannot do by itself: ``ui`` then runs
a proxy on 127.0.0.1 that signs every call with SigV4 (the caller's AWS credentials)
and admits only the page it opened, which carries a random session token.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import json
import os
import re
import secrets
import sys
import tempfile
import time
import webbrowser
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import urllib3

from plumsms.domain.status import is_final
from plumsms_local.cli import times
from plumsms_local.cli.api import ApiClient, _sign
from plumsms_local.cli.common import (
    api_client,
    print_json,
    print_table,
    progress,
    repeats,
    schedule_lines,
)
from plumsms_local.cli.errors import ApiError, CliError, UsageError
from plumsms_local.httpio import BAD_LENGTH_RULE, content_length
from plumsms_local.quiet_http import QuietHTTPServer

EXPORT_CURSOR_HEADER = "X-Next-Cursor"
EXPORT_ROWS_HEADER = "X-Export-Rows"
_BODY_PREVIEW = 48
_TAIL_OVERLAP = timedelta(minutes=2)
"""How far back each tail poll looks again, for messages stored a little late."""
wait_between_polls: Callable[[float], None] = time.sleep


def register(subparsers: Any) -> None:
    """Add the log commands."""
    logs = subparsers.add_parser(
        "logs",
        help="search the message log",
        description="A page of the message log, newest first, filtered by number, type,"
        " status and time.",
        epilog="""examples:
  smsctl logs --number +19998881234 --status failed
  smsctl logs --since 2h --type inbound --all
  smsctl logs --since yesterday --until today
  smsctl --json logs --limit 1000 --order asc""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_filters(logs)
    logs.add_argument("--limit", type=int, default=50, help="page size, up to 1000 (default 50)")
    logs.add_argument("--cursor", help="continue after a previous page (its next cursor)")
    logs.add_argument("--all", action="store_true", help="follow every page to the end")
    logs.set_defaults(handler=_logs)

    show = subparsers.add_parser("show", help="one message with its body and status history")
    show.add_argument("id", help="the message id")
    show.set_defaults(handler=_show)

    tail = subparsers.add_parser(
        "tail",
        help="follow the log: one line per status change, with the message id",
        description=(
            "Print the latest messages, then one line per status change as it happens"
            " (scheduled -> sending -> queued -> sent -> delivered), each with the id"
            " `smsctl show` takes. With --json: one JSON object per change."
        ),
    )
    _add_filters(tail, with_time=False, with_order=False)
    tail.add_argument("--lines", "-n", type=int, default=10, help="recent messages to show first")
    tail.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
    tail.add_argument("--polls", type=int, default=0, help="stop after this many polls (0: never)")
    tail.set_defaults(handler=_tail)

    opt_outs = subparsers.add_parser(
        "opt-outs",
        help="numbers that opted out (texted STOP), latest first",
        description="Numbers that texted an opt-out keyword and have not texted START since."
        " Sends to them are refused; a START from the phone undoes it.",
    )
    opt_outs.add_argument("--limit", type=int, default=100, help="up to 1000 (default 100)")
    opt_outs.set_defaults(handler=_opt_outs)

    scheduled = subparsers.add_parser(
        "scheduled",
        help="pending sends in the order they will go, with their send times",
        description="Messages still waiting to be sent, soonest first (from every page),"
        " with their send time and, for a series, its rule. `smsctl cancel ID` cancels one.",
    )
    scheduled.add_argument("--number", help="only those to this number")
    scheduled.add_argument(
        "--limit", type=int, default=1000, help="read at most this many (default 1000)"
    )
    scheduled.set_defaults(handler=_scheduled)

    export = subparsers.add_parser(
        "export",
        help="export the filtered log as CSV or JSON Lines",
        description="Every message matching the filters, as CSV or JSON Lines, following"
        " the API's cursors. A file is written beside the target and renamed at the end.",
        epilog="""examples:
  smsctl export --status delivered --since 7d -o week.csv
  smsctl export --format jsonl > all.jsonl""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_filters(export)
    export.add_argument("--format", choices=["csv", "jsonl"], help="default: from -o, else csv")
    export.add_argument("--output", "-o", default="-", help="file to write (default: stdout)")
    export.add_argument(
        "--page-rows", type=int, default=10_000, help="rows per API answer (up to 50000)"
    )
    export.set_defaults(handler=_export)

    ui = subparsers.add_parser("ui", help="open the web page, signed in (SigV4 proxy on AWS)")
    ui.add_argument("--port", type=int, default=0, help="local proxy port (default: any free)")
    ui.add_argument("--no-browser", action="store_true", help="print the address, do not open it")
    ui.set_defaults(handler=_ui)


def _add_filters(
    parser: argparse.ArgumentParser, with_time: bool = True, with_order: bool = True
) -> None:
    parser.add_argument("--number", help="either side of the message (any phone format)")
    parser.add_argument("--type", choices=["inbound", "outbound", "reply"])
    parser.add_argument("--status", help="e.g. delivered, failed, scheduled (any case)")
    if with_time:
        parser.add_argument(
            "--start",
            "--since",
            dest="start",
            metavar="WHEN",
            help="created at or after: ISO time (local if no zone), an age (30m, 2h, 7d), today",
        )
        parser.add_argument(
            "--end", "--until", dest="end", metavar="WHEN", help="created before; as --since"
        )
    if with_order:
        parser.add_argument("--order", choices=["asc", "desc"], help="default: newest first")


def filter_query(args: argparse.Namespace) -> dict[str, Any]:
    """The API query parameters the command line's filters give."""
    query: dict[str, Any] = {
        "number": args.number,
        "type": args.type,
        "status": args.status.lower() if args.status else None,
        "order": getattr(args, "order", None),
    }
    for name, flag in (("start", "--since/--start"), ("end", "--until/--end")):
        raw = getattr(args, name, None)
        if raw:
            query[name] = times.parse(raw, flag, bare_duration_is_past=True).utc()
    return {k: v for k, v in query.items() if v is not None}


def _short(text: str, width: int = _BODY_PREVIEW) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _rows(items: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [m["created_at"], m["type"], m["status"], m["from"], m["to"], m["id"], _short(m["body"])]
        for m in items
    ]


_COLUMNS = ["timestamp", "type", "status", "from", "to", "id", "body"]


def iter_pages(client: ApiClient, query: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every page of ``GET /messages`` for ``query``, following ``next_cursor``."""
    cursor = query.get("cursor")
    while True:
        page: dict[str, Any] = client.json("GET", "messages", query={**query, "cursor": cursor})
        yield page
        cursor = page.get("next_cursor")
        if not cursor:
            return


def _logs(args: argparse.Namespace) -> int:
    client = api_client(args)
    query = {**filter_query(args), "limit": args.limit, "cursor": args.cursor}
    if args.all:
        items = [m for page in iter_pages(client, query) for m in page["items"]]
        if args.json:
            print_json({"items": items, "next_cursor": None})
        else:
            print_table(_rows(items), _COLUMNS)
        return 0
    page = client.json("GET", "messages", query=query)
    if args.json:
        print_json(page)
        return 0
    print_table(_rows(page["items"]), _COLUMNS)
    if page.get("next_cursor"):
        progress(f"more: add --cursor {page['next_cursor']} (or --all)")
    return 0


def _show(args: argparse.Namespace) -> int:
    message = api_client(args).json("GET", f"messages/{args.id}")
    if args.json:
        print_json(message)
        return 0
    fields = [
        "id", "type", "status", "from", "to", "created_at", "updated_at", "send_at",
        "sms_message_id", "result_url", "segments", "encoding", "error", "unanswered",
    ]  # fmt: skip
    width = max(len(f) for f in fields)
    for name in fields:
        value = message.get(name)
        if value is not None:
            print(f"{name.ljust(width)}  {value}")
    for line in schedule_lines(message.get("schedule")):
        name, value = line.split(": ", 1)
        print(f"{name.ljust(width)}  {value}")
    print("\nbody:")
    for line in (message.get("body") or "").splitlines() or [""]:
        print(f"  {line}")
    print("\nhistory:")
    history = message.get("history") or []
    print_table([[h["at"], h["status"], h["source"]] for h in history], ["at", "status", "source"])
    return 0


_WATCHED_MAX = 200
"""Messages tail re-reads each poll until their status is final (the newest kept)."""


class _TailState:
    """What tail has printed: how many history entries of each message it has shown."""

    def __init__(self) -> None:
        self.shown: dict[str, int] = {}
        self.watched: dict[str, str] = {}  # id -> created_at, while the status may change

    def watch(self, message: dict[str, Any]) -> None:
        if is_final(message["status"]):
            self.watched.pop(message["id"], None)
            return
        self.watched[message["id"]] = message["created_at"]
        if len(self.watched) > _WATCHED_MAX:
            oldest = min(self.watched, key=self.watched.__getitem__)
            del self.watched[oldest]

    def changes(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        """History entries of ``message`` not printed yet (one per status change)."""
        history = message.get("history") or [
            {"status": message["status"], "at": message["updated_at"], "source": None}
        ]
        done = self.shown.get(message["id"], 0)
        self.shown[message["id"]] = len(history)
        self.watch(message)
        return list(history[done:])


def _tail(args: argparse.Namespace) -> int:
    client = api_client(args)
    base = filter_query(args)
    tailing = _TailState()
    recent = client.json("GET", "messages", query={**base, "limit": max(1, min(args.lines, 1000))})
    items = list(reversed(recent["items"]))[-args.lines :] if args.lines > 0 else []
    for message in recent["items"]:
        tailing.shown[message["id"]] = len(message.get("history") or [])
        tailing.watch(message)
    if "status" not in base:
        # Sends scheduled earlier change status later: follow those too.
        pending = client.json(
            "GET", "messages", query={**base, "status": "scheduled", "limit": 100}
        )
        for message in pending["items"]:
            tailing.shown.setdefault(message["id"], len(message.get("history") or []))
            tailing.watch(message)
    watermark = max((m["created_at"] for m in recent["items"]), default=_now())
    latest = [(m, (m.get("history") or [{}])[-1]) for m in items]
    for message, change in sorted(latest, key=lambda pair: str(pair[1].get("at") or "")):
        _print_change(message, change, args.json)  # the recent ones: their latest status
    polls = 0
    while args.polls <= 0 or polls < args.polls:
        wait_between_polls(args.interval)
        polls += 1
        since = datetime.fromisoformat(watermark) - _TAIL_OVERLAP
        query = {**base, "start": since.isoformat(), "order": "asc", "limit": 1000}
        fresh = [m for page in iter_pages(client, query) for m in page["items"]]
        fresh_ids = {m["id"] for m in fresh}
        for message_id in [i for i in tailing.watched if i not in fresh_ids]:
            try:
                fresh.append(client.json("GET", f"messages/{message_id}"))
            except ApiError as exc:
                if exc.status != 404:
                    raise
                tailing.watched.pop(message_id, None)
        fresh.sort(key=lambda m: str(m["updated_at"]))
        for message in fresh:
            watermark = max(watermark, message["created_at"])
            for change in tailing.changes(message):
                _print_change(message, change, args.json)
    return 0


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _print_change(message: dict[str, Any], change: dict[str, Any], as_json: bool) -> None:
    """One line per status change, with the id ``show`` takes."""
    status = change.get("status") or message["status"]
    at = change.get("at") or message["updated_at"]
    if as_json:
        event = {
            "at": at,
            "id": message["id"],
            "status": status,
            "source": change.get("source"),
            "type": message["type"],
            "from": message["from"],
            "to": message["to"],
        }
        print(json.dumps(event, ensure_ascii=False), flush=True)
        return
    line = f"{at}  {message['id']}  {status:<11} {message['type']:<8} {message['from']} -> "
    print(f"{line}{message['to']}  {_short(message['body'], 40)}", flush=True)


def _opt_outs(args: argparse.Namespace) -> int:
    page = api_client(args).json("GET", "opt-outs", query={"limit": args.limit})
    if args.json:
        print_json(page)
        return 0
    print_table(
        ([o["number"], o["keyword"], o["at"]] for o in page["items"]),
        ["number", "keyword", "at"],
    )
    return 0


def _scheduled(args: argparse.Namespace) -> int:
    client = api_client(args)
    query = {"status": "scheduled", "number": args.number, "order": "asc", "limit": 1000}
    pending: list[dict[str, Any]] = []
    for page in iter_pages(client, query):
        pending.extend(page["items"])
        if len(pending) >= args.limit:
            break
    pending = sorted(pending[: args.limit], key=lambda m: str(m.get("send_at") or ""))
    if args.json:
        print_json({"items": pending})
        return 0
    print_table(
        ([m.get("send_at"), m["id"], m["to"], m["from"], repeats(m.get("schedule")),
          _short(m["body"], 40)]
         for m in pending),
        ["send at", "id", "to", "from", "repeats", "body"],
    )  # fmt: skip
    return 0


def _export(args: argparse.Namespace) -> int:
    client = api_client(args)
    fmt = args.format or ("jsonl" if args.output.endswith((".jsonl", ".ndjson")) else "csv")
    query = {**filter_query(args), "format": fmt, "limit": args.page_rows}
    if args.output == "-":
        rows = export_to(client, query, sys.stdout.buffer)
        sys.stdout.flush()
    else:
        target = Path(args.output)
        if not target.parent.is_dir():
            raise UsageError(f"--output: the folder {target.parent} does not exist")
        # Written beside the target and renamed at the end: no half file on failure.
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
        try:
            with os.fdopen(fd, "wb") as handle:
                rows = export_to(client, query, handle)
            Path(temp).replace(target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    progress(f"exported {rows} messages" + ("" if args.output == "-" else f" to {args.output}"))
    return 0


def export_to(
    client: ApiClient,
    query: dict[str, Any],
    out: IO[bytes],
    report: Callable[[str], None] = progress,
) -> int:
    """Write every export answer for ``query`` to ``out``; returns the number of rows."""
    cursor: str | None = None
    rows = 0
    answers = 0
    while True:
        response = client.request(
            "GET", "messages/export", query={**query, "cursor": cursor}, headers={"accept": "*/*"}
        )
        try:
            for chunk in response.stream(64 * 1024):
                out.write(chunk)
        finally:
            response.release_conn()
        answers += 1
        rows += int(response.headers.get(EXPORT_ROWS_HEADER) or 0)
        cursor = response.headers.get(EXPORT_CURSOR_HEADER)
        if not cursor:
            return rows
        report(f"exported {rows} messages ({answers} answers), continuing...")


# -- ui ----------------------------------------------------------------------------------

_PUBLIC_PAGES = re.compile(r"^(ui|ui/[\w.-]+|api-docs|openapi\.json)$")
_FORWARDED_REQUEST_HEADERS = ("accept", "content-type", "if-none-match")
_RETURNED_HEADERS = (
    "content-type", "cache-control", "etag", "location", "content-disposition",
    "content-security-policy", "x-content-type-options", "referrer-policy", "x-frame-options",
    EXPORT_CURSOR_HEADER.lower(), EXPORT_ROWS_HEADER.lower(),
)  # fmt: skip
_MAX_BODY = 1024 * 1024

Signer = Callable[[str, str, bytes | None, dict[str, str]], dict[str, str]]


class SigningProxy:
    """A localhost proxy to a deployed API that signs each request with SigV4.

    Only requests carrying ``Authorization: Bearer <session token>`` are signed and
    forwarded (the page sends it, like the local stack's API token), except the page
    itself, its assets and the API description, which hold no data. The Host header
    must name the proxy, so a web page elsewhere cannot reach it by DNS rebinding.
    """

    def __init__(
        self,
        upstream: str,
        *,
        session_token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        sign: Signer = _sign,
        pool: urllib3.PoolManager | None = None,
    ) -> None:
        parts = urlsplit(upstream if upstream.endswith("/") else upstream + "/")
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.prefix = parts.path  # e.g. "/v1/": the page's paths mirror the upstream's
        self.session_token = session_token or secrets.token_urlsafe(24)
        self.sign = sign
        self.pool = pool or urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5.0, read=35.0), retries=False
        )
        self.server = QuietHTTPServer((host, port), self._handler_class())
        self.server.daemon_threads = True

    @property
    def address(self) -> str:
        """``host:port`` the proxy listens on."""
        host, port = self.server.server_address[:2]
        return f"{host!s}:{port}"

    @property
    def page_url(self) -> str:
        """The page's address on the proxy, signed in by its fragment."""
        return f"http://{self.address}{self.prefix}ui#token={self.session_token}"

    def serve_in_background(self) -> SigningProxy:
        """Serve from a daemon thread (tests, embedding); ``close()`` stops it."""
        self.server.serve_in_background("ui-proxy")
        return self

    def close(self) -> None:
        """Stop serving."""
        self.server.stop()

    def forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Check, sign and forward one request; the upstream's answer (selected headers)."""
        host = headers.get("host", "")
        port = self.address.rsplit(":", 1)[1]
        if host not in {self.address, f"localhost:{port}"}:
            return _plain(403, "wrong Host header")
        if not path.startswith(self.prefix):
            return _plain(404, f"the API lives under {self.prefix}")
        relative = urlsplit(path).path[len(self.prefix) :]
        public = method in {"GET", "HEAD"} and _PUBLIC_PAGES.fullmatch(relative.rstrip("/"))
        presented = headers.get("authorization", "")
        expected = f"Bearer {self.session_token}"
        if not public and not hmac.compare_digest(presented.encode(), expected.encode()):
            return _plain(
                401,
                "missing or invalid session token: open the page with `smsctl ui`, whose link"
                " carries it",
            )
        url = self.origin + path
        outgoing = {k: headers[k] for k in _FORWARDED_REQUEST_HEADERS if k in headers}
        signed = self.sign(method, url, body or None, outgoing)
        try:
            response = self.pool.request(
                method, url, body=body or None, headers=signed, redirect=False
            )
        except urllib3.exceptions.HTTPError:
            return _plain(502, "the deployed API cannot be reached")
        returned = {k: v for k, v in response.headers.items() if k.lower() in _RETURNED_HEADERS}
        return response.status, returned, response.data

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "smsctl-ui"

            def _serve(self) -> None:
                length = content_length(self.headers.get("content-length"))
                if length is None or length > _MAX_BODY:
                    self.close_connection = True  # the body is left unread
                    if length is None:
                        self._send(*_plain(400, BAD_LENGTH_RULE))
                    else:
                        self._send(*_plain(413, "request too large"))
                    return
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                self._send(*proxy.forward(self.command, self.path, headers, body))

            def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_DELETE = do_HEAD = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler


def _plain(status: int, message: str) -> tuple[int, dict[str, str], bytes]:
    return status, {"content-type": "application/json"}, json.dumps({"message": message}).encode()


def _ui(args: argparse.Namespace) -> int:
    client = api_client(args)
    if not client.sigv4:
        # The API token never goes in the URL (a browser's command line, ps, history):
        # the page gets a one-time code, valid a minute, that it trades for a session.
        fragment = ""
        if args.token:
            code = client.json("POST", "local/ui-code")["code"]
            fragment = f"#code={code}"
        _open(f"{client.base_url}ui{fragment}", args.no_browser)
        return 0
    try:
        proxy = SigningProxy(client.base_url, port=args.port)
    except OSError as exc:
        raise CliError(f"cannot listen on 127.0.0.1:{args.port} ({exc.strerror})") from exc
    progress(f"signing proxy for {client.base_url} on http://{proxy.address}/ (Ctrl-C stops it)")
    _open(proxy.page_url, args.no_browser)
    with contextlib.suppress(KeyboardInterrupt):
        proxy.server.serve_forever()
    proxy.server.server_close()
    return 0


def _open(url: str, print_only: bool) -> None:
    print(url, flush=True)
    if not print_only:
        webbrowser.open(url)
