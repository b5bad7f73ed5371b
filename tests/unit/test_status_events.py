"""Change events: the documented detail, EventBridge batching and failures, the recorder."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError, EndpointConnectionError

from plumsms.adapters import events as events_module
from plumsms.adapters.events import (
    DETAIL_TYPE,
    SOURCE,
    EventBridgePublisher,
    RecordingPublisher,
    event_detail,
    publisher_for,
)
from plumsms.domain.status import StatusChange

AT = datetime(2026, 1, 15, 12, 0, 30, 250000, tzinfo=UTC)


def change(n: int = 0, state: str = "delivered") -> StatusChange:
    return StatusChange(
        message_id=f"{n:032x}",
        sms_message_id="f" * 32,
        type="outbound",
        to="+19998881234",
        from_="+12435678910",
        previous="sent",
        status=state,
        at=AT,
        source="plum-callback",
        queue_to_final_seconds=12.5,
    )


class StubEvents:
    """Answers put_events from a script of responses (or exceptions)."""

    def __init__(self, *script: Any) -> None:
        self.script = list(script)
        self.calls: list[list[dict[str, Any]]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(Entries)
        answer = self.script.pop(0) if self.script else None
        if isinstance(answer, Exception):
            raise answer
        return answer or {"FailedEntryCount": 0, "Entries": [{"EventId": "x"} for _ in Entries]}


def test_detail_matches_the_documented_schema() -> None:
    assert event_detail(change()) == {
        "version": "1",
        "message_id": "0" * 32,
        "sms_message_id": "f" * 32,
        "type": "outbound",
        "to": "+19998881234",
        "from": "+12435678910",
        "previous_status": "sent",
        "status": "delivered",
        "final": True,
        "at": "2026-01-15T12:00:30.250000Z",
        "source": "plum-callback",
        "queue_to_final_seconds": 12.5,
    }
    assert event_detail(change(state="sent"))["final"] is False


def test_entries_carry_source_detail_type_bus_and_time() -> None:
    client = StubEvents()
    assert EventBridgePublisher("my-bus", client).publish([change()]) == 0
    [entry] = client.calls[0]
    assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == (
        SOURCE,
        DETAIL_TYPE,
        "my-bus",
    )
    assert entry["Time"] == AT
    assert json.loads(entry["Detail"])["message_id"] == "0" * 32


def test_more_than_ten_changes_go_in_batches_of_ten() -> None:
    client = StubEvents()
    assert EventBridgePublisher("bus", client).publish([change(i) for i in range(23)]) == 0
    assert [len(c) for c in client.calls] == [10, 10, 3]


def test_rejected_entries_are_retried_once() -> None:
    partly = {
        "FailedEntryCount": 1,
        "Entries": [{"EventId": "1"}, {"ErrorCode": "ThrottlingException"}],
    }
    client = StubEvents(partly)
    assert EventBridgePublisher("bus", client).publish([change(1), change(2)]) == 0
    assert [json.loads(e["Detail"])["message_id"] for e in client.calls[1]] == [f"{2:032x}"]


def test_entries_rejected_twice_are_counted_not_raised() -> None:
    rejected = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure"}]}
    client = StubEvents(rejected, rejected)
    assert EventBridgePublisher("bus", client).publish([change()]) == 1
    assert len(client.calls) == 2


def test_unreachable_eventbridge_is_counted_not_raised() -> None:
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "PutEvents")
    assert EventBridgePublisher("bus", StubEvents(denied)).publish([change()]) == 1
    down = EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
    assert EventBridgePublisher("bus", StubEvents(down)).publish([change(1), change(2)]) == 2


def test_without_a_bus_events_are_recorded_in_memory() -> None:
    publisher = publisher_for(None)
    assert isinstance(publisher, RecordingPublisher)
    assert publisher.publish([change()]) == 0
    assert publisher.events[-1] == {
        "source": SOURCE,
        "detail-type": DETAIL_TYPE,
        "detail": event_detail(change()),
    }


def test_recorder_keeps_only_the_latest() -> None:
    recorder = RecordingPublisher(capacity=2)
    recorder.publish([change(i) for i in range(5)])
    assert [e["detail"]["message_id"] for e in recorder.events] == [f"{3:032x}", f"{4:032x}"]


def test_a_named_bus_gets_eventbridge() -> None:
    client = StubEvents()
    publisher = publisher_for("bus", client=client)
    assert isinstance(publisher, EventBridgePublisher) and publisher.client is client


def test_the_eventbridge_client_is_built_on_the_first_event(monkeypatch: Any) -> None:
    # GIVEN a named bus: most invocations of a function publish nothing
    built: list[str | None] = []
    stub = StubEvents()

    def events_client(endpoint_url: str | None = None) -> StubEvents:
        built.append(endpoint_url)
        return stub

    monkeypatch.setattr(events_module, "events_client", events_client)
    publisher = publisher_for("bus", "http://127.0.0.1:4010")
    # THEN wiring it costs no client; the first event builds it, on the given endpoint
    assert built == []
    publisher.publish([change()])
    publisher.publish([change(1)])
    assert built == ["http://127.0.0.1:4010"]
    assert len(stub.calls) == 2


def test_events_not_published_are_counted_as_a_metric(monkeypatch: Any) -> None:
    counted: list[tuple[str, float]] = []

    class Metrics:
        def add_metric(self, name: str, unit: str, value: float) -> None:
            counted.append((name, value))

    monkeypatch.setattr(events_module, "metrics", Metrics())
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "PutEvents")
    EventBridgePublisher("bus", StubEvents(denied)).publish([change(1), change(2)])
    EventBridgePublisher("bus", StubEvents()).publish([change(3)])
    assert counted == [("StatusEventsFailed", 2)]
