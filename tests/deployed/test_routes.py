"""Every route and schedule, answered by the built functions in the emulated account."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from .conftest import SMS_NUMBER, UNSUBSCRIBED_NUMBER, Stack
from .lambda_host import wait_until

FAR = (datetime.now(UTC) + timedelta(days=300)).replace(microsecond=0).isoformat()


def _status_of(stack: Stack, message_id: str) -> str:
    response = stack.request("GET", f"/messages/{message_id}")
    assert response.status == 200, response.body
    return str(response.json()["status"])


# -- the Application URL --------------------------------------------------------------------


def test_inbound_answers_the_shipped_rules_with_reply_xml(stack: Stack, phone: str) -> None:
    response = stack.inbound(phone, "HOURS?")
    assert response.status == 200, response.body
    assert response.headers["content-type"].startswith("text/xml")
    assert "We are open Monday to Friday" in response.text
    types = sorted(m["type"] for m in stack.messages(number=phone))
    assert len(types) == 2 and "inbound" in types


def test_inbound_form_body_base64_encoded_by_api_gateway(stack: Stack, phone: str) -> None:
    response = stack.inbound(phone, "open?", base64_body=True)
    assert response.status == 200, response.body
    assert "We are open" in response.text


def test_stop_start_and_help(stack: Stack, phone: str) -> None:
    stop = stack.inbound(phone, "STOP")
    assert stop.status == 200
    assert "<Message" not in stop.text  # the carrier confirms an opt-out, not the bundle
    opt_outs = stack.request("GET", "/opt-outs").json()["items"]
    assert phone in {o["number"] for o in opt_outs}
    refused = stack.api("POST", "/messages", {"to": phone, "from": SMS_NUMBER, "body": "promo"})
    assert refused.status == 400 and refused.json()["field"] == "to"

    start = stack.inbound(phone, "START")
    assert "You are subscribed again" in start.text
    assert phone not in {o["number"] for o in stack.request("GET", "/opt-outs").json()["items"]}
    assert "reply HOURS" in stack.inbound(phone, "HELP").text


def test_a_retried_webhook_gets_the_same_answer_and_no_second_record(
    stack: Stack, phone: str
) -> None:
    fields = {
        "sms_message_id": uuid.uuid4().hex,
        "from": phone,
        "to": SMS_NUMBER,
        "body": "HOURS",
        "request_timestamp": "1700000000",
    }
    first = stack.inbound_fields(fields)
    again = stack.inbound_fields(fields)
    assert first.status == again.status == 200
    assert first.body == again.body
    assert len([m for m in stack.messages(number=phone) if m["type"] == "inbound"]) == 1


def test_a_wrong_key_is_refused_and_nothing_is_stored(stack: Stack, phone: str) -> None:
    response = stack.inbound(phone, "HOURS", key="not-the-key-at-all-0000")
    assert response.status == 403
    assert stack.messages(number=phone) == []


# -- the Result URL -------------------------------------------------------------------------


def _send(stack: Stack, phone: str, **extra: Any) -> dict[str, Any]:
    response = stack.api(
        "POST", "/messages", {"to": phone, "from": SMS_NUMBER, "body": "Hi", **extra}
    )
    assert response.status == 201, response.body
    created: dict[str, Any] = response.json()
    return created


def test_send_now_reaches_plum_and_its_callbacks_come_back_through_the_result_url(
    stack: Stack, phone: str
) -> None:
    # GIVEN a send-now request WHEN the API wakes the dispatcher (asynchronous Invoke)
    message = _send(stack, phone)
    assert any(r["type"] == "Event" for r in stack.invoke_api.requests)
    stack.invoke_api.wait()
    # THEN Plum's callbacks, posted to the Result URL, walk the message to delivered
    final = wait_until(lambda: _status_of(stack, message["id"]) == "delivered", timeout=30)
    assert final, _status_of(stack, message["id"])
    history = [
        h["status"] for h in stack.request("GET", f"/messages/{message['id']}").json()["history"]
    ]
    assert history[0] == "scheduled" and history[-1] == "delivered" and "queued" in history
    assert any(
        path.startswith("/plum/status") and status == 200 for path, status in stack.gateway.seen
    )
    # A late report (Plum retries) never moves a delivered message back.
    shown = stack.request("GET", f"/messages/{message['id']}").json()
    late = stack.factory.form(
        f"/plum/status?key={stack.webhook_key}&ref={message['id']}",
        {"sms_message_id": shown["sms_message_id"], "status": "sent"},
    )
    assert stack.host.invoke(*late).result["statusCode"] == 200
    assert _status_of(stack, message["id"]) == "delivered"


def test_a_recurring_send_schedules_its_next_occurrence(stack: Stack, phone: str) -> None:
    start = datetime.now(UTC).replace(microsecond=0).isoformat()
    created = _send(
        stack,
        phone,
        send_at=start,
        recurrence={"frequency": "daily", "count": 3, "time_zone": "America/New_York"},
    )
    stack.invoke_api.wait()
    stack.scheduled("ScheduledSendFunction")
    pending = wait_until(lambda: [m for m in stack.messages(number=phone, status="scheduled")])
    assert pending and pending[0]["id"] != created["id"]


def test_a_number_plum_reports_unsubscribed_is_opted_out_with_its_pending_sends(
    stack: Stack,
) -> None:
    number = UNSUBSCRIBED_NUMBER
    later = _send(stack, number, send_at=FAR)
    _send(stack, number)
    stack.invoke_api.wait()
    stack.scheduled("ScheduledSendFunction")
    assert wait_until(lambda: _status_of(stack, later["id"]) == "suppressed")
    assert number in {o["number"] for o in stack.request("GET", "/opt-outs").json()["items"]}


def test_stop_suppresses_the_numbers_pending_sends(stack: Stack, phone: str) -> None:
    later = _send(stack, phone, send_at=FAR)
    assert stack.inbound(phone, "STOP").status == 200
    assert _status_of(stack, later["id"]) == "suppressed"


def test_the_log_pages_with_signed_cursors(stack: Stack, phone: str) -> None:
    for _ in range(3):
        stack.inbound(phone, "hello there")
    first = stack.request("GET", f"/messages?number={phone.replace('+', '%2B')}&limit=2").json()
    assert first["next_cursor"]
    second = stack.request(
        "GET", f"/messages?number={phone.replace('+', '%2B')}&limit=2&cursor={first['next_cursor']}"
    )
    assert second.status == 200, second.body
    ids = [m["id"] for m in first["items"] + second.json()["items"]]
    assert len(ids) == len(set(ids)) >= 3


def test_result_url_takes_form_and_json_and_keeps_orphans(stack: Stack) -> None:
    key = stack.webhook_key
    plum_id = uuid.uuid4().hex
    form = stack.factory.form(
        f"/plum/status?key={key}", {"sms_message_id": plum_id, "status": "delivered"}
    )
    answer = stack.host.invoke(*form)
    assert answer.result["statusCode"] == 200, answer.result
    assert "orphan" in answer.result["body"]

    function, event = stack.factory.json(
        "POST",
        f"/plum/status?key={key}",
        {"sms_message": {"sms_message_id": plum_id, "status": "sent"}},
    )
    assert stack.host.invoke(function, event).result["statusCode"] == 200


def test_result_url_with_a_wrong_key_is_refused(stack: Stack) -> None:
    function, event = stack.factory.form(
        "/plum/status?key=wrong-key-wrong-key-0",
        {"sms_message_id": uuid.uuid4().hex, "status": "sent"},
    )
    assert stack.host.invoke(function, event).result["statusCode"] == 403


# -- the management API ---------------------------------------------------------------------


def test_schedule_patch_cancel_list_export_and_stats(stack: Stack, phone: str) -> None:
    later = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    message = _send(stack, phone, send_at=later.isoformat())
    assert message["status"] == "scheduled"

    moved = (later + timedelta(hours=1)).isoformat()
    patched = stack.api(
        "PATCH", f"/messages/{message['id']}", {"send_at": moved, "body": "Changed"}
    )
    assert patched.status == 200, patched.body
    assert patched.json()["body"] == "Changed"

    cancelled = stack.request("DELETE", f"/messages/{message['id']}")
    assert cancelled.status == 200 and cancelled.json()["status"] == "cancelled"

    listed = stack.messages(number=phone, status="cancelled")
    assert [m["id"] for m in listed] == [message["id"]]
    assert message["id"] in {m["id"] for m in stack.messages(status="cancelled")}
    exported = stack.request(
        "GET", f"/messages/export?number={phone.replace('+', '%2B')}&format=jsonl"
    )
    assert exported.status == 200, exported.body
    assert message["id"] in exported.text
    stats = stack.request("GET", "/messages/stats")
    assert stats.status == 200 and isinstance(stats.json(), dict)


def test_pending_sends_list_in_send_order(stack: Stack, phone: str) -> None:
    # GIVEN two sends scheduled in the opposite order of their send times
    soon = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    later = _send(stack, phone, send_at=(soon + timedelta(hours=2)).isoformat())
    first = _send(stack, phone, send_at=soon.isoformat())
    # WHEN the scheduled list is asked in send order (the Due index, as the page does)
    answer = stack.request("GET", "/messages?status=scheduled&sort=send_at&order=asc&limit=1000")
    # THEN the sooner one comes first
    assert answer.status == 200, answer.body
    ids = [m["id"] for m in answer.json()["items"]]
    assert ids.index(first["id"]) < ids.index(later["id"])


def test_the_page_its_assets_and_the_api_document(stack: Stack) -> None:
    page = stack.request("GET", "/ui", iam_user=None)
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    asset = stack.request("GET", "/ui/app.js", iam_user=None)
    assert asset.status == 200
    document = stack.request("GET", "/openapi.json", iam_user=None)
    assert document.status == 200 and "/messages" in document.json()["paths"]
    assert stack.request("GET", "/api-docs", iam_user=None).status == 200


# -- the schedules --------------------------------------------------------------------------


def test_the_dispatcher_schedule_sends_what_is_due(stack: Stack, phone: str) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    message = _send(stack, phone, send_at=soon)
    wait_until(lambda: datetime.now(UTC).isoformat() > soon, timeout=5)
    run = stack.scheduled("ScheduledSendFunction")
    assert run.error is None, run.error
    assert wait_until(lambda: _status_of(stack, message["id"]) in {"queued", "sent", "delivered"})


def test_the_reconciler_schedule_runs(stack: Stack) -> None:
    run = stack.scheduled("ReconcilerFunction")
    assert run.error is None, run.error
    assert run.result["errors"] == 0
