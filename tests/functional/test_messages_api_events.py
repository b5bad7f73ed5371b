"""MessagesApiFunction invoked with the API Gateway events stored in events/."""

from __future__ import annotations

import json
from typing import Any

from plumsms.adapters import dispatch_trigger
from plumsms.adapters.dispatch_trigger import register_in_process


def test_sample_events_send_then_list_then_get(
    load_function: Any, event: Any, monkeypatch: Any, table_name: str
) -> None:
    # GIVEN the management API with send-now wired to a recorder instead of the dispatcher
    woken: list[dict[str, Any]] = []
    monkeypatch.setenv("SCHEDULED_SEND_FUNCTION", "ScheduledSendFunction")
    monkeypatch.setattr(dispatch_trigger, "_hooks", {})  # this test's hooks only
    register_in_process("ScheduledSendFunction", woken.append)
    api = load_function("messages_api")
    # WHEN the stored send event is invoked
    sent = api.invoke(event("messages_api_send"))
    # THEN a message is scheduled for now and the dispatcher is woken
    assert sent["statusCode"] == 201, sent["body"]
    created = json.loads(sent["body"])
    assert (created["status"], created["to"], created["segments"]) == (
        "scheduled",
        "+19998881234",
        1,
    )
    assert len(woken) == 1
    # AND the same event again (same Idempotency-Key) creates nothing new
    again = json.loads(api.invoke(event("messages_api_send"))["body"])
    assert again["id"] == created["id"]
    # WHEN the stored list event is invoked THEN it finds the message by number
    listed = api.invoke(event("messages_api_list"))
    assert listed["statusCode"] == 200
    assert [m["id"] for m in json.loads(listed["body"])["items"]] == [created["id"]]
    # WHEN the stored get event asks for an id we do not have THEN 404
    missing = api.invoke(event("messages_api_get"))
    assert missing["statusCode"] == 404
    # AND the same event for the created id returns it with its history
    found_event = event("messages_api_get")
    found_event["pathParameters"] = {"id": created["id"]}
    found_event["path"] = f"/messages/{created['id']}"
    found = json.loads(api.invoke(found_event)["body"])
    assert found["id"] == created["id"]
    assert [h["status"] for h in found["history"]] == ["scheduled"]
