"""The simulator's HTTP face: Plum's ``/ws/`` REST API and the ``/sim/`` admin routes.

Stdlib ``ThreadingHTTPServer`` on a background thread: full control of the socket lets
the simulator hang and then close a connection without answering (a timeout fault).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar, Final
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import ValidationError

from plumsms_local.quiet_http import QuietHTTPServer
from plumsms_local.simulator import envelope, inferred, queries
from plumsms_local.simulator.config import SimulatorConfig
from plumsms_local.simulator.engine import PlumFailure, SimRequestError, Simulator
from plumsms_local.simulator.inferred import FailureKind
from plumsms_local.simulator.state import MessageQuery
from plumsms_local.simulator.transport import FORM_CONTENT_TYPE, Poster

logger = logging.getLogger(__name__)

MAX_BODY_BYTES: Final = 1 << 20
_WS_SERVICE = re.compile(r"^/ws/(sms/(queue|status|messages|conversation)\.(json|xml))$")
_SERVICE_METHOD: Final = {
    "queue": "POST",
    "status": "GET",
    "messages": "GET",
    "conversation": "GET",
}
_REALM: Final = 'Basic realm="Plum DEV simulator"'


class _Server(QuietHTTPServer):
    daemon_threads = True
    block_on_close = False  # a hanging (timeout fault) request must not block stop()

    def __init__(self, address: tuple[str, int], simulator: Simulator) -> None:
        super().__init__(address, _Handler)
        self.simulator = simulator
        self.stopping = threading.Event()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "PlumSimulator/1"
    _sim_routes: ClassVar[list[tuple[str, re.Pattern[str], str]]] = [
        ("GET", re.compile(r"^/sim/health$"), "_sim_health"),
        ("POST", re.compile(r"^/sim/reset$"), "_sim_reset"),
        ("GET", re.compile(r"^/sim/faults$"), "_sim_get_faults"),
        ("PUT", re.compile(r"^/sim/faults$"), "_sim_put_faults"),
        ("GET", re.compile(r"^/sim/messages$"), "_sim_messages"),
        ("GET", re.compile(r"^/sim/callbacks$"), "_sim_callbacks"),
        ("GET", re.compile(r"^/sim/unsubscribed$"), "_sim_unsubscribed"),
        ("GET", re.compile(r"^/sim/numbers$"), "_sim_numbers"),
        ("PUT", re.compile(r"^/sim/numbers/([^/]+)$"), "_sim_put_number"),
        ("POST", re.compile(r"^/sim/phones/([^/]+)/send$"), "_sim_phone_send"),
        ("GET", re.compile(r"^/sim/phones/([^/]+)/inbox$"), "_sim_inbox"),
    ]

    # plumbing

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines carry phone numbers in query strings: DEBUG only.
        logger.debug("%s %s", self.address_string(), format % args)

    @property
    def sim(self) -> Simulator:
        return self.server.simulator

    def _dispatch(self) -> None:
        path = urlsplit(self.path).path
        try:
            if path.startswith("/ws/"):
                self._serve_ws(path)
            elif path.startswith("/sim/"):
                self._serve_sim(path)
            else:
                self._send_json(404, {"error": "not found"})
        except Exception:
            logger.exception("simulator request failed")
            self._send_json(500, {"error": "internal simulator error"})

    def _read_body(self) -> bytes | None:
        """The request body, or None when it is too large to accept."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY_BYTES:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, content_type: str, body: bytes, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, payload: Any) -> None:
        self._send(status, inferred.JSON_CONTENT_TYPE, json.dumps(payload).encode())

    # /ws/: Plum's REST API

    def _serve_ws(self, path: str) -> None:
        match = _WS_SERVICE.match(path)
        if match is None:
            fmt: envelope.Format = "xml" if path.endswith(".xml") else "json"
            rendered = envelope.failure("response", fmt, inferred.UNKNOWN_SERVICE)
            self._send(404, rendered.content_type, rendered.body)
            return
        resource, service, fmt_name = match.groups()
        fmt = "xml" if fmt_name == "xml" else "json"
        if not self._suffer_api_faults():
            return
        try:
            self._check_auth(resource)
            expected = _SERVICE_METHOD[service]
            if self.command != expected:
                raise PlumFailure(
                    FailureKind.METHOD_NOT_ALLOWED,
                    inferred.METHOD_NOT_ALLOWED_TEMPLATE.format(
                        method=self.command, resource=resource
                    ),
                )
            result = getattr(self, f"_ws_{service}")()
        except PlumFailure as failure:
            rendered = envelope.failure(service, fmt, failure.message)
            extra = {"WWW_Authenticate": _REALM} if failure.kind is FailureKind.UNAUTHORIZED else {}
            self._send(
                inferred.FAILURE_HTTP_STATUS[failure.kind],
                rendered.content_type,
                rendered.body,
                **extra,
            )
            return
        rendered = envelope.success(service, fmt, result)
        self._send(200, rendered.content_type, rendered.body)

    def _suffer_api_faults(self) -> bool:
        """Apply injected faults; False when the request got its (non-)answer already."""
        fault = self.sim.draw_api_fault()
        stopping = self.server.stopping
        if fault.latency_seconds:
            stopping.wait(fault.latency_seconds)
        if fault.hang_seconds is not None:
            logger.info("fault: hanging a request %.2fs then closing", fault.hang_seconds)
            stopping.wait(fault.hang_seconds)
            self.close_connection = True
            return False
        if fault.server_error:
            logger.info("fault: answering 503")
            body = b"<html><body><h1>503 Service Unavailable</h1></body></html>"
            self._send(503, "text/html", body)
            return False
        return True

    def _check_auth(self, resource: str) -> None:
        config = self.sim.config
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        username = password = ""
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            username, _, password = decoded.partition(":")
        valid = hmac.compare_digest(username.encode(), config.username.encode())
        valid &= hmac.compare_digest(password.encode(), config.password.encode())
        if not valid:
            raise PlumFailure(
                FailureKind.UNAUTHORIZED, inferred.UNAUTHORIZED_TEMPLATE.format(resource=resource)
            )

    def _query_params(self) -> dict[str, str]:
        parsed = parse_qs(urlsplit(self.path).query, keep_blank_values=True)
        return {name: values[0] for name, values in parsed.items()}

    def _ws_queue(self) -> dict[str, Any]:
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        body = self._read_body()
        if content_type != FORM_CONTENT_TYPE or body is None:
            raise PlumFailure(FailureKind.BAD_REQUEST, inferred.NOT_FORM_ENCODED)
        try:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError as exc:
            raise PlumFailure(FailureKind.BAD_REQUEST, inferred.NOT_FORM_ENCODED) from exc

        def first(name: str) -> str | None:
            values = form.get(name)
            return values[0] if values else None

        messages = self.sim.queue(first("to"), first("from"), first("body"), first("result_url"))
        return {inferred.LIST_RESULT_KEY: [m.resource() for m in messages]}

    def _ws_status(self) -> dict[str, Any]:
        message = self.sim.status(queries.message_id(self._query_params()))
        return {inferred.STATUS_RESULT_KEY: message.resource()}

    def _ws_messages(self) -> dict[str, Any]:
        return self._page(queries.message_query(self._query_params()))

    def _ws_conversation(self) -> dict[str, Any]:
        return self._page(queries.message_query(self._query_params(), conversation=True))

    def _page(self, query: MessageQuery) -> dict[str, Any]:
        page, total = self.sim.messages(query)
        return {
            inferred.LIST_RESULT_KEY: [m.resource() for m in page],
            inferred.TOTAL_RESULT_KEY: total,
        }

    # /sim/: admin and simulated phones

    def _serve_sim(self, path: str) -> None:
        allowed = False
        for method, pattern, name in self._sim_routes:
            match = pattern.match(path)
            if match is None:
                continue
            allowed = True
            if method != self.command:
                continue
            handler: Callable[..., tuple[int, Any]] = getattr(self, name)
            try:
                status, payload = handler(*(unquote(group) for group in match.groups()))
            except SimRequestError as exc:
                status, payload = exc.status, {"error": exc.message}
            self._send_json(status, payload)
            return
        if allowed:
            self._send_json(405, {"error": f"method {self.command} not allowed"})
        else:
            self._send_json(404, {"error": "not found"})

    def _json_body(self) -> dict[str, Any]:
        raw = self._read_body()
        if raw is None:
            raise SimRequestError(413, "request body too large")
        try:
            data = json.loads(raw or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SimRequestError(400, "body must be a JSON object") from exc
        if not isinstance(data, dict):
            raise SimRequestError(400, "body must be a JSON object")
        return data

    def _sim_health(self) -> tuple[int, Any]:
        return 200, {
            "status": "ok",
            "sms_numbers": list(self.sim.config.sms_numbers),
            "messages": len(self.sim.state.all_messages()),
            "seed": self.sim.seed,
        }

    def _sim_reset(self) -> tuple[int, Any]:
        self.sim.reset()
        return 200, {"status": "reset"}

    def _sim_get_faults(self) -> tuple[int, Any]:
        return 200, self.sim.faults.model_dump()

    def _sim_put_faults(self) -> tuple[int, Any]:
        try:
            faults = self.sim.set_faults(self._json_body())
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
                for error in exc.errors()
            )
            raise SimRequestError(400, problems) from exc
        return 200, faults.model_dump()

    def _sim_messages(self) -> tuple[int, Any]:
        return 200, {"messages": [m.admin_view() for m in self.sim.state.all_messages()]}

    def _sim_callbacks(self) -> tuple[int, Any]:
        return 200, {"callbacks": [c.as_dict() for c in self.sim.state.callbacks()]}

    def _sim_unsubscribed(self) -> tuple[int, Any]:
        return 200, {"unsubscribed": self.sim.state.unsubscribed()}

    def _sim_numbers(self) -> tuple[int, Any]:
        urls = self.sim.state.application_urls()
        numbers = [
            {"number": number, "application_url": urls.get(number)}
            for number in self.sim.config.sms_numbers
        ]
        return 200, {"numbers": numbers}

    def _sim_put_number(self, number: str) -> tuple[int, Any]:
        url = self._json_body().get("application_url")
        if url is not None and (
            not isinstance(url, str) or not url.startswith(("http://", "https://"))
        ):
            raise SimRequestError(400, "application_url must be an http(s) URL or null")
        account = self.sim.set_application_url(number, url)
        return 200, {"number": account, "application_url": url}

    def _sim_phone_send(self, phone: str) -> tuple[int, Any]:
        data = self._json_body()
        to, body = data.get("to"), data.get("body")
        if not isinstance(to, str) or not isinstance(body, str):
            raise SimRequestError(400, "'to' and 'body' must be strings")
        return 200, self.sim.phone_sends(phone, to, body)

    def _sim_inbox(self, phone: str) -> tuple[int, Any]:
        number = self.sim.normalize_phone(phone)
        return 200, {
            "phone": number,
            "messages": [e.as_dict() for e in self.sim.state.inbox(number)],
        }


class PlumSimulator:
    """The Plum DEV simulator over HTTP, served from a background thread.

    ``port=0`` picks a free port; :meth:`start` returns the base URL (Plum's API is
    under ``<base>/ws/``, the admin routes under ``<base>/sim/``).
    """

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        poster: Poster | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.simulator = Simulator(config or SimulatorConfig(), poster=poster, clock=clock)
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running server."""
        if self._server is None:
            raise RuntimeError("the simulator is not running")
        host, port = self._server.server_address[:2]
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://{shown!s}:{port}"

    @property
    def api_url(self) -> str:
        """The base URL of Plum's REST API, to use as ``PLUM_API_URL``."""
        return self.base_url + "/ws/"

    def start(self) -> str:
        """Bind, start serving and the background workers; returns the base URL."""
        if self._server is not None:
            return self.base_url
        self._server = _Server(self._address, self.simulator)
        self.simulator.start()
        # shutdown() waits up to one poll interval
        self._thread = self._server.serve_in_background("plum-sim-http", poll_interval=0.05)
        logger.info("Plum simulator listening on %s", self.base_url)
        return self.base_url

    def stop(self) -> None:
        """Stop serving, release hanging requests, stop the workers, close the socket."""
        if self._server is None:
            return
        self._server.stopping.set()
        self._server.stop()
        if self._thread is not None:
            self._thread.join()
        self.simulator.stop()
        self._server = None
        self._thread = None
        logger.info("Plum simulator stopped")

    def __enter__(self) -> PlumSimulator:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
