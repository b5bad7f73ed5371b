"""What the API functions leave in logs and traces: a correlation id on every log line,
and no response or error (the webhook key, phone numbers, bodies) in any trace segment."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from plumsms.observability import tracer
from plumsms_local.lambda_runtime import LocalFunction

WEBHOOK_KEY = "test-webhook-key-0123456789"
SENDER_DIGITS, SENDER = "19998881234", "+19998881234"
BODY = "My card ends 4242, call me back"
Event = Callable[..., dict[str, Any]]


def inbound_form(sms_id: str = "a" * 32) -> dict[str, str]:
    return {"sms_message_id": sms_id, "to": "2435678910", "from": SENDER_DIGITS, "body": BODY}


def with_request_id(event: dict[str, Any], request_id: str) -> dict[str, Any]:
    event["requestContext"]["requestId"] = request_id
    return event


@pytest.fixture
def replies(function_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule that answers every SMS, so the answer's XML carries a result URL with the key."""
    rules = tmp_path / "rules.yaml"
    rules.write_text("default_reply: 'Got it: {body}'\n")
    monkeypatch.setenv("RULES_FILE", str(rules))


# -- correlation ids ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "fixture", "form"),
    [
        ("inbound_sms", "inbound_sms", inbound_form()),
        ("result_url", "result_url", {"sms_message_id": "b" * 32, "status": "delivered"}),
        ("messages_api", "messages_api_list", None),
    ],
)
def test_every_log_line_of_a_request_carries_its_api_gateway_request_id(
    load_function: Callable[[str], LocalFunction],
    event: Event,
    log_lines: Any,
    function: str,
    fixture: str,
    form: dict[str, str] | None,
) -> None:
    handler = load_function(function)
    # WHEN two requests are answered one after the other
    handler.invoke(with_request_id(event(fixture, form=form), "request-one"))
    first = log_lines.take()
    handler.invoke(with_request_id(event(fixture, form=form), "request-two"))
    second = log_lines.take()
    # THEN every line of each carries that request's id, and only that one
    assert first and second
    assert {line.get("correlation_id") for line in first} == {"request-one"}
    assert {line.get("correlation_id") for line in second} == {"request-two"}


# -- traces ------------------------------------------------------------------------------------


class RecordedSegments:
    """A tracing provider that keeps every metadata and annotation the tracer adds."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.metadata: list[tuple[str, Any]] = []
        self.annotations: list[tuple[str, Any]] = []

    @contextmanager
    def in_subsegment(self, name: str, **_: Any) -> Iterator[RecordedSegments]:
        self.names.append(name)
        yield self

    def put_metadata(self, key: str, value: Any, namespace: str | None = None) -> None:
        self.metadata.append((key, value))

    def put_annotation(self, key: str, value: Any) -> None:
        self.annotations.append((key, value))

    def text(self) -> str:
        return json.dumps([self.metadata, self.annotations], default=repr)


@pytest.fixture
def segments(monkeypatch: pytest.MonkeyPatch) -> RecordedSegments:
    recorded = RecordedSegments()
    monkeypatch.setattr(tracer, "provider", recorded)
    return recorded


def test_traces_hold_no_key_number_or_body(
    replies: None,
    load_function: Callable[[str], LocalFunction],
    event: Event,
    segments: RecordedSegments,
) -> None:
    # GIVEN every function's traced routes WHEN each answers with content in its response
    inbound = load_function("inbound_sms").invoke(event("inbound_sms", form=inbound_form()))
    assert WEBHOOK_KEY in inbound["body"] and BODY in inbound["body"]  # the XML holds both
    status = {"sms_message_id": "b" * 32, "status": "delivered"}
    load_function("result_url").invoke(event("result_url", form=status))
    api = load_function("messages_api")
    listed = api.invoke(event("messages_api_list"))
    assert SENDER in listed["body"] and BODY in listed["body"]
    # AND one route fails with the caller's input in play
    bad = api.invoke(event("messages_api_list", query={"number": "+1999888123456789"}))
    assert bad["statusCode"] == 400
    # THEN the segments were traced, but hold no response, error or content
    traced = " ".join(segments.names)
    assert "## lambda_handler" in segments.names
    assert all(
        route in traced
        for route in (".answer_inbound", ".answer_status_callback", ".list_messages")
    )
    assert segments.metadata == []
    recorded = segments.text()
    for secret in (WEBHOOK_KEY, SENDER, SENDER_DIGITS, BODY):
        assert secret not in recorded


# -- logs --------------------------------------------------------------------------------------


def test_no_log_line_above_debug_holds_the_key_a_number_or_a_body(
    replies: None, load_function: Callable[[str], LocalFunction], event: Event, log_lines: Any
) -> None:
    # GIVEN the functions at their default level WHEN they receive, answer, send and list
    load_function("inbound_sms").invoke(event("inbound_sms", form=inbound_form()))
    load_function("inbound_sms").invoke(event("inbound_sms", form=inbound_form() | {"body": "x"}))
    status = {"sms_message_id": "b" * 32, "status": "delivered"}
    load_function("result_url").invoke(event("result_url", form=status))
    load_function("result_url").invoke(event("result_url", form=status, query={"key": "wrong"}))
    api = load_function("messages_api")
    send = {"to": SENDER, "from": "+12435678910", "body": BODY}
    sent = api.invoke(event("messages_api_send", body=json.dumps(send)))
    assert sent["statusCode"] == 201, sent["body"]
    api.invoke(event("messages_api_list"))
    api.invoke(event("messages_api_list", query={"number": "+1999888123456789"}))
    # THEN the lines say what happened by ids and counts only
    lines = log_lines.take()
    assert {"inbound answered", "status callback", "message scheduled"} <= {
        line["message"] for line in lines
    }
    text = json.dumps(lines)
    for secret in (WEBHOOK_KEY, SENDER, SENDER_DIGITS, BODY, "2435678910"):
        assert secret not in text
