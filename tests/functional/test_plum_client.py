"""PlumClient against a real HTTP server on 127.0.0.1 playing Plum DEV.

The server records every request and every accepted connection, and answers from a
script of replies (status, body, delay); unscripted requests get a success envelope.
Timeouts and backoff are milliseconds so the suite stays fast.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

import pytest
from urllib3.util import Timeout

from plumsms.adapters.plum import QUERY_PARAMETERS, PlumClient
from plumsms.adapters.plum.envelope import MAX_ANSWER_BYTES
from plumsms.domain.plum import (
    InvalidRecipient,
    NotAMobileNumber,
    PlumMessageQuery,
    PlumPageQuery,
    PlumRejected,
    PlumUnavailable,
    Unauthorized,
    UnexpectedResponse,
    UnsubscribedRecipient,
)

ID = "0123456789abcdef0123456789abcdef"
USER = "acme"
PASSWORD = "s3cret:with-colon \u00e9"  # colon and non-ASCII: Basic auth must cope
TO = "+19998881234"
FROM = "+12435678910"
FAST = Timeout(connect=0.5, read=0.25)


@dataclass
class Hit:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: bytes | None = None  # None: a success envelope for the service asked
    delay: float = 0.0
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def _resource(**changes: object) -> dict[str, object]:
    record: dict[str, object] = {
        "sms_message_id": ID,
        "to": "19998881234",
        "from": "2435678910",
        "body": "Hello",
        "request_timestamp": 1_700_000_000,
        "result_url": "",
        "status": "queued",
    }
    record.update(changes)
    return record


def _xml_resource(record: dict[str, object]) -> str:
    fields = "".join(f"<{name}>{escape(str(value))}</{name}>" for name, value in record.items())
    return f"<sms_message>{fields}</sms_message>"


class FakePlum:
    """State shared between the test and the server's handler threads."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.connections = 0
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self.url = ""

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    def record(self, hit: Hit) -> Reply:
        with self._lock:
            self.hits.append(hit)
            return self._replies.popleft() if self._replies else Reply()

    def accepted(self) -> None:
        with self._lock:
            self.connections += 1


def _default_body(hit: Hit) -> tuple[bytes, str]:
    service, _, fmt = hit.path.rsplit("/", 1)[-1].partition(".")
    if service == "queue":
        form = parse_qs(hit.body.decode())
        record = _resource(to=form["to"][0], body=form["body"][0], **{"from": form["from"][0]})
    elif service == "status":
        record = _resource(sms_message_id=hit.query["sms_message_id"][0], status="delivered")
    else:
        record = _resource()
    if fmt == "xml":
        xml = (
            f'<?xml version="1.0"?><{service}><status>success</status><error/>'
            f"<result><sms_messages>{_xml_resource(record)}</sms_messages></result>"
            f"</{service}>"
        )
        return xml.encode(), "application/xml"
    envelope = {"status": "success", "error": "", "result": {"sms_messages": [record]}}
    return json.dumps(envelope).encode(), "application/json"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so pooling can be observed
    disable_nagle_algorithm = True  # headers and body go in two writes
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        parts = urlsplit(self.path)
        hit = Hit(
            self.command, parts.path, parse_qs(parts.query), self.headers, self.rfile.read(length)
        )
        reply = self.server.plum.record(hit)
        if reply.delay:
            time.sleep(reply.delay)
        body, content_type = (
            (reply.body, reply.content_type) if reply.body is not None else _default_body(hit)
        )
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up on purpose (timeouts)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, plum: FakePlum) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.plum = plum

    def get_request(self) -> tuple[socket.socket, Any]:
        request = super().get_request()
        self.plum.accepted()
        return request

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up mid-answer is part of the tests


@pytest.fixture
def plum() -> Iterator[FakePlum]:
    fake = FakePlum()
    server = _Server(fake)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/ws/"
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


def _client(plum: FakePlum, **kwargs: Any) -> PlumClient:
    options: dict[str, Any] = {
        "timeout": FAST,
        "retries": 3,
        "backoff_factor": 0.001,
        "backoff_max": 0.01,
        "backoff_jitter": 0.001,
        "retry_after_max": 0,
    }
    options.update(kwargs)
    return PlumClient(plum.url, USER, PASSWORD, **options)


def _failure(error: str) -> bytes:
    return json.dumps({"status": "failure", "error": error}).encode()


# --- the wire -----------------------------------------------------------------------


def test_queue_posts_a_form_with_basic_auth_and_plums_digit_formats(plum: FakePlum) -> None:
    # GIVEN a client for Plum
    client = _client(plum)

    # WHEN an SMS is queued with E.164 numbers and a body that needs escaping
    resources = client.queue(
        TO, FROM, "Caf\u00e9 & co = 100% \U0001f600", "https://cb.example/s?a=1&b=2"
    )

    # THEN one form-encoded POST went out, authenticated, with Plum's digit forms
    [hit] = plum.hits
    assert hit.method == "POST"
    assert hit.path == "/ws/sms/queue.json"
    assert hit.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert hit.headers["Accept"] == "application/json"
    expected = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert hit.headers["Authorization"] == f"Basic {expected}"
    form = parse_qs(hit.body.decode("ascii"), strict_parsing=True)
    assert form == {
        "to": ["19998881234"],
        "from": ["2435678910"],
        "body": ["Caf\u00e9 & co = 100% \U0001f600"],
        "result_url": ["https://cb.example/s?a=1&b=2"],
    }
    assert hit.query == {}
    assert [r.sms_message_id for r in resources] == [ID]
    assert resources[0].body == "Caf\u00e9 & co = 100% \U0001f600"


def test_queue_without_result_url_leaves_it_out(plum: FakePlum) -> None:
    _client(plum).queue(TO, FROM, "Hi")

    assert "result_url" not in parse_qs(plum.hits[0].body.decode())


def test_status_gets_by_sms_message_id_with_basic_auth(plum: FakePlum) -> None:
    resource = _client(plum).status(ID.upper())

    [hit] = plum.hits
    assert (hit.method, hit.path) == ("GET", "/ws/sms/status.json")
    assert hit.query == {"sms_message_id": [ID]}
    assert hit.headers["Authorization"].startswith("Basic ")
    assert hit.body == b""
    assert resource.status == "delivered"


def test_messages_sends_every_filter_under_its_inferred_name(plum: FakePlum) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    end = datetime(2024, 1, 2, tzinfo=UTC)
    query = PlumMessageQuery(
        offset=100,
        limit=200,
        sort="asc",
        start=start,
        end=end,
        type="outbound",
        number=FROM,
        number_side="account",
    )

    _client(plum).messages(query)

    [hit] = plum.hits
    assert hit.path == "/ws/sms/messages.json"
    names = QUERY_PARAMETERS
    assert hit.query == {
        names["offset"]: ["100"],
        names["limit"]: ["200"],
        names["sort"]: ["asc"],
        names["start"]: [str(int(start.timestamp()))],
        names["end"]: [str(int(end.timestamp()))],
        names["type"]: ["outbound"],
        names["number"]: ["2435678910"],
        names["number_side"]: ["account"],
    }


def test_messages_defaults_and_customer_numbers_in_11_digits(plum: FakePlum) -> None:
    client = _client(plum)

    client.messages()
    client.messages(PlumMessageQuery(type="inbound", number=TO, number_side="customer"))

    names = QUERY_PARAMETERS
    assert plum.hits[0].query == {
        names["offset"]: ["0"],
        names["limit"]: ["50"],
        names["sort"]: ["desc"],
        names["type"]: ["all"],
    }
    assert plum.hits[1].query[names["number"]] == ["19998881234"]


def test_conversation_sends_both_numbers(plum: FakePlum) -> None:
    resources = _client(plum).conversation(FROM, TO, PlumPageQuery(limit=1000))

    [hit] = plum.hits
    assert hit.path == "/ws/sms/conversation.json"
    assert hit.query[QUERY_PARAMETERS["account_number"]] == ["2435678910"]
    assert hit.query[QUERY_PARAMETERS["customer_number"]] == ["19998881234"]
    assert hit.query[QUERY_PARAMETERS["limit"]] == ["1000"]
    assert len(resources) == 1


def test_base_url_without_trailing_slash_keeps_its_path(plum: FakePlum) -> None:
    client = PlumClient(plum.url.rstrip("/"), USER, PASSWORD, timeout=FAST)

    client.status(ID)

    assert plum.hits[0].path == "/ws/sms/status.json"


# --- retries ------------------------------------------------------------------------


def test_queue_retries_503_then_succeeds(plum: FakePlum) -> None:
    plum.script(Reply(503, b"busy"), Reply(503, b"busy"))

    resources = _client(plum).queue(TO, FROM, "Hi")

    assert len(plum.hits) == 3
    assert all(hit.method == "POST" for hit in plum.hits)
    assert resources[0].sms_message_id == ID


def test_get_retries_503_then_succeeds(plum: FakePlum) -> None:
    plum.script(Reply(503, b"busy"))

    _client(plum).status(ID)

    assert len(plum.hits) == 2


def test_429_is_retried(plum: FakePlum) -> None:
    plum.script(Reply(429, b"slow down", headers={"Retry-After": "0"}))

    _client(plum).queue(TO, FROM, "Hi")

    assert len(plum.hits) == 2


def test_503_until_retries_run_out_is_unavailable_not_sent(plum: FakePlum) -> None:
    plum.script(*[Reply(503, b"busy")] * 4)

    with pytest.raises(PlumUnavailable) as caught:
        _client(plum, retries=3).queue(TO, FROM, "Hi")

    assert len(plum.hits) == 4  # first try and three retries
    assert caught.value.http_status == 503
    assert caught.value.transient
    assert caught.value.maybe_sent is False


def test_failure_envelope_on_400_is_not_retried(plum: FakePlum) -> None:
    plum.script(Reply(400, _failure("Invalid 'to' phone number")))

    with pytest.raises(InvalidRecipient) as caught:
        _client(plum).queue(TO, FROM, "Hi")

    assert len(plum.hits) == 1
    assert not caught.value.transient
    assert caught.value.maybe_sent is False


def test_failure_envelope_on_200_is_not_retried(plum: FakePlum) -> None:
    plum.script(Reply(200, _failure('"Attempt to send to unsubscribed recipient"')))

    with pytest.raises(UnsubscribedRecipient):
        _client(plum).queue(TO, FROM, "Hi")

    assert len(plum.hits) == 1


def test_unauthorized_is_not_retried(plum: FakePlum) -> None:
    plum.script(Reply(401, _failure("Unauthorized access to queue service")))

    with pytest.raises(Unauthorized):
        _client(plum).status(ID)

    assert len(plum.hits) == 1


def test_500_on_queue_is_not_retried_and_may_have_sent(plum: FakePlum) -> None:
    plum.script(Reply(500, b"<html>Internal Server Error</html>", content_type="text/html"))

    with pytest.raises(PlumUnavailable) as caught:
        _client(plum).queue(TO, FROM, "Hi")

    assert len(plum.hits) == 1
    assert caught.value.maybe_sent is True


def test_500_on_get_is_retried(plum: FakePlum) -> None:
    plum.script(Reply(500, b"oops"), Reply(502, b"oops"))

    _client(plum).messages()

    assert len(plum.hits) == 3


def test_error_sending_sms_request_on_500_is_rejected_not_retried(plum: FakePlum) -> None:
    plum.script(Reply(500, _failure("Error sending sms request")))

    with pytest.raises(PlumRejected) as caught:
        _client(plum).queue(TO, FROM, "Hi")

    assert len(plum.hits) == 1
    assert not caught.value.transient


def test_read_timeout_on_queue_is_not_retried_and_may_have_sent(plum: FakePlum) -> None:
    # GIVEN Plum takes longer to answer than the client's read timeout
    plum.script(Reply(delay=1.0))

    # WHEN an SMS is queued
    started = time.monotonic()
    with pytest.raises(PlumUnavailable) as caught:
        _client(plum).queue(TO, FROM, "Hi")

    # THEN the POST went out once, and the caller learns it may have been queued
    assert len(plum.hits) == 1
    assert caught.value.maybe_sent is True
    assert caught.value.transient
    assert time.monotonic() - started < 0.9


def test_read_timeout_on_get_is_retried(plum: FakePlum) -> None:
    plum.script(Reply(delay=0.6))

    resource = _client(plum).status(ID)

    assert len(plum.hits) == 2
    assert resource.sms_message_id == ID


def test_connection_refused_is_unavailable_and_not_sent() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = PlumClient(
        f"http://127.0.0.1:{port}/ws/",
        USER,
        PASSWORD,
        timeout=FAST,
        retries=2,
        backoff_factor=0.001,
        backoff_jitter=0.001,
    )

    with pytest.raises(PlumUnavailable) as caught:
        client.queue(TO, FROM, "Hi")

    assert caught.value.maybe_sent is False
    assert caught.value.transient
    assert str(port) not in str(caught.value)  # urllib3's URL-quoting message is dropped


# --- connections and answers --------------------------------------------------------


def test_calls_reuse_one_pooled_connection(plum: FakePlum) -> None:
    client = _client(plum)

    client.queue(TO, FROM, "Hi")
    client.status(ID)
    client.messages()
    client.conversation(FROM, TO)
    client.queue(TO, FROM, "Again")

    assert len(plum.hits) == 5
    assert plum.connections == 1


def test_retries_also_reuse_the_connection(plum: FakePlum) -> None:
    plum.script(Reply(503, b"busy"), Reply(503, b"busy"))

    _client(plum).status(ID)

    assert plum.connections == 1


def test_malformed_2xx_answer_to_queue_is_unexpected_and_may_have_sent(plum: FakePlum) -> None:
    plum.script(Reply(200, b'{"status":"success","error":"",}'))

    with pytest.raises(UnexpectedResponse) as caught:
        _client(plum).queue(TO, FROM, "Hi")

    assert caught.value.maybe_sent is True
    assert not caught.value.transient


def test_oversized_answer_is_refused_and_the_client_recovers(plum: FakePlum) -> None:
    plum.script(Reply(200, b" " * (MAX_ANSWER_BYTES + 10)))
    client = _client(plum)

    with pytest.raises(UnexpectedResponse, match="too large"):
        client.status(ID)
    assert client.status(ID).sms_message_id == ID


def test_status_answer_for_another_message_is_unexpected(plum: FakePlum) -> None:
    other = "f" * 32
    envelope = {"status": "success", "error": "", "result": _resource(sms_message_id=other)}
    plum.script(Reply(200, json.dumps(envelope).encode()))

    with pytest.raises(UnexpectedResponse):
        _client(plum).status(ID)


def test_xml_format_path(plum: FakePlum) -> None:
    client = _client(plum, fmt="xml")

    [queued] = client.queue(TO, FROM, "Fish & chips <3")
    status = client.status(ID)
    plum.script(
        Reply(
            400,
            b"<queue><status>failure</status><error>Invalid 'to' phone number</error></queue>",
            content_type="application/xml",
        )
    )
    with pytest.raises(InvalidRecipient):
        client.queue(TO, FROM, "Hi")

    assert [hit.path for hit in plum.hits] == [
        "/ws/sms/queue.xml",
        "/ws/sms/status.xml",
        "/ws/sms/queue.xml",
    ]
    assert plum.hits[0].headers["Accept"] == "application/xml"
    assert queued.body == "Fish & chips <3"
    assert status.status == "delivered"


def test_logs_above_debug_carry_no_numbers_or_bodies(
    plum: FakePlum, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="plumsms")
    plum.script(Reply(400, _failure("To number: +19998881234, is not a mobile number")))
    client = _client(plum)

    with pytest.raises(NotAMobileNumber):
        client.queue(TO, FROM, "secret body text")
    client.queue(TO, FROM, "secret body text")
    client.messages(PlumMessageQuery(type="inbound", number=TO, number_side="customer"))

    loud = [record for record in caplog.records if record.levelno > logging.DEBUG]
    assert loud, "the client should log its calls"
    for record in loud:
        rendered = record.getMessage() + repr(record.__dict__)
        assert "9998881234" not in rendered
        assert "2435678910" not in rendered
        assert "secret body" not in rendered
