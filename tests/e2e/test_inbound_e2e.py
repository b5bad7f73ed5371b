"""The inbound flow as a user runs it: `make run`, a simulated phone, the bundle's answer."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from plumsms_local.simulator.testing import accepted_reply

pytestmark = pytest.mark.e2e
PHONE = "+19995550100"


def test_plum_style_post_gets_valid_reply_xml_and_is_logged(stack: Any) -> None:
    # GIVEN the running stack WHEN Plum POSTs an inbound SMS to the Application URL
    sms_id = uuid.uuid4().hex
    fields = {"sms_message_id": sms_id, "to": "2435678910", "from": "19995550101", "body": "ping 1"}
    response = stack.post_form(f"plum/inbound?key={stack.webhook_key}", fields)
    # THEN the answer is schema-valid Reply XML with the keyword reply
    assert response.status == 200
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    replies = accepted_reply(response.data)
    assert [r.body for r in replies] == ["pong ping 1"]
    assert replies[0].result_url is not None and replies[0].result_url.startswith(stack.url)
    # AND the message log holds it
    stored = stack.api("GET", f"messages/{sms_id}")
    assert stored.status == 200, stored.data
    message = json.loads(stored.data)
    assert (message["type"], message["status"], message["from"]) == (
        "inbound",
        "received",
        "+19995550101",
    )


def test_wrong_key_is_refused(stack: Any) -> None:
    fields = {
        "sms_message_id": uuid.uuid4().hex,
        "to": "2435678910",
        "from": "19995550101",
        "body": "x",
    }
    assert stack.post_form("plum/inbound?key=nope", fields).status == 403


def test_simulated_phone_texts_in_and_receives_the_auto_reply(stack: Any) -> None:
    # GIVEN a phone WHEN it texts the SMS number through the simulator (Plum's side)
    result = stack.sim.send_text(PHONE, stack.sms_number, "PING there")
    # THEN the simulator forwarded it, validated the bundle's XML, and the phone gets the reply
    assert result["forwarded"] is True and result["reply"]["accepted"] is True
    inbox = stack.sim.wait_for_inbox(
        PHONE, count=1, predicate=lambda m: m["body"].startswith("pong")
    )
    assert inbox[0]["body"] == "pong PING there"
    assert inbox[0]["from"] == stack.sms_number


def test_stop_from_a_phone_opts_out_in_the_bundle_and_at_the_carrier(stack: Any) -> None:
    phone = "+19995550102"
    stack.sim.send_text(phone, stack.sms_number, "STOP")
    assert phone in stack.sim.unsubscribed()
    # The bundle no longer auto-replies to that phone.
    result = stack.sim.send_text(phone, stack.sms_number, "ping")
    assert result["reply"]["sms_message_ids"] == []
    # START clears both.
    stack.sim.send_text(phone, stack.sms_number, "START")
    assert phone not in stack.sim.unsubscribed()
    result = stack.sim.send_text(phone, stack.sms_number, "ping")
    assert len(result["reply"]["sms_message_ids"]) == 1
