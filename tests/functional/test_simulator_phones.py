"""Simulated phones end to end: a phone texts in, a test Application URL answers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
import urllib3
from lxml import etree

from plumsms_local.simulator import (
    Delays,
    PlumSimulator,
    SimulatorClient,
    SimulatorConfig,
    SimulatorError,
)
from plumsms_local.simulator.testing import Answer, RecordedRequest, RecordingServer

USER, PASSWORD = "acme", "s3cret"
ACCOUNT, OTHER_ACCOUNT = "+12435678910", "+12435678911"
PHONE, FRIEND = "+19998881234", "+19998885678"
LANDLINE = "+12025550100"


def reply_xml(*messages: tuple[str, dict[str, str]]) -> bytes:
    """A Plum reply document, built with lxml: (body, attributes) per <sms_message>."""
    root = etree.Element("reply")
    for body, attributes in messages:
        node = etree.SubElement(root, "sms_message", attributes)
        node.text = body
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def echo(request: RecordedRequest) -> Answer:
    """Reply to the sender with what it said."""
    return 200, "text/xml", reply_xml((f"You said: {request.form['body']}", {}))


@pytest.fixture
def app() -> Iterator[RecordingServer]:
    with RecordingServer(echo) as server:
        yield server


@pytest.fixture
def sim(app: RecordingServer) -> Iterator[PlumSimulator]:
    config = SimulatorConfig(
        username=USER,
        password=PASSWORD,
        sms_numbers=(ACCOUNT, OTHER_ACCOUNT),
        landlines=frozenset({LANDLINE}),
        delays=Delays(sent_seconds=0.005, final_seconds=0.005),
        seed=1,
    )
    with PlumSimulator(config) as server:
        SimulatorClient(server.base_url).set_application_url(ACCOUNT, app.url("/plum/inbound"))
        yield server


@pytest.fixture
def client(sim: PlumSimulator) -> SimulatorClient:
    return SimulatorClient(sim.base_url)


def queue_to(sim: PlumSimulator, to: str) -> dict[str, object]:
    response = urllib3.request(
        "POST",
        f"{sim.api_url}sms/queue.json",
        body=urlencode({"to": to, "from": ACCOUNT, "body": "promo"}),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            **urllib3.make_headers(basic_auth=f"{USER}:{PASSWORD}"),
        },
    )
    data: dict[str, object] = json.loads(response.data)
    return data


def test_inbound_is_posted_like_plum_and_the_reply_reaches_the_phone(
    client: SimulatorClient, app: RecordingServer
) -> None:
    # WHEN a phone texts the account's number
    outcome = client.send_text(PHONE, "2435678910", "Hello <there> & co")
    # THEN Plum POSTs the four documented fields, form-encoded
    [posted] = app.requests
    assert posted.method == "POST"
    assert posted.path == "/plum/inbound"
    assert posted.content_type == "application/x-www-form-urlencoded"
    assert posted.form == {
        "sms_message_id": outcome["sms_message_id"],
        "to": "2435678910",
        "from": "19998881234",
        "body": "Hello <there> & co",
    }
    assert re.fullmatch(r"[0-9a-f]{32}", outcome["sms_message_id"])
    assert outcome["forwarded"] is True
    assert outcome["reply"]["accepted"] is True
    assert outcome["reply"]["warnings"] == []
    # AND the reply is delivered to the sender, from the number it texted
    [entry] = client.wait_for_inbox(PHONE)
    assert (entry["from"], entry["body"]) == (ACCOUNT, "You said: Hello <there> & co")
    assert entry["sms_message_ids"] == outcome["reply"]["sms_message_ids"]
    kinds = {m["sms_message_id"]: (m["type"], m["status"]) for m in client.messages()}
    assert kinds[outcome["sms_message_id"]] == ("inbound", "received")
    [reply_id] = outcome["reply"]["sms_message_ids"]
    assert kinds[reply_id][0] == "reply"


def test_reply_attributes_address_others_and_get_callbacks(
    sim: PlumSimulator, client: SimulatorClient, app: RecordingServer
) -> None:
    with RecordingServer() as receiver:
        app.responder = lambda request: (
            200,
            "text/xml; charset=utf-8",
            reply_xml(
                ("to the group", {"to": "19998885678", "from": "2435678911"}),
                ("tracked", {"result_url": receiver.url("/status")}),
            ),
        )
        outcome = client.send_text(PHONE, ACCOUNT, "hi all")
        assert len(outcome["reply"]["sms_message_ids"]) == 2
        [to_friend] = client.wait_for_inbox(FRIEND)
        assert (to_friend["from"], to_friend["body"]) == (OTHER_ACCOUNT, "to the group")
        [to_sender] = client.wait_for_inbox(PHONE)
        assert (to_sender["from"], to_sender["body"]) == (ACCOUNT, "tracked")
        callbacks = receiver.wait_for(3)
        assert [c.form["status"] for c in callbacks] == ["queued", "sent", "delivered"]
        assert {c.form["sms_message_id"] for c in callbacks} == {to_sender["sms_message_id"]}


def test_an_empty_reply_sends_nothing(client: SimulatorClient, app: RecordingServer) -> None:
    app.responder = lambda request: (200, "text/xml", b'<?xml version="1.0"?>\n<reply/>')
    outcome = client.send_text(PHONE, ACCOUNT, "hi")
    assert outcome["reply"]["accepted"] is True
    assert outcome["reply"]["sms_message_ids"] == []
    assert [m["type"] for m in client.messages()] == ["inbound"]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (
            (200, "text/xml", b'<?xml version="1.0"?><reply><sms_message>oops</reply>'),
            "well-formed",
        ),
        ((200, "text/xml", b'<?xml version="1.0"?><response/>'), "reply schema"),
        ((200, "text/xml", b"<reply/>"), "prologue"),
        ((500, "text/xml", reply_xml(("hi", {}))), "HTTP 500"),
        ((302, "text/xml", reply_xml(("hi", {}))), "HTTP 302"),
    ],
)
def test_an_invalid_answer_is_reported_recorded_and_not_sent(
    client: SimulatorClient, app: RecordingServer, answer: Answer, error: str
) -> None:
    app.responder = lambda request: answer
    outcome = client.send_text(PHONE, ACCOUNT, "hi")
    assert outcome["forwarded"] is True
    assert outcome["reply"]["accepted"] is False
    assert error in outcome["reply"]["error"]
    [inbound] = client.messages()
    assert inbound["type"] == "inbound"
    assert inbound["reply_error"] == outcome["reply"]["error"]
    assert client.inbox(PHONE) == []


PERMISSIVE_XSD = b"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:element name="reply"><xs:complexType><xs:sequence>
    <xs:any processContents="skip" minOccurs="0" maxOccurs="unbounded"/>
  </xs:sequence><xs:anyAttribute processContents="skip"/></xs:complexType></xs:element>
</xs:schema>"""


def test_the_simulator_checks_replies_with_its_own_schema_not_the_bundles(
    client: SimulatorClient, app: RecordingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the bundle's reply schema guessed wrong, accepting any element and attribute
    permissive = etree.XMLSchema(etree.fromstring(PERMISSIVE_XSD))
    monkeypatch.setattr("plumsms.domain.replyxml.reply_schema", lambda: permissive)
    # (and wherever a module may have imported it by name)
    monkeypatch.setattr(
        "plumsms_local.simulator.engine.reply_schema", lambda: permissive, raising=False
    )
    # WHEN an Application URL answers with what Plum's own description does not allow
    app.responder = lambda request: (
        200, "text/xml", reply_xml(("hi", {"priority": "high"}), ("there", {"cc": PHONE}))
    )  # fmt: skip
    outcome = client.send_text(PHONE, ACCOUNT, "hi")
    # THEN the simulator still refuses it: its schema is its own reading of Plum's docs
    assert outcome["reply"]["accepted"] is False
    assert "reply schema" in outcome["reply"]["error"]
    assert client.inbox(PHONE) == []


def test_a_non_xml_content_type_is_a_warning(client: SimulatorClient, app: RecordingServer) -> None:
    app.responder = lambda request: (200, "text/plain", reply_xml(("hi", {})))
    outcome = client.send_text(PHONE, ACCOUNT, "hi")
    assert outcome["reply"]["accepted"] is True
    assert "text/plain" in outcome["reply"]["warnings"][0]


def test_without_application_url_nothing_is_forwarded(
    client: SimulatorClient, app: RecordingServer
) -> None:
    outcome = client.send_text(PHONE, OTHER_ACCOUNT, "hi")
    assert (outcome["forwarded"], outcome["application_url"]) == (False, None)
    assert app.requests == []
    assert [m["type"] for m in client.messages()] == ["inbound"]


def test_stop_unsubscribes_and_later_queues_fail(
    sim: PlumSimulator, client: SimulatorClient, app: RecordingServer
) -> None:
    # WHEN the phone texts STOP (any case, any spacing)
    outcome = client.send_text(PHONE, ACCOUNT, "  sToP ")
    # THEN Plum still forwards it, and the carrier blacklists the phone
    assert outcome["keyword"] == "opt_out"
    assert app.requests[0].form["body"] == "  sToP "
    assert client.unsubscribed() == [PHONE]
    # AND the one confirmation reply is delivered
    [confirmation] = client.wait_for_inbox(PHONE)
    assert confirmation["body"] == "You said:   sToP "
    # AND a later queue to that number fails with Plum's string
    refused = queue_to(sim, "19998881234")
    assert refused == {"status": "failure", "error": "Attempt to send to unsubscribed recipient"}
    # WHEN the phone texts START THEN sends work again
    client.send_text(PHONE, ACCOUNT, "start")
    assert client.unsubscribed() == []
    assert queue_to(sim, "19998881234")["status"] == "success"


@pytest.mark.parametrize("keyword", ["CANCEL", "end", "Quit", "STOPALL", "unsubscribe"])
def test_every_opt_out_keyword(client: SimulatorClient, keyword: str) -> None:
    client.send_text(PHONE, ACCOUNT, keyword)
    assert client.unsubscribed() == [PHONE]
    client.send_text(PHONE, ACCOUNT, "UNSTOP")
    assert client.unsubscribed() == []


def test_not_a_keyword_when_it_is_only_part_of_the_body(client: SimulatorClient) -> None:
    client.send_text(PHONE, ACCOUNT, "please stop texting")
    assert client.unsubscribed() == []


def test_help_is_answered_by_the_carrier_and_not_forwarded(
    client: SimulatorClient, app: RecordingServer
) -> None:
    outcome = client.send_text(PHONE, ACCOUNT, "Help")
    assert (outcome["forwarded"], outcome["keyword"]) == (False, "help")
    assert app.requests == []
    assert client.messages() == []
    [entry] = client.inbox(PHONE)
    assert (entry["from"], entry["source"]) == (ACCOUNT, "carrier")


def test_a_reply_to_a_landline_is_undelivered(
    client: SimulatorClient, app: RecordingServer
) -> None:
    app.responder = lambda request: (200, "text/xml", reply_xml(("hi", {"to": "12025550100"})))
    [reply_id] = client.send_text(PHONE, ACCOUNT, "hi")["reply"]["sms_message_ids"]
    message = client.wait_for_status(reply_id, {"undelivered"})
    assert [h["status"] for h in message["history"]] == ["queued", "undelivered"]
    assert client.inbox(LANDLINE) == []


def test_admin_errors(client: SimulatorClient) -> None:
    with pytest.raises(SimulatorError) as not_ours:
        client.send_text(PHONE, "+12025550199", "hi")
    assert not_ours.value.status == 400
    with pytest.raises(SimulatorError) as unknown_number:
        client.set_application_url("+12025550199", "http://127.0.0.1:1/")
    assert unknown_number.value.status == 404
    with pytest.raises(SimulatorError) as bad_url:
        client.set_application_url(ACCOUNT, "ftp://example.invalid/")
    assert bad_url.value.status == 400
    with pytest.raises(SimulatorError) as bad_phone:
        client.inbox("12")
    assert bad_phone.value.status == 400


def test_numbers_reset_and_wait_timeout(client: SimulatorClient, app: RecordingServer) -> None:
    assert [n["number"] for n in client.numbers()] == [ACCOUNT, OTHER_ACCOUNT]
    client.send_text(PHONE, ACCOUNT, "STOP")
    client.reset()
    assert client.messages() == [] and client.unsubscribed() == []
    assert client.inbox(PHONE) == [] and client.callbacks() == []
    # Application URLs are console settings: a reset keeps them
    assert client.numbers()[0]["application_url"] == app.url("/plum/inbound")
    with pytest.raises(TimeoutError, match="0 of 1"):
        client.wait_for_inbox(PHONE, timeout=0.05)
    health = client.health()
    assert (health["status"], health["seed"], health["messages"]) == ("ok", 1, 0)
