"""InboundSmsFunction invoked with API Gateway events against the embedded DynamoDB server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from plumsms.adapters.dynamodb.store import DynamoMessageStore
from plumsms.domain.errors import ConfigurationError
from plumsms.domain.keywords import intent
from plumsms.domain.models import derived_id
from plumsms.domain.replyxml import xml_safe
from plumsms_local.simulator.testing import accepted_reply

SENDER = "+19998881234"
NUMBER = "+12435678910"


def response_header(response: dict[str, Any], name: str) -> str | None:
    """A header of a proxy response, whether single- or multi-valued."""
    if name in (response.get("headers") or {}):
        return str(response["headers"][name])
    values = (response.get("multiValueHeaders") or {}).get(name)
    return ", ".join(values) if values else None


def form(sms_id: str = "a" * 32, body: str = "Hello", **extra: str) -> dict[str, str]:
    return {
        "sms_message_id": sms_id,
        "to": "2435678910",
        "from": "19998881234",
        "body": body,
    } | extra


def get_message(ddb: Any, table: str, message_id: str) -> dict[str, Any] | None:
    item = ddb.get_item(TableName=table, Key={"PK": {"S": f"MSG#{message_id}"}, "SK": {"S": "MSG"}})
    return item.get("Item")


def all_items(ddb: Any, table: str) -> list[dict[str, Any]]:
    # Test-only inspection of the whole table; the product never scans.
    return ddb.scan(TableName=table)["Items"]


@pytest.fixture
def rules_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Path]:
    def write(text: str, name: str = "rules.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        monkeypatch.setenv("RULES_FILE", str(path))
        return path

    return write


@pytest.fixture
def invoke(load_function: Any, event: Any) -> Callable[..., dict[str, Any]]:
    loaded: dict[str, Any] = {}

    def call(fields: dict[str, str] | None = None, **kwargs: Any) -> dict[str, Any]:
        if "fn" not in loaded:
            loaded["fn"] = load_function("inbound_sms")
        kwargs.setdefault("query", {"key": "test-webhook-key-0123456789"})
        return loaded["fn"].invoke(event("inbound_sms", form=fields, **kwargs))

    return call


def test_fixture_event_is_answered_and_logged(
    load_function: Any, event: Any, ddb: Any, table_name: str
) -> None:
    # GIVEN the sample API Gateway event as stored in events/
    fn = load_function("inbound_sms")
    # WHEN it is invoked unchanged
    response = fn.invoke(event("inbound_sms"))
    # THEN Plum gets an empty reply document as text/xml and the message is logged
    assert response["statusCode"] == 200
    assert response_header(response, "Content-Type") == "text/xml; charset=utf-8"
    assert response["body"].startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert accepted_reply(response["body"]) == []
    item = get_message(ddb, table_name, "6c1f0e1f2b3a4d5e8f9a0b1c2d3e4f50")
    assert item is not None
    assert item["status"]["S"] == "received"
    assert item["type"]["S"] == "inbound"
    assert item["from"]["S"] == SENDER and item["to"]["S"] == NUMBER
    assert item["body"]["S"] == "Hello there"
    assert item["history"]["L"][0]["M"]["status"]["S"] == "received"


def test_base64_body_from_api_gateway(
    load_function: Any, event: Any, ddb: Any, table_name: str
) -> None:
    response = load_function("inbound_sms").invoke(event("inbound_sms_base64"))
    assert response["statusCode"] == 200
    assert get_message(ddb, table_name, "6c1f0e1f2b3a4d5e8f9a0b1c2d3e4f50") is not None


@pytest.mark.parametrize(
    "query", [{}, {"key": "wrong"}, {"key": ""}, {"key": "test-webhook-key-012345678"}]
)
def test_wrong_or_missing_key_is_403_and_stores_nothing(
    invoke: Any, query: dict[str, str], ddb: Any, table_name: str
) -> None:
    response = invoke(form(), query=query)
    assert response["statusCode"] == 403
    assert "key" not in response["body"].lower() or "forbidden" in response["body"]
    assert all_items(ddb, table_name) == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"to": "2435678910", "from": "19998881234", "body": "x"}, "sms_message_id"),
        (form(sms_id="xyz"), "sms_message_id"),
        (form(sms_id="g" * 32), "sms_message_id"),
        ({"sms_message_id": "a" * 32, "from": "19998881234", "body": "x"}, "to"),
        ({"sms_message_id": "a" * 32, "to": "2435678910", "body": "x"}, "from"),
        (form() | {"from": " "}, "from"),
        (form() | {"to": "not a number"}, "to"),
    ],
)
def test_bad_fields_get_400_naming_the_field(
    invoke: Any, fields: dict[str, str], field: str, ddb: Any, table_name: str
) -> None:
    response = invoke(fields)
    assert response["statusCode"] == 400
    answer = json.loads(response["body"])
    assert answer["field"] == field
    assert answer["message"].startswith(f"{field}:")
    assert "Traceback" not in response["body"]
    assert all_items(ddb, table_name) == []


def test_body_of_exactly_1600_characters_is_accepted(invoke: Any) -> None:
    assert invoke(form(body="é" * 1600))["statusCode"] == 200


def test_json_instead_of_form_is_400(invoke: Any, ddb: Any, table_name: str) -> None:
    response = invoke(body=json.dumps(form()), headers={"Content-Type": "application/json"})
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["field"] == "content-type"
    assert all_items(ddb, table_name) == []


def test_invalid_utf8_is_stored_with_replacement_characters(
    invoke: Any, ddb: Any, table_name: str
) -> None:
    # GIVEN a body with bytes that are not UTF-8 (a real SMS must never be lost to content)
    raw = b"sms_message_id=" + b"a" * 32 + b"&to=2435678910&from=19998881234&body=%ff%fe"
    response = invoke(body=raw, base64_body=True)
    # THEN it is stored, the bad bytes replaced
    assert response["statusCode"] == 200
    stored = get_message(ddb, table_name, "a" * 32)
    assert stored is not None and stored["body"]["S"] == "\ufffd\ufffd"


def test_repeated_field_is_400(invoke: Any) -> None:
    raw = "sms_message_id=" + "a" * 32 + "&to=2435678910&to=2435678911&from=19998881234&body=x"
    response = invoke(body=raw)
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["field"] == "to"


def test_same_webhook_twice_gives_same_xml_and_one_record(
    invoke: Any, rules_file: Any, ddb: Any, table_name: str
) -> None:
    # GIVEN a default reply, so the answer has content and a reply record
    rules_file("default_reply: 'Thanks {from}'\n")
    first = invoke(form(sms_id="b" * 32))
    # WHEN Plum retries the same webhook
    second = invoke(form(sms_id="b" * 32))
    # THEN the answer is byte-identical and nothing new is stored
    assert first["statusCode"] == second["statusCode"] == 200
    assert first["body"] == second["body"]
    items = [i for i in all_items(ddb, table_name) if i["SK"]["S"] == "MSG"]
    assert sorted(i["type"]["S"] for i in items) == ["inbound", "reply"]


def test_keyword_rule_replies_to_sender_with_tracked_reply_record(
    invoke: Any, rules_file: Any, ddb: Any, table_name: str
) -> None:
    rules_file(
        "keywords:\n  - keywords: [hours, open]\n    reply: 'We are open 9-5. You wrote: {body}'\n"
        "default_reply: 'Sorry, unknown command'\n"
    )
    response = invoke(form(sms_id="c" * 32, body="  Hours please <&>"))
    replies = accepted_reply(response["body"])
    assert len(replies) == 1
    reply = replies[0]
    # A reply to the sender from the receiving number needs no to/from attributes.
    assert reply.to is None and reply.from_ is None
    assert reply.body == "We are open 9-5. You wrote:   Hours please <&>"
    reply_id = derived_id("c" * 32, "reply", 0)
    query = parse_qs(urlsplit(reply.result_url or "").query)
    assert reply.result_url.startswith("https://sms.example.test/plum/status?")  # type: ignore[union-attr]
    assert query == {"key": ["test-webhook-key-0123456789"], "ref": [reply_id]}
    stored = get_message(ddb, table_name, reply_id)
    assert stored is not None
    assert (stored["type"]["S"], stored["status"]["S"]) == ("reply", "queued")
    assert stored["to"]["S"] == SENDER and stored["from"]["S"] == NUMBER


def test_default_reply_when_no_keyword_matches(invoke: Any, rules_file: Any) -> None:
    rules_file('{"default_reply": "Got it, {from} -> {to}"}', name="rules.json")
    replies = accepted_reply(invoke(form(sms_id="d" * 32, body="what?"))["body"])
    assert [r.body for r in replies] == [f"Got it, {SENDER} -> {NUMBER}"]


@pytest.mark.parametrize(
    "stop", ["STOP", " stop ", "Unsubscribe", "stopall", "QUIT\n", "end", "Cancel"]
)
def test_opt_out_keywords_record_opt_out_and_answer_empty(
    invoke: Any, rules_file: Any, stop: str, ddb: Any, table_name: str
) -> None:
    rules_file("default_reply: 'hello'\n")
    response = invoke(form(sms_id="e" * 32, body=stop))
    assert accepted_reply(response["body"]) == []
    opt_out = ddb.get_item(
        TableName=table_name, Key={"PK": {"S": f"OPTOUT#{SENDER}"}, "SK": {"S": "OPTOUT"}}
    )
    assert opt_out["Item"]["message_id"]["S"] == "e" * 32


def test_opted_out_sender_gets_no_auto_reply_until_start(
    invoke: Any, rules_file: Any, ddb: Any, table_name: str
) -> None:
    rules_file("default_reply: 'hello'\nopt_in_reply: 'Welcome back'\n")
    invoke(form(sms_id="1" * 32, body="STOP"))
    # WHEN the opted-out number texts again THEN no reply goes to it
    assert accepted_reply(invoke(form(sms_id="2" * 32, body="hi"))["body"]) == []
    # WHEN it texts START THEN the opt-out is cleared and the opt-in reply is sent
    replies = accepted_reply(invoke(form(sms_id="3" * 32, body="start"))["body"])
    assert [r.body for r in replies] == ["Welcome back"]
    key = {"PK": {"S": f"OPTOUT#{SENDER}"}, "SK": {"S": "OPTOUT"}}
    assert "Item" not in ddb.get_item(TableName=table_name, Key=key)
    assert [r.body for r in accepted_reply(invoke(form(sms_id="4" * 32, body="hi"))["body"])] == [
        "hello"
    ]


def test_help_answers_configured_help_text(invoke: Any, rules_file: Any) -> None:
    rules_file("help_text: 'Acme: reply STOP to opt out'\n")
    replies = accepted_reply(invoke(form(sms_id="5" * 32, body="help"))["body"])
    assert [r.body for r in replies] == ["Acme: reply STOP to opt out"]


def test_group_forwarding_like_plums_example(invoke: Any, rules_file: Any) -> None:
    rules_file(
        "groups:\n  - name: team\n    number: '+12435678910'\n"
        "    members: ['+19998881234', '+19998881235', '+19998881236']\n"
    )
    replies = accepted_reply(
        invoke(form(sms_id="6" * 32, body="Meet at 5 & bring <snacks>"))["body"]
    )
    assert sorted(r.to or "" for r in replies) == ["19998881235", "19998881236"]
    assert {r.body for r in replies} == {f"{SENDER}: Meet at 5 & bring <snacks>"}
    # A non-member gets an empty reply.
    outsider = form(sms_id="7" * 32) | {"from": "19998880000"}
    assert accepted_reply(invoke(outsider)["body"]) == []


def test_user_hook_decides_replies(
    invoke: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_sms_hook.py").write_text(
        "def on_inbound(sms):\n"
        "    if sms.body == 'pass':\n        return None\n"
        "    if sms.body == 'boom':\n        raise RuntimeError('user bug')\n"
        "    return [{'to': '+15550001111', 'from': sms.to, 'body': 'fwd: ' + sms.body}]\n"
    )
    (tmp_path / "rules.yaml").write_text("default_reply: 'default'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("REPLY_HOOK", "my_sms_hook:on_inbound")
    monkeypatch.setenv("RULES_FILE", str(tmp_path / "rules.yaml"))
    replies = accepted_reply(invoke(form(sms_id="8" * 32, body="hello"))["body"])
    assert [(r.to, r.body) for r in replies] == [("15550001111", "fwd: hello")]
    # None falls through to the rules; a failing hook does too, without a 500.
    assert [r.body for r in accepted_reply(invoke(form(sms_id="9" * 32, body="pass"))["body"])] == [
        "default"
    ]
    boom = invoke(form(sms_id="f" * 32, body="boom"))
    assert boom["statusCode"] == 200
    assert [r.body for r in accepted_reply(boom["body"])] == ["default"]


def test_a_retried_webhook_does_not_run_the_hook_again(
    invoke: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ddb: Any, table_name: str
) -> None:
    # GIVEN a hook with a side effect: it counts its calls in a file
    calls = tmp_path / "calls.txt"
    (tmp_path / "counting_hook.py").write_text(
        "from pathlib import Path\n"
        f"CALLS = Path({str(calls)!r})\n"
        "def on_inbound(sms):\n"
        "    CALLS.write_text(CALLS.read_text() + 'x' if CALLS.exists() else 'x')\n"
        "    return [{'to': sms.from_, 'from': sms.to, 'body': 'ticket opened'}]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("REPLY_HOOK", "counting_hook:on_inbound")
    # WHEN Plum delivers the same webhook three times (retries after timeouts)
    answers = [invoke(form(sms_id="d" * 32, body="my order is late")) for _ in range(3)]
    # THEN the hook ran once, and every answer is the first one
    assert calls.read_text() == "x"
    assert len({a["body"] for a in answers}) == 1
    assert [r.body for r in accepted_reply(answers[0]["body"])] == ["ticket opened"]
    stored = sorted(i["type"]["S"] for i in all_items(ddb, table_name) if "type" in i)
    assert stored == ["inbound", "reply"]


def test_a_retried_webhook_first_answered_with_no_reply_gets_the_empty_reply_again(
    invoke: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ddb: Any, table_name: str
) -> None:
    # GIVEN a hook that answers nothing the first time and a reply afterwards
    calls = tmp_path / "calls.txt"
    (tmp_path / "late_hook.py").write_text(
        "from pathlib import Path\n"
        f"CALLS = Path({str(calls)!r})\n"
        "def on_inbound(sms):\n"
        "    first = not CALLS.exists()\n"
        "    CALLS.write_text('x')\n"
        "    return [] if first else [{'to': sms.from_, 'from': sms.to, 'body': 'late'}]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("REPLY_HOOK", "late_hook:on_inbound")
    # WHEN Plum delivers the same webhook twice
    first, second = (invoke(form(sms_id="e" * 32, body="hi")) for _ in range(2))
    # THEN both answers are the same valid, empty reply document
    assert first["statusCode"] == second["statusCode"] == 200
    assert first["body"] == second["body"]
    assert accepted_reply(second["body"]) == []
    # AND the stored row keeps no answer XML, no copy of its id, no second timestamp,
    item = get_message(ddb, table_name, "e" * 32)
    assert item is not None
    assert not {"reply_xml", "sms_message_id", "updated_at"} & set(item)
    # yet the log reads them back (inferred on read)
    shown = DynamoMessageStore(table_name, ddb).get("e" * 32)
    assert shown.sms_message_id == "e" * 32
    assert shown.updated_at == shown.created_at


def test_invalid_rules_file_fails_cold_start_with_clear_error(
    rules_file: Any, load_function: Any
) -> None:
    rules_file("keywords:\n  - keywords: [STOP]\n    reply: 'x {name}'\n")
    with pytest.raises(ConfigurationError) as info:
        load_function("inbound_sms")
    message = str(info.value)
    assert "RULES_FILE" in message and "keywords.0.keywords" in message and "{name}" in message


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=400) | st.text(max_size=300).map(str.encode), b64=st.booleans())
def test_any_form_body_gives_200_or_400_never_500(invoke: Any, raw: bytes, b64: bool) -> None:
    response = (
        invoke(body=raw, base64_body=True)
        if b64 or not raw.isascii()
        else invoke(body=raw.decode())
    )
    assert response["statusCode"] in {200, 400}
    if response["statusCode"] == 200:
        etree.fromstring(response["body"].encode())


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.text(max_size=1600))
def test_any_unicode_body_is_stored_and_echoed_as_valid_xml(
    invoke: Any, rules_file: Any, body: str
) -> None:
    rules_file("default_reply: '{body}'\n")
    # A new sender each time: one sender's auto-replies are capped per hour.
    sender = f"1999{uuid.uuid4().int % 10**7:07d}"
    response = invoke(form(sms_id=uuid.uuid4().hex, body=body) | {"from": sender})
    assert response["statusCode"] == 200
    replies = accepted_reply(response["body"])
    found = intent(body)
    # carrier keywords have their own answers; a text mentioning STOP is for a person
    if body.strip() and found.kind is None and not found.review:
        assert replies[0].body == xml_safe(body)


def test_shipped_rules_file_is_valid_and_answers(
    invoke: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the rules file deployed with the function (the template sets RULES_FILE=rules.yaml)
    monkeypatch.setenv("RULES_FILE", "rules.yaml")
    # WHEN a customer texts HOURS THEN the shipped keyword rule answers
    replies = accepted_reply(invoke(form(sms_id="0" * 32, body="hours?"))["body"])
    assert len(replies) == 1 and "9am to 5pm" in replies[0].body
