"""Bad input is a 400 naming the field, never a 500, on every route (issue 11, item 4):
explicit cases, then property-based fuzzing of the two webhooks and of the JSON API
(schemathesis against the API's own /openapi.json)."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import schemathesis
import urllib3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks
from schemathesis.core import NOT_SET

from plumsms_local.gateway import LocalGateway
from plumsms_local.lambda_runtime import LocalFunction

API_TOKEN = "bad-input-token-0123456789"
WEBHOOK_KEY = "test-webhook-key-0123456789"
AUTH = {"authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def gateway(function_env: dict[str, str]) -> Iterator[LocalGateway]:
    served = LocalGateway(API_TOKEN, port=0).start()
    yield served
    served.stop()


def call(
    gateway: LocalGateway, method: str, path: str, body: bytes = b"", **headers: str
) -> tuple[int, dict[str, Any]]:
    response = urllib3.request(
        method, gateway.url + path.lstrip("/"), body=body or None, headers=headers, retries=False
    )
    data = response.data
    return response.status, json.loads(data) if data.startswith(b"{") else {"raw": data}


def deep(depth: int) -> bytes:
    return b'{"to": ' + b"[" * depth + b"]" * depth + b"}"


# -- explicit cases ------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [17, 1000, 8000])
def test_deeply_nested_json_is_400_on_post_messages(gateway: LocalGateway, depth: int) -> None:
    status, answer = call(
        gateway, "POST", "messages", deep(depth), **AUTH, **{"content-type": "application/json"}
    )
    assert status == 400, answer
    assert answer["field"] == "body" and "nested" in answer["rule"]


@pytest.mark.parametrize("depth", [17, 8000])
def test_deeply_nested_json_is_400_on_the_result_url(gateway: LocalGateway, depth: int) -> None:
    status, answer = call(
        gateway,
        "POST",
        f"plum/status?key={WEBHOOK_KEY}",
        deep(depth),
        **{"content-type": "application/json"},
    )
    assert status == 400, answer
    assert answer["field"] == "body"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b'{"to": "+12125551234", "from": "+12435678910", "body": "hi \\ud800"}', "body"),
        (b'{"to": "+12125551234", "from": "+12435678910", "body": "\\udfff"}', "body"),
        (b'{"to": "+12125551234\\ud83d", "from": "+12435678910", "body": "x"}', "to"),
        (b'{"\\ud800": 1}', "\ud800".encode("utf-8", "backslashreplace").decode()),
    ],
)
def test_lone_surrogates_are_400_naming_the_field(
    gateway: LocalGateway, payload: bytes, field: str
) -> None:
    status, answer = call(
        gateway, "POST", "messages", payload, **AUTH, **{"content-type": "application/json"}
    )
    assert status == 400, answer
    assert answer["field"] in {field, "\ud800"} or "surrogate" in answer["rule"]
    assert "surrogate" in answer["rule"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("end=0001-01-01T00:00:00%2B14:00", "end"),
        ("start=0001-01-01T00:00:00%2B14:00", "start"),
        ("end=9999-12-31T23:59:59-14:00", "end"),
    ],
)
def test_datetimes_out_of_range_are_400_naming_the_field(
    gateway: LocalGateway, query: str, field: str
) -> None:
    for path in ("messages", "messages/export"):
        status, answer = call(gateway, "GET", f"{path}?{query}", **AUTH)
        assert status == 400, answer
        assert answer["field"] == field and "range" in answer["rule"]


def test_a_send_at_out_of_range_is_400(gateway: LocalGateway) -> None:
    payload = {
        "to": "+12125551234",
        "from": "+12435678910",
        "body": "x",
        "send_at": "0001-01-01T00:00:00+14:00",
    }
    status, answer = call(
        gateway,
        "POST",
        "messages",
        json.dumps(payload).encode(),
        **AUTH,
        **{"content-type": "application/json"},
    )
    assert status == 400, answer
    assert answer["field"] == "send_at"


def raw_request(address: str, request: bytes) -> bytes:
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(request)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


@pytest.mark.parametrize("length", ["-1", "abc", "1e3", " -5", "0x10", "\uff11\uff12"])
def test_the_gateway_answers_400_to_a_bad_content_length(
    gateway: LocalGateway, length: str
) -> None:
    # GIVEN a request whose Content-Length is negative or not a number, body left open
    request = (
        f"POST /plum/inbound?key={WEBHOOK_KEY} HTTP/1.1\r\nHost: x\r\n"
        f"Content-Length: {length}\r\n\r\nsms_message_id="
    ).encode()
    # WHEN it is sent THEN the answer is a 400 at once and the connection is closed
    answer = raw_request(gateway.url.removeprefix("http://").rstrip("/"), request)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"Content-Length" in answer


@pytest.mark.parametrize("length", ["-1", "abc"])
def test_the_ui_proxy_answers_400_to_a_bad_content_length(
    gateway: LocalGateway, length: str
) -> None:
    from plumsms_local.cli import log as log_cli  # noqa: PLC0415

    proxy = log_cli.SigningProxy(
        gateway.url, session_token="s", sign=lambda m, u, d, h: h
    ).serve_in_background()
    try:
        request = (
            f"POST /messages HTTP/1.1\r\nHost: {proxy.address}\r\n"
            f"Content-Length: {length}\r\n\r\n{{"
        ).encode()
        answer = raw_request(proxy.address, request)
    finally:
        proxy.close()
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]


# -- fuzzing the webhooks ------------------------------------------------------------------

PLUM_ID = st.text("0123456789abcdefABCDEF", min_size=32, max_size=32)
NUMBERS = st.sampled_from(
    ["2435678910", "12435678910", "+12435678910", "19998881234", "+1 (999) 888-1234"]
)
SENDERS = (
    NUMBERS
    | st.sampled_from(["22395", "611", "AMAZON", "Bank Alert", "+447400123456", "+33612345678"])
    | st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40).filter(
        lambda s: s.strip() and any(c.isprintable() and not c.isspace() for c in s)
    )
)
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=300)
BODIES = (
    TEXT
    | st.sampled_from(["STOP", "stop please", "HELP", "START", "Don't stop"])
    | st.integers(1601, 6000).map(lambda n: "x" * n)
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    to=NUMBERS,
    sender=SENDERS,
    body=BODIES,
    extra=st.dictionaries(st.sampled_from(["foo", "num_media", "x"]), TEXT, max_size=2),
)
def test_fuzzed_plum_inbound_is_always_stored_never_500(
    load_function: Callable[[str], LocalFunction],
    event: Any,
    ddb: Any,
    table_name: str,
    to: str,
    sender: str,
    body: str,
    extra: dict[str, str],
) -> None:
    # GIVEN any form Plum could POST (any sender string, any body)
    sms_id = uuid.uuid4().hex
    fields = {"sms_message_id": sms_id, "to": to, "from": sender, "body": body} | extra
    # WHEN it arrives THEN it is answered 200 with XML and stored: no inbound is lost
    response = load_function("inbound_sms").invoke(
        event("inbound_sms", form=fields, query={"key": WEBHOOK_KEY})
    )
    assert response["statusCode"] == 200, response["body"]
    key = {"PK": {"S": f"MSG#{sms_id}"}, "SK": {"S": "MSG"}}
    assert "Item" in ddb.get_item(TableName=table_name, Key=key)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    fields=st.dictionaries(
        st.sampled_from(["sms_message_id", "to", "from", "body", "zzz"]), TEXT, max_size=5
    ),
    raw=st.binary(max_size=200),
    use_raw=st.booleans(),
)
def test_fuzzed_plum_inbound_is_never_500(
    load_function: Callable[[str], LocalFunction],
    event: Any,
    fields: dict[str, str],
    raw: bytes,
    use_raw: bool,
) -> None:
    fn = load_function("inbound_sms")
    form = raw if use_raw else urlencode(fields).encode()
    response = fn.invoke(
        event("inbound_sms", body=form, base64_body=True, query={"key": WEBHOOK_KEY})
    )
    assert response["statusCode"] in {200, 400}, response["body"]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=20,
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    form=st.dictionaries(
        st.sampled_from(["sms_message_id", "status", "to", "from", "request_timestamp", "x"]),
        TEXT | PLUM_ID,
        max_size=5,
    ),
    document=JSON_VALUES,
    as_json=st.booleans(),
    ref=st.none() | PLUM_ID | TEXT,
)
def test_fuzzed_result_url_is_never_500(
    load_function: Callable[[str], LocalFunction],
    event: Any,
    form: dict[str, str],
    document: Any,
    as_json: bool,
    ref: str | None,
) -> None:
    fn = load_function("result_url")
    query = {"key": WEBHOOK_KEY} | ({"ref": ref} if ref is not None else {})
    if as_json:
        request = event(
            "result_url",
            body=json.dumps(document).encode(),
            base64_body=True,
            query=query,
            headers={"Content-Type": "application/json"},
        )
    else:
        request = event("result_url", form=form, query=query)
    response = fn.invoke(request)
    assert response["statusCode"] in {200, 400, 404}, response["body"]


# -- fuzzing the JSON API (schemathesis) ------------------------------------------------------


DOCUMENT_CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
"""Answers that break the document: a 5xx, or a status, media type or body it does not give."""


def api_operations(gateway: LocalGateway) -> list[Any]:
    """Every operation of the API's own OpenAPI document, aimed at the local gateway."""
    status, document = call(gateway, "GET", "openapi.json", **AUTH)
    assert status == 200
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=gateway.url.rstrip("/"))
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=str)
def test_fuzzed_json_api_is_never_500(
    gateway: LocalGateway, mode: schemathesis.GenerationMode
) -> None:
    # GIVEN every operation of /openapi.json, with valid (positive) and invalid (negative)
    # requests generated from it, a bounded budget per operation
    operations = api_operations(gateway)
    assert len(operations) >= 6
    seen: list[str] = []
    statuses: dict[int, int] = {}
    bodies: list[str] = []
    for operation in operations:

        @settings(
            max_examples=20,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case: Any) -> None:
            # WHEN it is sent with the API token
            response = case.call(headers=AUTH)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            # THEN the answer is never a 5xx, and its status, content type and body are
            # the ones the document gives for this operation
            case.validate_response(response, checks=DOCUMENT_CHECKS, headers=AUTH)
            if case.body is not NOT_SET:
                bodies.append(case.method)

        fuzz()
        seen.append(operation.label)
    assert any(label.startswith("POST /messages") for label in seen)
    # AND the write routes were sent bodies generated from their documented schemas
    assert {"POST", "PATCH"} <= set(bodies), set(bodies)
    # the budget was spent: hundreds of requests, both accepted and refused ones
    assert sum(statuses.values()) >= 10 * len(operations), statuses
    assert 400 in statuses, statuses


# Schemathesis generates bodies only from the documented schemas; the JSON bodies of the
# write routes also get their own generator, of values the schemas do not describe.
SEND_FIELDS = {
    "to": st.sampled_from(["+12125551234", "2125551234", "+12435678910", "", "x"]) | TEXT,
    "from": st.sampled_from(["+12435678910", "+19998881234"]) | TEXT,
    "body": TEXT | st.integers(),
    "send_at": st.sampled_from(
        ["2030-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", ""]
    )
    | TEXT,
    "time_zone": st.sampled_from(["America/New_York", "../etc/passwd", "\x00", "UTC"]) | TEXT,
    "recurrence": JSON_VALUES
    | st.fixed_dictionaries(
        {"frequency": st.sampled_from(["daily", "weekly", "x"])},
        optional={
            "count": st.integers(-5, 10_000),
            "until": st.sampled_from(["9999-12-31", "0001-01-01T00:00:00+14:00", "2030-01-01"]),
            "cron": TEXT,
            "interval": st.integers(-1, 1000),
            "by_weekday": JSON_VALUES,
        },
    ),
    "quiet_hours": JSON_VALUES,
    "extra": JSON_VALUES,
}


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    document=st.fixed_dictionaries({}, optional=SEND_FIELDS) | JSON_VALUES,
    method=st.sampled_from(["POST", "PATCH"]),
)
def test_fuzzed_send_and_edit_bodies_are_never_500(
    load_function: Callable[[str], LocalFunction], document: Any, method: str
) -> None:
    from plumsms_local.gateway import proxy_event  # noqa: PLC0415

    fn = load_function("messages_api")
    path, resource, params = "/messages", "/messages", None
    if method == "PATCH":
        path, resource, params = f"/messages/{'a' * 32}", "/messages/{id}", {"id": "a" * 32}
    body = json.dumps(document).encode()
    event = proxy_event(
        method,
        path,
        {"content-type": "application/json"},
        body,
        resource=resource,
        path_parameters=params,
    )
    response = fn.invoke(event)
    assert response["statusCode"] < 500, response["body"]
