"""A tiny recording HTTP server: a stand-in result URL or Application URL for tests.

Not used by the simulator itself; tests (here and in the bundle) start one, point the
simulator at it and assert on what arrived.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from plumsms_local.quiet_http import QuietHTTPServer
from plumsms_local.simulator.engine import parse_reply_document
from plumsms_local.simulator.transport import HttpAnswer


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the server received."""

    method: str
    path: str
    content_type: str
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        """The form-encoded body, first value of each field."""
        parsed = parse_qs(self.body.decode("utf-8"), keep_blank_values=True)
        return {name: values[0] for name, values in parsed.items()}


Answer = tuple[int, str, bytes]
Responder = Callable[[RecordedRequest], Answer]


def empty_ok(_request: RecordedRequest) -> Answer:
    """Answer 200 with an empty body."""
    return 200, "text/plain", b""


class _Server(QuietHTTPServer):
    block_on_close = False

    def __init__(self, owner: RecordingServer) -> None:
        super().__init__((owner.host, 0), _Handler)
        self.owner = owner


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = RecordedRequest(
            method=self.command,
            path=self.path,
            content_type=self.headers.get("Content-Type", ""),
            body=self.rfile.read(length) if length else b"",
        )
        status, content_type, body = self.server.owner.record(request)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _handle

    def log_message(self, format: str, *args: Any) -> None:
        return  # tests read what they need from ``requests``


class RecordingServer:
    """Records every request and answers with ``responder`` (default: 200, empty)."""

    def __init__(self, responder: Responder = empty_ok, host: str = "127.0.0.1") -> None:
        self.host = host
        self.responder = responder
        self._requests: list[RecordedRequest] = []
        self._cond = threading.Condition()
        self._server: _Server | None = None

    def record(self, request: RecordedRequest) -> Answer:
        """Store ``request`` and compute its answer (called from the server threads)."""
        with self._cond:
            self._requests.append(request)
            self._cond.notify_all()
        return self.responder(request)

    def start(self) -> str:
        """Serve on a free port; returns the base URL."""
        self._server = _Server(self)
        self._server.serve_in_background("recording-server", poll_interval=0.05)
        return self.url()

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def url(self, path: str = "/") -> str:
        """An absolute URL on this server."""
        if self._server is None:
            raise RuntimeError("not started")
        return f"http://{self.host}:{self._server.server_address[1]}{path}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, in arrival order."""
        with self._cond:
            return list(self._requests)

    def wait_for(
        self,
        count: int,
        timeout: float = 5.0,
        predicate: Callable[[RecordedRequest], bool] | None = None,
    ) -> list[RecordedRequest]:
        """Block until ``count`` matching requests arrived; raises ``TimeoutError``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [r for r in self._requests if predicate is None or predicate(r)]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(found)} of {count} request(s) arrived")
                self._cond.wait(remaining)

    def __enter__(self) -> RecordingServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def queued_answer(form: dict[str, str], request_timestamp: float) -> bytes:
    """The JSON body of Plum's ``sms/queue`` success for ``form`` (for stand-ins of Plum)."""
    import json  # noqa: PLC0415 - only stand-ins need it
    import uuid  # noqa: PLC0415

    resource = {
        "sms_message_id": uuid.uuid4().hex,
        "to": form["to"],
        "from": form["from"],
        "body": form["body"],
        "request_timestamp": int(request_timestamp),
        "result_url": form.get("result_url", ""),
        "status": "queued",
    }
    envelope = {"status": "success", "error": "", "result": {"sms_messages": [resource]}}
    return json.dumps(envelope).encode()


@dataclass(frozen=True, slots=True)
class ReplyNode:
    """One ``<sms_message>`` of an answer the simulator accepted, attributes as written."""

    body: str
    to: str | None = None
    from_: str | None = None
    result_url: str | None = None


def accepted_reply(document: bytes | str) -> list[ReplyNode]:
    """The ``<sms_message>`` elements of an Application URL answer, checked as the
    simulator checks it (its own copy of Plum's schema, never the bundle's); raises
    ``ReplyRejected`` when Plum would refuse it."""
    body = document.encode("utf-8") if isinstance(document, str) else document
    nodes = parse_reply_document(HttpAnswer(200, "text/xml", body))
    return [
        ReplyNode(node.text or "", node.get("to"), node.get("from"), node.get("result_url"))
        for node in nodes
    ]
