"""Sending and delivery status through the local stack and the Plum simulator, over HTTP.

The simulator duplicates, reorders and drops callbacks (see conftest): every message must
still end in its final status with a complete history.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

pytestmark = pytest.mark.e2e
FINAL = {"delivered", "undelivered", "failed"}


def phone() -> str:
    """A fresh phone number per test (tests never share data)."""
    return "+1999" + str(uuid.uuid4().int)[:7]


def statuses(message: dict[str, Any]) -> list[str]:
    return [entry["status"] for entry in message["history"]]


def assert_history_complete(stack: Any, message: dict[str, Any]) -> None:
    """Every status callback that reached the bundle is in the message's history."""
    history = set(statuses(message))
    delivered = {
        c["status"]
        for c in stack.sim.callbacks()
        if c["sms_message_id"] == message["sms_message_id"] and c["outcome"] == "sent"
    }
    assert delivered <= history, (delivered, history)


def test_send_now_reaches_the_phone_and_ends_delivered_with_full_history(stack: Any) -> None:
    to = phone()
    created = stack.api_json(
        "POST", "messages", {"to": to, "from": stack.sms_number, "body": "Your order shipped"}
    )
    assert created["status"] == "scheduled" and created["segments"] == 1
    message = stack.wait_for_status(created["id"], FINAL)
    assert message["status"] == "delivered"
    assert message["sms_message_id"]
    history = statuses(message)
    # "sent" may be a dropped callback; the rest is always there.
    for expected in ("scheduled", "sending", "queued", "delivered"):
        assert expected in history
    assert history.index("queued") < history.index("delivered")
    assert_history_complete(stack, message)
    inbox = stack.sim.wait_for_inbox(to, count=1)
    assert inbox[0]["body"] == "Your order shipped" and inbox[0]["from"] == stack.sms_number


def test_many_sends_all_end_delivered_exactly_once_despite_callback_faults(stack: Any) -> None:
    recipients = [phone() for _ in range(8)]
    ids = [
        stack.api_json("POST", "messages", {"to": to, "from": stack.sms_number, "body": f"n{i}"})[
            "id"
        ]
        for i, to in enumerate(recipients)
    ]
    for message_id in ids:
        message = stack.wait_for_status(message_id, FINAL, timeout=40)
        assert message["status"] == "delivered"
        assert statuses(message).count("delivered") == 1
        assert_history_complete(stack, message)
    for i, to in enumerate(recipients):
        assert [m["body"] for m in stack.sim.inbox(to)] == [f"n{i}"]


def test_scheduled_send_waits_until_due(stack: Any) -> None:
    to = phone()
    due = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
    created = stack.api_json(
        "POST", "messages", {"to": to, "from": stack.sms_number, "body": "later", "send_at": due}
    )
    assert created["status"] == "scheduled"
    assert stack.sim.inbox(to) == []
    message = stack.wait_for_status(created["id"], FINAL, timeout=30)
    assert message["status"] == "delivered"
    sent_at = datetime.fromisoformat(
        next(e["at"] for e in message["history"] if e["status"] == "sending")
    )
    assert sent_at >= datetime.fromisoformat(created["send_at"])


def test_cancelled_message_is_never_sent(stack: Any) -> None:
    to = phone()
    due = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    created = stack.api_json(
        "POST", "messages", {"to": to, "from": stack.sms_number, "body": "nope", "send_at": due}
    )
    cancelled = stack.api("DELETE", f"messages/{created['id']}")
    assert cancelled.status in {200, 204}
    assert stack.api_json("GET", f"messages/{created['id']}")["status"] == "cancelled"
    # Cancelling again is harmless; cancelling what already went to Plum is a conflict.
    assert stack.api("DELETE", f"messages/{created['id']}").status in {200, 204}
    sent = stack.api_json("POST", "messages", {"to": to, "from": stack.sms_number, "body": "go"})
    stack.wait_for_status(sent["id"], FINAL)
    assert stack.api("DELETE", f"messages/{sent['id']}").status == 409
    assert [m["body"] for m in stack.sim.inbox(to)] == ["go"]


def test_recurring_send_creates_its_next_occurrence(stack: Any) -> None:
    to = phone()
    created = stack.api_json(
        "POST",
        "messages",
        {
            "to": to,
            "from": stack.sms_number,
            "body": "daily tip",
            "time_zone": "America/New_York",
            "recurrence": {"frequency": "daily", "count": 3},
        },
    )
    stack.wait_for_status(created["id"], FINAL, timeout=30)
    page = stack.api_json("GET", f"messages?number={to.replace('+', '%2B')}&status=scheduled")
    upcoming = page["items"]
    assert len(upcoming) == 1
    next_due = datetime.fromisoformat(upcoming[0]["send_at"])
    first_due = datetime.fromisoformat(created["send_at"])
    assert timedelta(hours=22) < next_due - first_due < timedelta(hours=26)


def test_quiet_hours_move_the_send_to_the_end_of_the_window(stack: Any) -> None:
    to = phone()
    now = datetime.now(UTC)
    start = (now - timedelta(hours=1)).strftime("%H:%M")
    end = (now + timedelta(hours=2)).strftime("%H:%M")
    created = stack.api_json(
        "POST",
        "messages",
        {
            "to": to,
            "from": stack.sms_number,
            "body": "not at night",
            "quiet_hours": {"start": start, "end": end, "time_zone": "UTC"},
        },
    )
    due = datetime.fromisoformat(created["send_at"])
    assert timedelta(hours=1, minutes=58) < due - now < timedelta(hours=2, minutes=1)


def test_stop_suppresses_pending_sends_and_refuses_new_ones(stack: Any) -> None:
    to = phone()
    due = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    pending = stack.api_json(
        "POST", "messages", {"to": to, "from": stack.sms_number, "body": "promo", "send_at": due}
    )
    stack.sim.send_text(to, stack.sms_number, "STOP")
    assert (
        stack.wait_for_status(pending["id"], {"suppressed"}, timeout=10)["status"] == "suppressed"
    )
    refused = stack.api("POST", "messages", {"to": to, "from": stack.sms_number, "body": "more"})
    assert refused.status == 400
    assert "opted out" in json.loads(refused.data)["message"]


def test_card_numbers_are_refused(stack: Any) -> None:
    refused = stack.api(
        "POST",
        "messages",
        {"to": phone(), "from": stack.sms_number, "body": "card 4111 1111 1111 1111"},
    )
    assert refused.status == 400
    assert json.loads(refused.data)["field"] == "body"


def test_idempotency_key_creates_one_message(stack: Any) -> None:
    to = phone()
    key = uuid.uuid4().hex
    body = {"to": to, "from": stack.sms_number, "body": "once"}
    first = stack.api_json("POST", "messages", body, **{"Idempotency-Key": key})
    second = stack.api_json("POST", "messages", body, **{"Idempotency-Key": key})
    assert first["id"] == second["id"]
    stack.wait_for_status(first["id"], FINAL)
    assert len(stack.sim.inbox(to)) == 1
