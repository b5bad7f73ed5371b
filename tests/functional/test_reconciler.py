"""ReconcilerFunction invoked with the scheduled event, against the embedded DynamoDB server
and the Plum simulator over HTTP: messages whose callbacks never came get their status."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from urllib3.util.retry import Retry

from plumsms.adapters.dynamodb.statuses import DynamoStatusLog
from plumsms.adapters.dynamodb.store import DynamoMessageStore
from plumsms.adapters.plum import PlumClient
from plumsms.domain.models import HistoryEntry, Message, MessageType, Status
from plumsms_local.dynamodb import free_port
from plumsms_local.lambda_runtime import LocalContext, LocalFunction
from plumsms_local.simulator import Delays, PlumSimulator, SimulatorClient, SimulatorConfig
from plumsms_local.template import PROJECT_ROOT
from tests.factories import put_message

ACCOUNT = "+12435678910"
CUSTOMER = "+19998881234"
FAILING, UNDELIVERABLE = "+12025550101", "+12025550102"
EVENTS = PROJECT_ROOT / "events"


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch, function_env: dict[str, str]) -> Iterator[PlumSimulator]:
    config = SimulatorConfig(
        username=function_env["PLUM_USERNAME"],
        password=function_env["PLUM_PASSWORD"],
        sms_numbers=(ACCOUNT,),
        failing_numbers=frozenset({FAILING}),
        undeliverable_numbers=frozenset({UNDELIVERABLE}),
        delays=Delays(sent_seconds=0.005, final_seconds=0.005),
        seed=3,
    )
    with PlumSimulator(config) as server:
        monkeypatch.setenv("PLUM_API_URL", server.api_url)
        yield server


@pytest.fixture
def store(table_name: str, ddb: Any) -> DynamoMessageStore:
    return DynamoMessageStore(table_name, client=ddb)


@pytest.fixture
def reconciler(function_env: dict[str, str]) -> Callable[[], LocalFunction]:
    def load() -> LocalFunction:
        # The template gives the reconciler 120 s; so does the local stack.
        function = LocalFunction(
            "reconciler", PROJECT_ROOT / "functions" / "reconciler" / "app.py", timeout_seconds=120
        )
        function.module()
        return function

    return load


def scheduled_event() -> dict[str, Any]:
    return dict(json.loads((EVENTS / "reconciler.json").read_text()))


def in_flight(plum_id: str | None, state: str, age: timedelta, to: str = CUSTOMER) -> Message:
    created = datetime.now(UTC) - age
    return Message(
        id=uuid.uuid4().hex,
        sms_message_id=plum_id,
        type=MessageType.OUTBOUND,
        to=to,
        from_=ACCOUNT,
        body="Reminder: your appointment is tomorrow",
        status=state,
        created_at=created,
        updated_at=created,
        segments=1,
        encoding="GSM-7",
        history=[
            HistoryEntry(status="scheduled", at=created, source="api"),
            HistoryEntry(status=state, at=created + timedelta(seconds=1), source="dispatcher"),
        ],
    )


def sent_without_callbacks(sim: PlumSimulator, to: str) -> str:
    """Queue an SMS on the simulator with no result URL (every callback lost); wait for its end."""
    config = sim.simulator.config
    plum = PlumClient(sim.api_url, config.username, config.password, backoff_factor=0)
    [resource] = plum.queue(to, ACCOUNT, "Reminder: your appointment is tomorrow")
    SimulatorClient(sim.base_url).wait_for_status(
        resource.sms_message_id, {"delivered", "undelivered", "failed"}
    )
    return resource.sms_message_id


def test_stuck_messages_get_plums_final_status(
    sim: PlumSimulator, store: DynamoMessageStore, reconciler: Any
) -> None:
    # GIVEN three messages Plum finished long ago, whose callbacks all got lost
    expected = {}
    for to, final, state in [
        (CUSTOMER, "delivered", "queued"),
        (FAILING, "failed", "queued"),
        (UNDELIVERABLE, "undelivered", "sent"),
    ]:
        message = in_flight(sent_without_callbacks(sim, to), state, timedelta(hours=1), to)
        put_message(store, message)
        expected[message.id] = final
    # WHEN the scheduled reconciler runs
    result = reconciler().invoke(scheduled_event())
    # THEN each has Plum's final status, learned from sms/status
    assert result == {
        "outcome": "done",
        "examined": 3,
        "changed": 3,
        "without_plum_id": 0,
        "errors": 0,
        "stopped_early": False,
    }
    for message_id, final in expected.items():
        stored = store.get(message_id)
        assert stored.status == final
        assert (stored.history[-1].status, stored.history[-1].source) == (final, "plum-status")
    # AND a second run finds nothing left to do
    assert reconciler().invoke(scheduled_event())["examined"] == 0


def test_young_and_final_messages_are_left_alone(
    sim: PlumSimulator, store: DynamoMessageStore, reconciler: Any, ddb: Any, table_name: str
) -> None:
    # GIVEN a message queued a minute ago (its callback may still come) and a delivered one
    young = in_flight(sent_without_callbacks(sim, CUSTOMER), "queued", timedelta(minutes=1))
    done = in_flight(sent_without_callbacks(sim, CUSTOMER), "delivered", timedelta(hours=2))
    put_message(store, young)
    put_message(store, done)
    before = ddb.scan(TableName=table_name, ConsistentRead=True)["Items"]
    # WHEN the reconciler runs with the default age (30 minutes)
    result = reconciler().invoke(scheduled_event())
    # THEN nobody was asked about and nothing changed
    assert result["examined"] == 0
    assert ddb.scan(TableName=table_name, ConsistentRead=True)["Items"] == before


def test_age_is_configurable(
    monkeypatch: pytest.MonkeyPatch, sim: PlumSimulator, store: DynamoMessageStore, reconciler: Any
) -> None:
    monkeypatch.setenv("RECONCILE_AFTER_MINUTES", "0.5")
    message = in_flight(sent_without_callbacks(sim, CUSTOMER), "queued", timedelta(minutes=1))
    put_message(store, message)
    assert reconciler().invoke(scheduled_event())["changed"] == 1
    assert store.get(message.id).status == "delivered"


def test_orphans_are_attached_before_plum_is_asked(
    sim: PlumSimulator, store: DynamoMessageStore, reconciler: Any
) -> None:
    # GIVEN a stuck message with a callback kept as an orphan (its message was not findable then)
    plum_id = sent_without_callbacks(sim, CUSTOMER)
    message = in_flight(plum_id, "queued", timedelta(hours=1))
    put_message(store, message)
    DynamoStatusLog.from_store(store).keep_orphan(
        plum_id, HistoryEntry(status="sent", at=datetime.now(UTC), source="plum-callback"), None
    )
    # WHEN the reconciler runs
    result = reconciler().invoke(scheduled_event())
    # THEN the orphaned callback joined the history before Plum's answer
    assert (result["examined"], result["changed"]) == (1, 2)
    history = [(e.status, e.source) for e in store.get(message.id).history]
    assert history[-2:] == [("sent", "plum-callback"), ("delivered", "plum-status")]


def test_plum_unreachable_stops_the_run_without_failing(
    monkeypatch: pytest.MonkeyPatch, store: DynamoMessageStore, reconciler: Any
) -> None:
    # GIVEN Plum cannot be reached at all
    monkeypatch.setenv("PLUM_API_URL", f"http://127.0.0.1:{free_port()}/ws/")
    first = in_flight("a" * 32, "queued", timedelta(hours=1))
    put_message(store, first)
    put_message(store, in_flight("b" * 32, "sent", timedelta(hours=1)))
    # WHEN the reconciler runs
    result = reconciler().invoke(scheduled_event())
    # THEN it stopped after the first failure and left the messages as they were
    assert (result["errors"], result["stopped_early"]) == (1, True)
    assert store.get(first.id).status == Status.QUEUED


@pytest.mark.parametrize(("setting", "waits"), [("0", False), ("0.25", True)])
def test_the_plum_clients_backoff_is_the_setting(
    monkeypatch: pytest.MonkeyPatch,
    store: DynamoMessageStore,
    reconciler: Any,
    setting: str,
    waits: bool,
) -> None:
    # GIVEN Plum unreachable, a backoff setting, and urllib3's backoffs recorded, not slept
    monkeypatch.setenv("PLUM_API_URL", f"http://127.0.0.1:{free_port()}/ws/")
    monkeypatch.setenv("PLUM_RETRY_BACKOFF_SECONDS", setting)
    backoffs: list[float] = []
    planned = Retry.get_backoff_time

    def record(retry: Retry) -> float:
        backoffs.append(planned(retry))
        return 0.0

    monkeypatch.setattr(Retry, "get_backoff_time", record)
    put_message(store, in_flight("c" * 32, "queued", timedelta(hours=1)))
    # WHEN the reconciler's call to Plum is retried
    reconciler().invoke(scheduled_event())
    # THEN the client waited between retries only when the setting asked for it
    assert len(backoffs) >= 2
    assert (max(backoffs) > 0) is waits, backoffs


def test_a_store_error_on_one_message_does_not_stop_the_run(
    sim: PlumSimulator, store: DynamoMessageStore, reconciler: Any
) -> None:
    # GIVEN two stuck messages, and DynamoDB throttling every write to the older one
    older = in_flight(sent_without_callbacks(sim, CUSTOMER), "queued", timedelta(hours=2))
    newer = in_flight(sent_without_callbacks(sim, CUSTOMER), "queued", timedelta(hours=1))
    put_message(store, older)
    put_message(store, newer)
    function = reconciler()
    throttled_key = {"PK": {"S": f"MSG#{older.id}"}, "SK": {"S": "MSG"}}

    def throttle(params: dict[str, Any], **_: Any) -> None:
        if params.get("Key") == throttled_key:
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
                "UpdateItem",
            )

    events = function.module().function.basics.store.client.meta.events
    events.register("before-parameter-build.dynamodb.UpdateItem", throttle)
    try:
        # WHEN the reconciler runs
        result = function.invoke(scheduled_event())
    finally:
        events.unregister("before-parameter-build.dynamodb.UpdateItem", throttle)
    # THEN the older message's error is counted, and the newer one still got its status
    assert (result["examined"], result["errors"], result["changed"]) == (2, 1, 1)
    assert result["stopped_early"] is False
    assert store.get(older.id).status == Status.QUEUED
    assert store.get(newer.id).status == Status.DELIVERED


def test_every_log_line_of_a_run_carries_the_runs_id(
    sim: PlumSimulator, store: DynamoMessageStore, reconciler: Any, log_lines: Any
) -> None:
    put_message(
        store, in_flight(sent_without_callbacks(sim, CUSTOMER), "queued", timedelta(hours=1))
    )
    handler = reconciler().module().lambda_handler
    context = LocalContext("reconciler", timeout_seconds=120, aws_request_id="run-one")
    assert handler(scheduled_event(), context)["changed"] == 1
    lines = log_lines.take()
    assert {"Plum status answered", "reconciled"} <= {line["message"] for line in lines}
    assert {line.get("correlation_id") for line in lines} == {"run-one"}
