"""Plum's envelope in JSON and XML, and the parsing of the GET services' filters."""

from __future__ import annotations

import json

import pytest
from lxml import etree

from plumsms_local.simulator import envelope, inferred, queries
from plumsms_local.simulator.engine import PlumFailure
from plumsms_local.simulator.state import Kind, MessageQuery, SimMessage

RESOURCE = {
    "sms_message_id": "0" * 32,
    "to": "19998881234",
    "from": "2435678910",
    "body": "Tom & Jerry <3",
    "request_timestamp": 1700000000,
    "result_url": "",
    "status": "queued",
}


def test_json_success_has_status_error_and_result() -> None:
    rendered = envelope.success("queue", "json", {"sms_messages": [RESOURCE]})
    assert rendered.content_type == "application/json"
    assert json.loads(rendered.body) == {
        "status": "success",
        "error": "",
        "result": {"sms_messages": [RESOURCE]},
    }


def test_json_failure_has_no_result() -> None:
    rendered = envelope.failure("queue", "json", "Invalid 'to' phone number")
    assert json.loads(rendered.body) == {"status": "failure", "error": "Invalid 'to' phone number"}


def test_xml_success_is_rooted_at_the_service_and_escapes_text() -> None:
    rendered = envelope.success("queue", "xml", {"sms_messages": [RESOURCE, RESOURCE]})
    assert rendered.content_type.startswith("text/xml")
    root = etree.fromstring(rendered.body)
    assert root.tag == "queue"
    assert [child.tag for child in root] == ["status", "error", "result"]
    assert root.findtext("status") == "success"
    error = root.find("error")
    assert error is not None and error.text is None and len(error) == 0
    messages = root.findall("result/sms_messages/sms_message")
    assert len(messages) == 2
    assert [child.tag for child in messages[0]] == list(RESOURCE)
    assert messages[0].findtext("body") == "Tom & Jerry <3"
    assert messages[0].findtext("request_timestamp") == "1700000000"


def test_xml_failure_has_no_result_and_survives_control_characters() -> None:
    root = etree.fromstring(envelope.failure("status", "xml", "bad\x01thing").body)
    assert root.tag == "status"
    assert root.findtext("status") == "failure"
    assert root.findtext("error") == "bad\ufffdthing"
    assert root.find("result") is None


def test_query_defaults() -> None:
    query = queries.message_query({})
    assert query == MessageQuery(offset=0, limit=50, sort="desc", type="all")
    conversation = queries.message_query(
        {"account_phone_number": "2435678910", "customer_phone_number": "19998881234"},
        conversation=True,
    )
    assert conversation.sort == "asc"
    assert conversation.between == ("+12435678910", "+19998881234")


def test_query_reads_every_inferred_name() -> None:
    names = inferred.QUERY_PARAMS
    query = queries.message_query(
        {
            names["skip"]: "5",
            names["max"]: "1000",
            names["sort"]: "ASC",
            names["start"]: "10",
            names["end"]: "20",
            names["type"]: "inbound",
            names["phone_number"]: "19998881234",
            names["number_side"]: "customer",
        }
    )
    assert query == MessageQuery(
        offset=5,
        limit=1000,
        sort="asc",
        start=10,
        end=20,
        type="inbound",
        phone_number="+19998881234",
        number_side="customer",
    )


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"limit": "49"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"offset": "x"}, "offset"),
        ({"sort": "up"}, "sort"),
        ({"type": "reply"}, "type"),
        ({"phone_number": "12"}, "phone_number"),
        ({"phone_number_type": "left"}, "phone_number_type"),
        ({"start": "yesterday"}, "start"),
    ],
)
def test_bad_parameters_are_named(params: dict[str, str], name: str) -> None:
    with pytest.raises(PlumFailure, match=f"Invalid '{name}' parameter"):
        queries.message_query(params)


def test_conversation_needs_both_numbers() -> None:
    with pytest.raises(PlumFailure, match="Invalid 'customer_phone_number' parameter"):
        queries.message_query({"account_phone_number": "2435678910"}, conversation=True)


def _message(kind: Kind, to: str, from_: str, at: float) -> SimMessage:
    return SimMessage("a" * 32, 1, kind, to, from_, "hi", at)


def test_filters_match_direction_side_and_time() -> None:
    inbound = _message(Kind.INBOUND, "+12435678910", "+19998881234", 100)
    reply = _message(Kind.REPLY, "+19998881234", "+12435678910", 200)
    assert MessageQuery(type="outbound").matches(reply)
    assert not MessageQuery(type="outbound").matches(inbound)
    assert MessageQuery(phone_number="+19998881234", number_side="customer").matches(inbound)
    assert MessageQuery(phone_number="+19998881234", number_side="customer").matches(reply)
    assert not MessageQuery(phone_number="+19998881234", number_side="account").matches(reply)
    assert MessageQuery(phone_number="+12435678910").matches(reply)
    assert MessageQuery(start=100, end=100).matches(inbound)
    assert not MessageQuery(start=101).matches(inbound)
    assert not MessageQuery(end=199).matches(reply)


def test_resource_uses_plum_digit_forms_by_side() -> None:
    inbound = _message(Kind.INBOUND, "+12435678910", "+19998881234", 100.9)
    assert inbound.resource() == {
        "sms_message_id": "a" * 32,
        "to": "2435678910",
        "from": "19998881234",
        "body": "hi",
        "request_timestamp": 100,
        "result_url": "",
        "status": "queued",
    }
    outbound = _message(Kind.OUTBOUND, "+19998881234", "+12435678910", 100)
    assert (outbound.resource()["to"], outbound.resource()["from"]) == (
        "19998881234",
        "2435678910",
    )
