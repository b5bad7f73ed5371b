"""ResultUrlFunction invoked with API Gateway events against the embedded DynamoDB server."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plumsms.adapters.dynamodb import keys
from plumsms.adapters.dynamodb.statuses import DynamoStatusLog, orphan_pk
from plumsms.adapters.dynamodb.store import DynamoMessageStore
from plumsms.adapters.events import RecordingPublisher
from plumsms.domain import status
from plumsms.domain.models import HistoryEntry, Message, MessageType, Status
from plumsms.usecases.status import StatusResult, StatusService
from plumsms_local.lambda_runtime import LocalFunction
from tests.factories import put_message

WEBHOOK_KEY = "test-webhook-key-0123456789"
FIXTURE_REF = "0f2e4c6a8b1d3f5e7a9c0b2d4f6e8a1c"
FIXTURE_PLUM_ID = "5a1f0e1f2b3a4d5e8f9a0b1c2d3e4f51"
CUSTOMER = "+19998881234"
ACCOUNT = "+12435678910"


def new_id() -> str:
    return uuid.uuid4().hex


def outbound(
    message_id: str | None = None,
    *,
    state: str = Status.QUEUED,
    sms_message_id: str | None = None,
    created_at: datetime | None = None,
    send_at: datetime | None = None,
) -> Message:
    """An outbound message as the dispatcher leaves it: queued, with its own history."""
    created = created_at or datetime.now(UTC) - timedelta(seconds=5)
    history = [HistoryEntry(status=Status.SCHEDULED, at=created, source="api")]
    if state != Status.SCHEDULED:
        history.append(
            HistoryEntry(status=state, at=created + timedelta(seconds=1), source="dispatcher")
        )
    return Message(
        id=message_id or new_id(),
        sms_message_id=sms_message_id,
        type=MessageType.OUTBOUND,
        to=CUSTOMER,
        from_=ACCOUNT,
        body="Your code is 1234",
        status=state,
        created_at=created,
        updated_at=created,
        send_at=send_at,
        segments=1,
        encoding="GSM-7",
        history=history,
    )


def callback(sms_id: str, state: str, **extra: str) -> dict[str, str]:
    return {
        "sms_message_id": sms_id,
        "status": state,
        "to": "19998881234",
        "from": "2435678910",
    } | extra


def raw_item(ddb: Any, table: str, pk: str, sk: str = "MSG") -> dict[str, Any] | None:
    key = {"PK": {"S": pk}, "SK": {"S": sk}}
    item: dict[str, Any] | None = ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get(
        "Item"
    )
    return item


def all_items(ddb: Any, table: str) -> list[dict[str, Any]]:
    # Test-only inspection of the whole table; the product never scans.
    items: list[dict[str, Any]] = ddb.scan(TableName=table, ConsistentRead=True)["Items"]
    return items


@pytest.fixture
def store(table_name: str, ddb: Any) -> DynamoMessageStore:
    return DynamoMessageStore(table_name, client=ddb)


@pytest.fixture
def result_url(load_function: Callable[[str], LocalFunction]) -> LocalFunction:
    return load_function("result_url")


@pytest.fixture
def post(result_url: LocalFunction, event: Any) -> Callable[..., dict[str, Any]]:
    def call(
        fields: dict[str, str] | None = None, *, ref: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        query = {"key": WEBHOOK_KEY} | ({"ref": ref} if ref else {})
        kwargs.setdefault("query", query)
        response: dict[str, Any] = result_url.invoke(event("result_url", form=fields, **kwargs))
        return response

    return call


def outcome(response: dict[str, Any]) -> str:
    assert response["statusCode"] == 200, response["body"]
    return str(json.loads(response["body"])["result"])


def test_fixture_event_lands_on_the_message_named_by_ref(
    result_url: LocalFunction, event: Any, store: DynamoMessageStore
) -> None:
    # GIVEN the message the fixture's ref names, sent but without Plum's id recorded yet
    put_message(store, outbound(FIXTURE_REF, state=Status.SENT))
    # WHEN the sample Result URL event is invoked unchanged
    response = result_url.invoke(event("result_url"))
    # THEN the message is delivered, Plum's id is recorded, the history ends with it
    assert outcome(response) == "changed"
    message = store.get(FIXTURE_REF)
    assert message.status == "delivered"
    assert message.sms_message_id == FIXTURE_PLUM_ID
    assert [(e.status, e.source) for e in message.history][-1] == ("delivered", "plum-callback")
    assert store.get_by_plum_id(FIXTURE_PLUM_ID) is not None


def test_status_moves_forward_and_history_is_oldest_first(
    post: Any, store: DynamoMessageStore
) -> None:
    # GIVEN a queued message Plum knows
    plum_id = new_id()
    message = outbound(sms_message_id=plum_id)
    put_message(store, message)
    # WHEN Plum reports sent then delivered
    assert outcome(post(callback(plum_id, "sent"), ref=message.id)) == "changed"
    assert outcome(post(callback(plum_id, "Delivered "), ref=message.id)) == "changed"
    # THEN the message is delivered, with every step in order
    stored = store.get(message.id)
    assert stored.status == "delivered"
    assert [e.status for e in stored.history] == ["scheduled", "queued", "sent", "delivered"]
    assert [e.at for e in stored.history] == sorted(e.at for e in stored.history)
    assert stored.updated_at >= stored.history[-1].at


def test_found_by_plum_id_without_ref(post: Any, store: DynamoMessageStore) -> None:
    plum_id = new_id()
    message = outbound(sms_message_id=plum_id)
    put_message(store, message)
    assert outcome(post(callback(plum_id, "sent"))) == "changed"
    assert store.get(message.id).status == "sent"


def test_unknown_ref_falls_back_to_plum_id(post: Any, store: DynamoMessageStore) -> None:
    plum_id = new_id()
    message = outbound(sms_message_id=plum_id)
    put_message(store, message)
    assert outcome(post(callback(plum_id, "failed"), ref=new_id())) == "changed"
    assert store.get(message.id).status == "failed"


def test_late_sent_after_delivered_is_kept_in_history_without_regressing(
    post: Any, store: DynamoMessageStore
) -> None:
    # GIVEN callbacks arriving out of order: delivered before sent
    plum_id = new_id()
    message = outbound(sms_message_id=plum_id)
    put_message(store, message)
    assert outcome(post(callback(plum_id, "delivered"), ref=message.id)) == "changed"
    # WHEN the late sent arrives
    assert outcome(post(callback(plum_id, "sent"), ref=message.id)) == "recorded"
    # THEN the final status stays, and the history holds both reports in arrival order
    stored = store.get(message.id)
    assert stored.status == "delivered"
    assert [e.status for e in stored.history][-2:] == ["delivered", "sent"]


def test_duplicate_changes_nothing(
    post: Any, store: DynamoMessageStore, ddb: Any, table_name: str
) -> None:
    plum_id = new_id()
    message = outbound(sms_message_id=plum_id)
    put_message(store, message)
    post(callback(plum_id, "delivered"), ref=message.id)
    before = raw_item(ddb, table_name, f"MSG#{message.id}")
    # WHEN Plum repeats itself
    assert outcome(post(callback(plum_id, "delivered"), ref=message.id)) == "duplicate"
    assert outcome(post(callback(plum_id, "queued"), ref=message.id)) == "duplicate"
    # THEN the stored item is exactly as it was (no write at all)
    assert raw_item(ddb, table_name, f"MSG#{message.id}") == before


def test_unknown_status_is_kept_without_moving_the_state(
    post: Any, store: DynamoMessageStore
) -> None:
    plum_id = new_id()
    message = outbound(sms_message_id=plum_id)
    put_message(store, message)
    assert outcome(post(callback(plum_id, "Carrier-Accepted"), ref=message.id)) == "recorded"
    stored = store.get(message.id)
    assert stored.status == "queued"
    assert stored.history[-1].status == "carrier-accepted"
    # AND the state machine still moves on afterwards
    assert outcome(post(callback(plum_id, "delivered"), ref=message.id)) == "changed"
    assert store.get(message.id).status == "delivered"


def test_a_status_change_takes_the_message_off_the_due_index(
    post: Any, store: DynamoMessageStore, ddb: Any, table_name: str
) -> None:
    # GIVEN a message still carrying Due index attributes (claimed, callback beats the dispatcher)
    message = outbound(state=Status.SCHEDULED, send_at=datetime.now(UTC))
    put_message(store, message)
    assert keys.DUE_PK in (raw_item(ddb, table_name, f"MSG#{message.id}") or {})
    # WHEN Plum reports it queued
    assert outcome(post(callback(new_id(), "queued"), ref=message.id)) == "changed"
    # THEN it left the Due and the scheduled ByStatus partitions
    item = raw_item(ddb, table_name, f"MSG#{message.id}") or {}
    assert keys.DUE_PK not in item and keys.DUE_SK not in item
    assert item[keys.STATUS_PK]["S"] == keys.sharded("queued", message.id)


def test_a_row_without_history_attribute_still_gets_its_statuses(
    post: Any, store: DynamoMessageStore, ddb: Any, table_name: str
) -> None:
    # GIVEN a message row some other writer stored without a history attribute
    message = outbound(sms_message_id=new_id()).model_copy(update={"history": []})
    put_message(store, message)
    ddb.update_item(
        TableName=table_name,
        Key={"PK": {"S": f"MSG#{message.id}"}, "SK": {"S": "MSG"}},
        UpdateExpression="REMOVE history",
    )
    # WHEN a moving, then an unknown status arrive
    assert outcome(post(callback(new_id(), "sent"), ref=message.id)) == "changed"
    ddb.update_item(
        TableName=table_name,
        Key={"PK": {"S": f"MSG#{message.id}"}, "SK": {"S": "MSG"}},
        UpdateExpression="REMOVE history",
    )
    assert outcome(post(callback(new_id(), "odd"), ref=message.id)) == "recorded"
    # THEN both landed
    assert [e.status for e in store.get(message.id).history] == ["odd"]
    assert store.get(message.id).status == "sent"


def test_json_body_is_accepted(post: Any, store: DynamoMessageStore) -> None:
    plum_id = new_id()
    message = outbound(sms_message_id=plum_id)
    put_message(store, message)
    body = json.dumps(
        {
            "sms_message_id": plum_id.upper(),
            "status": "sent",
            "request_timestamp": 1700000000,
            "to": 19998881234,
        }
    )
    response = post(
        body=body, headers={"Content-Type": "application/json; charset=utf-8"}, ref=message.id
    )
    assert outcome(response) == "changed"
    assert store.get(message.id).status == "sent"


@pytest.mark.parametrize(
    "query", [{}, {"key": "wrong"}, {"key": ""}, {"key": WEBHOOK_KEY[:-1]}, {"ref": FIXTURE_REF}]
)
def test_wrong_or_missing_key_is_403_and_stores_nothing(
    post: Any, query: dict[str, str], store: DynamoMessageStore, ddb: Any, table_name: str
) -> None:
    # GIVEN a message and a callback for an unknown message too
    message = outbound(sms_message_id=new_id())
    put_message(store, message)
    before = all_items(ddb, table_name)
    for fields in (callback(message.sms_message_id or "", "delivered"), callback(new_id(), "sent")):
        response = post(fields, query=query)
        assert response["statusCode"] == 403
        assert json.loads(response["body"]) == {"message": "forbidden"}
    # THEN nothing changed and no orphan was kept
    assert all_items(ddb, table_name) == before


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"fields": {"status": "sent"}}, "sms_message_id"),
        ({"fields": {"sms_message_id": "a" * 32}}, "status"),
        ({"fields": {"sms_message_id": "a" * 32, "status": "   "}}, "status"),
        ({"fields": {"sms_message_id": "xyz", "status": "sent"}}, "sms_message_id"),
        ({"fields": {"sms_message_id": "g" * 32, "status": "sent"}}, "sms_message_id"),
        ({"fields": {"sms_message_id": "a" * 32, "status": "x" * 65}}, "status"),
        ({"fields": {"sms_message_id": "a" * 32, "status": "sent\u0007"}}, "status"),
        ({"body": "sms_message_id=" + "a" * 32 + "&status=sent&status=delivered"}, "status"),
        ({"body": "{not json", "headers": {"Content-Type": "application/json"}}, "body"),
        ({"body": "[1, 2]", "headers": {"Content-Type": "application/json"}}, "body"),
        ({"body": "<status/>", "headers": {"Content-Type": "application/xml"}}, "content-type"),
        (
            {
                "fields": {"sms_message_id": "a" * 32, "status": "sent"},
                "query": {"key": WEBHOOK_KEY, "ref": "../x"},
            },
            "ref",
        ),
    ],
)
def test_malformed_callbacks_are_400_and_store_nothing(
    post: Any,
    kwargs: dict[str, Any],
    field: str,
    store: DynamoMessageStore,
    ddb: Any,
    table_name: str,
) -> None:
    # GIVEN a message the callbacks would otherwise touch
    put_message(store, outbound("a" * 32, sms_message_id="a" * 32))
    before = all_items(ddb, table_name)
    fields = kwargs.pop("fields", None)
    # WHEN a malformed callback arrives
    response = post(fields, ref="a" * 32, **kwargs)
    # THEN it is refused naming the field, and nothing is stored
    assert response["statusCode"] == 400
    answer = json.loads(response["body"])
    assert answer["field"] == field
    assert "Traceback" not in response["body"]
    assert all_items(ddb, table_name) == before


def test_callback_for_unknown_message_is_kept_as_orphan_and_attached_later(
    post: Any, store: DynamoMessageStore, ddb: Any, table_name: str
) -> None:
    # GIVEN callbacks for a message the bundle does not know yet (no ref: sent elsewhere, or the
    # queue answer is not recorded yet)
    plum_id = new_id()
    assert outcome(post(callback(plum_id, "sent"))) == "orphaned"
    assert outcome(post(callback(plum_id, "delivered"))) == "orphaned"
    assert outcome(post(callback(plum_id, "sent"))) == "duplicate"
    orphan = raw_item(ddb, table_name, orphan_pk(plum_id), "ORPHAN")
    assert orphan is not None
    assert [e["M"]["status"]["S"] for e in orphan["history"]["L"]] == ["sent", "delivered"]
    assert int(orphan[keys.TTL_ATTR]["N"]) > datetime.now(UTC).timestamp() + 86400
    # WHEN the dispatcher records Plum's id on the message and attaches the orphans
    message = outbound(sms_message_id=plum_id)
    put_message(store, message)
    publisher = RecordingPublisher()
    attached = attach_orphans(store, message.id, plum_id, publisher)
    change = attached.change if attached is not None else None
    # THEN the message has the statuses, the orphan row is gone, one change event went out
    stored = store.get(message.id)
    assert stored.status == "delivered"
    assert [e.status for e in stored.history] == ["scheduled", "queued", "sent", "delivered"]
    assert raw_item(ddb, table_name, orphan_pk(plum_id), "ORPHAN") is None
    assert change is not None and (change.previous, change.status) == ("queued", "delivered")
    assert [e["detail"]["status"] for e in publisher.events] == ["delivered"]
    # AND attaching again finds nothing
    assert attach_orphans(store, message.id, plum_id, publisher) is None


def attach_orphans(
    store: DynamoMessageStore,
    message_id: str,
    plum_id: str,
    publisher: RecordingPublisher | None = None,
) -> StatusResult | None:
    """What the dispatcher does once Plum's id is recorded: the status use case folds in
    the callbacks that came first."""
    log = DynamoStatusLog.from_store(store)
    service = StatusService(log=log, publisher=publisher or RecordingPublisher())
    return service.attach_orphans(message_id, plum_id)


def test_requests_per_callback(
    result_url: LocalFunction, post: Any, store: DynamoMessageStore
) -> None:
    # GIVEN a way to see the function's DynamoDB requests
    calls: list[str] = []
    result_url.module().function.basics.store.client.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: calls.append(model.name)
    )
    plum_id = new_id()
    message = outbound(sms_message_id=plum_id)
    put_message(store, message)

    def cost(fields: dict[str, str], ref: str | None) -> list[str]:
        calls.clear()
        post(fields, ref=ref)
        return list(calls)

    # THEN a report that moves the message is one write and no read
    assert cost(callback(plum_id, "sent"), message.id) == ["UpdateItem"]
    # a duplicate is one conditional write that fails and hands back the item: nothing else
    assert cost(callback(plum_id, "sent"), message.id) == ["UpdateItem"]
    # a late or unknown report reads, then appends
    assert cost(callback(plum_id, "mystery"), message.id) == ["GetItem", "UpdateItem"]
    # without ref the message is found by Plum's id first (the index holds keys only)
    assert cost(callback(plum_id, "delivered"), None) == ["Query", "GetItem", "UpdateItem"]
    assert store.get(message.id).status == "delivered"


def test_attach_orphans_costs_one_read_when_there_are_none(
    store: DynamoMessageStore, ddb: Any
) -> None:
    calls: list[str] = []
    ddb.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    message = outbound(sms_message_id=new_id())
    put_message(store, message)
    calls.clear()
    assert attach_orphans(store, message.id, message.sms_message_id or "") is None
    assert calls == ["GetItem"]


def test_callback_by_ref_records_plum_id_for_replies(post: Any, store: DynamoMessageStore) -> None:
    # GIVEN a reply Plum sent from Reply-Schema XML: we never learned its Plum id
    reply = outbound().model_copy(update={"type": MessageType.REPLY})
    put_message(store, reply)
    plum_id = new_id()
    # WHEN its first callback arrives with our ref
    assert outcome(post(callback(plum_id, "sent"), ref=reply.id)) == "changed"
    # THEN later callbacks (and the reconciler) can find it by Plum's id
    found = store.get_by_plum_id(plum_id)
    assert found is not None and found.id == reply.id


def test_concurrent_callbacks_both_land(store: DynamoMessageStore, dynamo_server: Any) -> None:
    # GIVEN two writers reading the same queued message
    plum_id = new_id()
    message = outbound(sms_message_id=plum_id)
    put_message(store, message)
    logs = [DynamoStatusLog(store.table_name, dynamo_server.client()) for _ in range(2)]
    barrier = threading.Barrier(2)
    results: list[Any] = []

    def report(log: DynamoStatusLog, state: str) -> None:
        barrier.wait()
        entry = HistoryEntry(status=state, at=datetime.now(UTC), source="plum-callback")
        results.append(log.apply(message, lambda m: status.plan(m, [entry])))

    # WHEN sent and delivered are applied at the same moment on the same snapshot
    threads = [
        threading.Thread(target=report, args=(log, s))
        for log, s in zip(logs, ["sent", "delivered"], strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN one of them retried on a fresh read, and both are in the history
    stored = store.get(message.id)
    assert stored.status == "delivered"
    assert sorted(e.status for e in stored.history) == ["delivered", "queued", "scheduled", "sent"]
    assert sorted(r.attempts for r in results)[-1] >= 1


@st.composite
def arrivals(draw: st.DrawFn) -> tuple[str, list[tuple[str, bool]]]:
    """A final status, and the callbacks of its life arriving duplicated and reordered,
    each with or without ``ref``."""
    final = draw(st.sampled_from(["delivered", "undelivered", "failed"]))
    steps = [s for s in ("queued", "sent") if draw(st.booleans())] + [final]
    steps += draw(st.lists(st.sampled_from(["carrier-ack", "Mystery"]), max_size=2))
    copies = [s for s in steps for _ in range(draw(st.integers(1, 3)))]
    order = draw(st.permutations(copies))
    return final, [(s, draw(st.booleans())) for s in order]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=arrivals())
def test_any_duplication_and_reordering_ends_right_through_the_handler(
    post: Any, store: DynamoMessageStore, case: tuple[str, list[tuple[str, bool]]]
) -> None:
    # GIVEN a queued message
    final, callbacks = case
    plum_id = new_id()
    message = outbound(sms_message_id=plum_id)
    put_message(store, message)
    # WHEN its callbacks arrive duplicated, reordered, some without ref
    for state, with_ref in callbacks:
        assert (
            post(callback(plum_id, state), ref=message.id if with_ref else None)["statusCode"]
            == 200
        )
    # THEN it ends in the final status with each reported status once in its history
    stored = store.get(message.id)
    assert stored.status == final
    added = [e.status for e in stored.history[2:]]
    assert sorted(added) == sorted({s.lower() for s, _ in callbacks} - {"queued"})
    assert [e.status for e in stored.history[:2]] == ["scheduled", "queued"]


def test_a_write_planned_on_a_stale_read_is_redone(store: DynamoMessageStore, ddb: Any) -> None:
    # GIVEN a snapshot of a queued message, and another writer that then reports sent
    message = outbound(sms_message_id=new_id())
    put_message(store, message)
    log = DynamoStatusLog(store.table_name, ddb)
    now = datetime.now(UTC)
    first = log.apply(
        message, lambda m: status.plan(m, [HistoryEntry(status="sent", at=now, source="a")])
    )
    assert first.attempts == 1
    # WHEN the same report is planned on the stale snapshot
    again = log.apply(
        message, lambda m: status.plan(m, [HistoryEntry(status="sent", at=now, source="b")])
    )
    # THEN the conditional write refused it, the re-read saw a duplicate, nothing was added
    assert again.attempts == 2 and not again.plan.needs_write
    assert [e.status for e in store.get(message.id).history].count("sent") == 1


def test_status_change_event_reaches_a_rule_target(
    monkeypatch: pytest.MonkeyPatch,
    dynamo_server: Any,
    load_function: Any,
    event: Any,
    store: DynamoMessageStore,
) -> None:
    # GIVEN a bus (the embedded server speaks EventBridge and SQS too) with a rule to a queue
    endpoint = dynamo_server.endpoint
    events = boto3.client("events", endpoint_url=endpoint, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    bus = f"sms-status-{new_id()[:8]}"
    events.create_event_bus(Name=bus)
    queue_url = sqs.create_queue(QueueName=f"q-{new_id()[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(
        Name="failed",
        EventBusName=bus,
        EventPattern=json.dumps(
            {
                "source": ["plumsms"],
                "detail-type": ["SMS Status Changed"],
                "detail": {"status": ["failed", "undelivered"]},
            }
        ),
    )
    events.put_targets(Rule="failed", EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])
    monkeypatch.setenv("EVENT_BUS_NAME", bus)
    monkeypatch.setenv("AWS_ENDPOINT_URL_EVENTS", endpoint)
    fn = load_function("result_url")
    plum_id = new_id()
    message = outbound(sms_message_id=plum_id)
    put_message(store, message)
    query = {"key": WEBHOOK_KEY, "ref": message.id}
    # WHEN the message is sent, then fails
    for state in ("sent", "failed", "failed"):
        assert (
            fn.invoke(event("result_url", form=callback(plum_id, state), query=query))["statusCode"]
            == 200
        )
    # THEN the rule delivered exactly one event, the failure, with the documented detail
    received = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
    ).get("Messages", [])
    assert len(received) == 1
    envelope = json.loads(received[0]["Body"])
    assert envelope["source"] == "plumsms"
    assert envelope["detail-type"] == "SMS Status Changed"
    detail = envelope["detail"]
    assert detail["message_id"] == message.id and detail["sms_message_id"] == plum_id
    assert (detail["previous_status"], detail["status"], detail["final"]) == (
        "sent",
        "failed",
        True,
    )
    assert detail["source"] == "plum-callback" and detail["type"] == "outbound"
    assert detail["to"] == CUSTOMER and detail["from"] == ACCOUNT
    assert detail["queue_to_final_seconds"] >= 0


def test_local_runs_record_events_in_memory(
    result_url: LocalFunction, post: Any, store: DynamoMessageStore
) -> None:
    plum_id = new_id()
    message = outbound(sms_message_id=plum_id)
    put_message(store, message)
    post(callback(plum_id, "sent"), ref=message.id)
    post(callback(plum_id, "sent"), ref=message.id)
    post(callback(plum_id, "undelivered"), ref=message.id)
    publisher = result_url.module().function.basics.publisher
    assert isinstance(publisher, RecordingPublisher)
    changes = [
        (e["detail"]["previous_status"], e["detail"]["status"])
        for e in publisher.events
        if e["detail"]["message_id"] == message.id
    ]
    assert changes == [("queued", "sent"), ("sent", "undelivered")]
