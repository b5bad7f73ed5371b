"""A local API Gateway: HTTP requests in, REST API proxy events to the handlers, answers out.

The routes come from ``template.yaml``. Routes that use IAM auth on AWS require
``Authorization: Bearer <API_TOKEN>`` here, or a page session's token.

Two routes exist only here, for ``smsctl ui`` (the API token must never travel in a URL
or a browser's command line, where ``ps`` and the history keep it):

- ``POST /local/ui-code`` (with the API token) mints a one-time code, valid one minute;
- ``POST /local/ui-session`` ``{"code": ...}`` (from the page) spends it and answers a
  session token, valid ``SESSION_SECONDS``, that the page uses as its bearer token.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import secrets
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from plumsms_local import template
from plumsms_local.httpio import BAD_LENGTH, content_length
from plumsms_local.lambda_runtime import LocalFunction
from plumsms_local.quiet_http import QuietHTTPServer

log = logging.getLogger("plumsms.local.gateway")
STAGE = "local"
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-www-form-urlencoded")
MAX_REQUEST_BYTES = 1024 * 1024
UI_CODE_PATH = "/local/ui-code"
UI_SESSION_PATH = "/local/ui-session"
CODE_SECONDS = 60
SESSION_SECONDS = 12 * 3600


def proxy_event(
    method: str,
    raw_path: str,
    headers: dict[str, str],
    body: bytes,
    *,
    resource: str,
    path_parameters: dict[str, str] | None,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """An API Gateway REST (v1) proxy event, as API Gateway builds it."""
    parts = urlsplit(raw_path)
    query = parse_qs(parts.query, keep_blank_values=True)
    content_type = headers.get("content-type", "")
    is_text = not body or content_type.startswith(_TEXT_TYPES)
    now = datetime.now(UTC)
    return {
        "resource": resource,
        "path": parts.path,
        "httpMethod": method,
        "headers": headers or None,
        "multiValueHeaders": {k: [v] for k, v in headers.items()} or None,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/{STAGE}{parts.path}",
            "stage": STAGE,
            "requestId": str(uuid.uuid4()),
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "domainName": headers.get("host", "127.0.0.1"),
            "apiId": "local",
            "accountId": "000000000000",
            "protocol": "HTTP/1.1",
            "identity": {"sourceIp": source_ip, "userAgent": headers.get("user-agent")},
        },
        "body": (
            body.decode("utf-8", "surrogateescape") if is_text else base64.b64encode(body).decode()
        )
        if body
        else None,
        "isBase64Encoded": bool(body) and not is_text,
    }


class LocalGateway:
    """Serves the template's routes on ``host:port`` by invoking the handlers in-process."""

    def __init__(
        self,
        api_token: str,
        host: str = "127.0.0.1",
        port: int = 3000,
        template_path: Path = template.TEMPLATE,
        token_hint: str = "",
    ) -> None:
        self.api_token = api_token
        self.token_hint = token_hint
        self.routes = template.routes(template_path)
        self.functions = {
            r.function: LocalFunction(r.function, r.handler_file) for r in self.routes
        }
        self._codes: dict[str, float] = {}
        self._sessions: dict[str, float] = {}
        self._lock = threading.Lock()
        self._server = QuietHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        """Base URL, ending with '/'."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def warm(self) -> list[str]:
        """Import every function now (their cold starts); returns the ones that failed.

        A function whose cold start fails answers 502, as on AWS; the others keep working.
        """
        failed: list[str] = []
        for name, function in self.functions.items():
            try:
                function.module()
            except Exception:
                log.exception("cold start of %s failed", name)
                failed.append(name)
        return failed

    def start(self) -> LocalGateway:
        """Serve in a background thread."""
        self._server.serve_in_background("local-gateway")
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.stop()

    def dispatch(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Route one request; returns status, headers and body."""
        path = urlsplit(raw_path).path
        if path in {UI_CODE_PATH, UI_SESSION_PATH}:
            return self._ui_sign_in(method, path, headers, body)
        for route in self.routes:
            params = route.match(method, path)
            if params is None:
                continue
            if route.authorized and not self._authorized(headers):
                return unauthorized(self.token_hint)
            event = proxy_event(
                method, raw_path, headers, body, resource=route.path, path_parameters=params
            )
            result = self.functions[route.function].invoke(event)
            return _response(result)
        allowed = any(r.match("ANY", path) is not None for r in self.routes)
        return _json(
            405 if allowed else 404,
            {"message": "Missing Authentication Token" if not allowed else "Method not allowed"},
        )

    def _authorized(self, headers: dict[str, str]) -> bool:
        presented = headers.get("authorization", "")
        expected = f"Bearer {self.api_token}"
        if hmac.compare_digest(presented.encode(), expected.encode()):
            return True
        scheme, _, token = presented.partition(" ")
        return scheme == "Bearer" and self._live(self._sessions, token, spend=False)

    def _live(self, table: dict[str, float], secret: str, *, spend: bool) -> bool:
        now = time.monotonic()
        with self._lock:
            for key in [k for k, expiry in table.items() if expiry <= now]:
                del table[key]
            if not secret or secret not in table:
                return False
            if spend:
                del table[secret]
            return True

    def _ui_sign_in(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """The one-time code exchange of ``smsctl ui`` (see the module docstring)."""
        if method != "POST":
            return _json(405, {"message": "Method not allowed"})
        now = time.monotonic()
        if path == UI_CODE_PATH:
            presented = headers.get("authorization", "")
            if not hmac.compare_digest(presented.encode(), f"Bearer {self.api_token}".encode()):
                return unauthorized(self.token_hint)
            code = secrets.token_urlsafe(24)
            with self._lock:
                self._codes[code] = now + CODE_SECONDS
            return _json(200, {"code": code, "expires_in": CODE_SECONDS})
        try:
            presented_code = json.loads(body or b"{}").get("code", "")
        except (ValueError, AttributeError):
            presented_code = ""
        if not isinstance(presented_code, str) or not self._live(
            self._codes, presented_code, spend=True
        ):
            return _json(
                403,
                {"message": "code: unknown, used or expired; run smsctl ui again", "field": "code"},
            )
        session = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[session] = now + SESSION_SECONDS
        return _json(200, {"token": session, "expires_in": SESSION_SECONDS})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "plumsms-local"

            def _serve(self) -> None:
                length = content_length(self.headers.get("content-length"))
                if length is None or length > MAX_REQUEST_BYTES:
                    # The body was not read: this connection cannot carry another request.
                    self.close_connection = True
                    too_large = b'{"message": "Request too large"}'
                    status, text = (
                        (400, BAD_LENGTH.encode()) if length is None else (413, too_large)
                    )
                    self._send(status, {"content-type": "application/json"}, text)
                    return
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    status, out_headers, out_body = gateway.dispatch(
                        self.command, self.path, headers, body
                    )
                except Exception:
                    # API Gateway answers 502 when a function crashes; so do we.
                    log.exception("function failed")
                    status, out_headers, out_body = _json(502, {"message": "Internal server error"})
                self._send(status, out_headers, out_body)

            def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in {"content-length", "connection"}:
                        self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

            def log_message(self, format: str, *args: Any) -> None:
                log.debug(format, *args)

        return Handler


def _response(result: Any) -> tuple[int, dict[str, str], bytes]:
    if not isinstance(result, dict) or "statusCode" not in result:
        return _json(502, {"message": "Internal server error"})
    headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name] = ", ".join(str(v) for v in values)
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode("utf-8")
    return int(result["statusCode"]), headers, data


AUTH_HINT = (
    "send 'Authorization: Bearer <API token>'; make run prints the token in its banner"
    " and writes it to {state_file} (smsctl reads it there); API_TOKEN sets a fixed one"
)


def unauthorized(hint: str = "") -> tuple[int, dict[str, str], bytes]:
    """401 for a missing or wrong bearer token, saying where the token comes from."""
    status, headers, body = _json(
        401,
        {
            "message": "missing or invalid bearer token",
            "field": "Authorization",
            "rule": hint or AUTH_HINT.format(state_file=".local-data/stack.json"),
        },
    )
    return status, {**headers, "www-authenticate": 'Bearer realm="plumsms-local"'}, body


def _json(status: int, payload: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    return status, {"content-type": "application/json"}, json.dumps(payload).encode()
