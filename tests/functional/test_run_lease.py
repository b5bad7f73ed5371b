"""The dispatcher's run lease against the embedded DynamoDB server, and with dispatchers.

The adapter's conditional writes decide every race: of many runs starting at once one
holds the lease; a request left with the holder costs it one more pass; a lapsed lease
is taken over and its old holder can no longer let go of it for the new one.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from plumsms.adapters.dynamodb import lease as lease_module
from plumsms.adapters.dynamodb.lease import HOLDER, SENDERS, UNTIL, WANTED, DynamoRunLease
from plumsms.adapters.dynamodb.outbox import DynamoOutbox
from plumsms.adapters.dynamodb.store import DynamoMessageStore
from plumsms.domain.sending import HeldLease, Schedule
from plumsms.usecases.dispatch import COALESCED, DispatchConfig, Dispatcher, DispatchReport
from plumsms_local import dynamodb
from tests.factories import ACCOUNT, outbound_message
from tests.fakes import ScriptedPlum

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(seconds=60)


def lease_for(server: dynamodb.EmbeddedDynamoDB, table_name: str) -> DynamoRunLease:
    return DynamoRunLease(table_name, server.client())


def lease_item(server: dynamodb.EmbeddedDynamoDB, table_name: str) -> dict[str, Any]:
    lease = lease_for(server, table_name)
    item = server.client().get_item(TableName=table_name, Key=lease.key).get("Item", {})
    return {k: v for k, v in item.items() if k not in ("PK", "SK")}


def test_one_of_many_runs_starting_at_once_holds_the_lease(
    dynamo_server: dynamodb.EmbeddedDynamoDB, table_name: str
) -> None:
    # GIVEN twelve runs, each with its own client, taking the lease at the same moment
    results: dict[str, HeldLease | None] = {}
    gate = threading.Barrier(12)

    def take(name: str) -> None:
        lease = lease_for(dynamo_server, table_name)
        gate.wait()
        results[name] = lease.acquire(name, NOW, LATER)

    threads = [threading.Thread(target=take, args=(f"run-{i}",)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN exactly one holds it, and the item says which, until when
    [winner] = [name for name, won in results.items() if won is not None]
    item = lease_item(dynamo_server, table_name)
    assert item[HOLDER] == {"S": winner}
    assert item[UNTIL] == {"S": "2026-12-04T12:01:00.000000Z"}
    # AND the item is in no index: it has the table's keys and the lease's own fields only
    assert set(item) == {HOLDER, UNTIL}


def test_a_request_costs_the_holder_one_more_pass_then_it_lets_go(
    dynamo_server: dynamodb.EmbeddedDynamoDB, table_name: str
) -> None:
    lease = lease_for(dynamo_server, table_name)
    # GIVEN a held lease
    assert lease.acquire("holder", NOW, LATER)
    # WHEN another run finds it held and asks for a pass
    assert not lease.acquire("newcomer", NOW, LATER)
    assert lease.request(NOW)
    assert lease_item(dynamo_server, table_name)[WANTED] == {"BOOL": True}
    # THEN the holder's first release takes the request instead of letting go
    assert lease.release("holder", frozenset()) is False
    item = lease_item(dynamo_server, table_name)
    assert item[HOLDER] == {"S": "holder"}
    assert WANTED not in item
    # AND its next release, with no new request, lets go; then anyone may take it
    assert lease.release("holder", frozenset()) is True
    assert lease_item(dynamo_server, table_name) == {}
    assert lease.acquire("newcomer", NOW, LATER)


def test_nobody_to_ask_when_the_lease_is_free_or_lapsed(
    dynamo_server: dynamodb.EmbeddedDynamoDB, table_name: str
) -> None:
    lease = lease_for(dynamo_server, table_name)
    # GIVEN no lease at all: a request finds nobody
    assert lease.request(NOW) is False
    # GIVEN a lease that lapsed a second ago: a request finds nobody either
    assert lease.acquire("dead", NOW - timedelta(seconds=61), NOW - timedelta(seconds=1))
    assert lease.request(NOW) is False
    assert WANTED not in lease_item(dynamo_server, table_name)


def test_a_lapsed_lease_is_taken_over_and_its_old_holder_cannot_let_go_of_it(
    dynamo_server: dynamodb.EmbeddedDynamoDB, table_name: str
) -> None:
    lease = lease_for(dynamo_server, table_name)
    # GIVEN a holder whose invocation ended without letting go
    assert lease.acquire("dead", NOW - timedelta(seconds=61), NOW - timedelta(seconds=1))
    # WHEN a new run comes (a lease in force is refused; a lapsed one taken)
    assert lease.acquire("new", NOW, LATER)
    assert not lease.acquire("third", NOW, LATER)
    assert lease.request(NOW)
    # THEN the old holder's late release and give-up leave the new holder's lease and
    # its request alone (release says "not mine to serve")
    assert lease.release("dead", frozenset()) is True
    lease.give_up("dead", frozenset())
    item = lease_item(dynamo_server, table_name)
    assert item[HOLDER] == {"S": "new"}
    assert item[WANTED] == {"BOOL": True}
    # AND giving up ends the new holder's lease whatever was requested
    lease.give_up("new", frozenset())
    assert lease_item(dynamo_server, table_name) == {}


def test_the_senders_a_run_leaves_in_the_lease_are_handed_to_the_next_holder(
    dynamo_server: dynamodb.EmbeddedDynamoDB, table_name: str
) -> None:
    lease = lease_for(dynamo_server, table_name)
    # GIVEN a first run: nothing was left before it
    first = lease.acquire("first", NOW, LATER)
    assert first == HeldLease(frozenset())
    # WHEN it lets go, leaving two senders
    assert lease.release("first", frozenset({"+12435678910", "+12435678911"})) is True
    item = lease_item(dynamo_server, table_name)
    assert set(item) == {SENDERS}
    assert sorted(item[SENDERS]["SS"]) == ["+12435678910", "+12435678911"]
    # THEN the next holder gets them, and a run finding the lease held gets nothing
    assert lease.acquire("second", NOW, LATER) == HeldLease(
        frozenset({"+12435678910", "+12435678911"})
    )
    assert lease.acquire("third", NOW, LATER) is None
    # AND a run giving the lease up leaves its own; one that found none leaves none
    lease.give_up("second", frozenset({"+12435678912"}))
    assert lease.acquire("fourth", NOW, LATER) == HeldLease(frozenset({"+12435678912"}))
    assert lease.release("fourth", frozenset()) is True
    assert lease_item(dynamo_server, table_name) == {}


def test_at_most_senders_kept_are_left_in_the_lease(
    dynamo_server: dynamodb.EmbeddedDynamoDB, table_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lease_module, "SENDERS_KEPT", 3)
    lease = lease_for(dynamo_server, table_name)
    assert lease.acquire("first", NOW, LATER)
    lease.give_up("first", frozenset(f"+1243567891{n}" for n in range(5)))
    held = lease.acquire("second", NOW, LATER)
    assert held is not None
    assert held.senders == {"+12435678910", "+12435678911", "+12435678912"}


def test_four_dispatchers_at_once_one_works_three_coalesce_every_message_sent_once(
    dynamo_server: dynamodb.EmbeddedDynamoDB, table_name: str
) -> None:
    # GIVEN 40 due messages and four dispatcher invocations (each its own client and
    # lease adapter, as four execution environments) started together
    outbox = DynamoOutbox(DynamoMessageStore(table_name, client=dynamo_server.client()))
    due = datetime.now(UTC) - timedelta(seconds=1)
    for index in range(40):
        outbox.create(
            outbound_message(due, to=f"+1212555{index:04d}", body=f"lease {index}"), Schedule()
        )
    plum = ScriptedPlum()
    reports: list[DispatchReport] = []
    gate = threading.Barrier(4)
    first_send = threading.Event()
    queue = plum.queue

    def slow_queue(to: str, from_: str, body: str, result_url: str | None = None) -> Any:
        first_send.wait(timeout=10)  # every run has tried the lease before a send leaves
        return queue(to, from_, body, result_url)

    plum.queue = slow_queue  # type: ignore[method-assign]

    def invoke() -> None:
        store = DynamoMessageStore(table_name, client=dynamo_server.client())
        dispatcher = Dispatcher(
            outbox=DynamoOutbox(store),
            plum=lambda: plum,
            result_url=lambda ref: f"https://sms.example.test/plum/status?key=k&ref={ref}",
            config=DispatchConfig(rate_per_second=100.0, concurrency=4),
            lease=DynamoRunLease(table_name, store.client),
        )
        gate.wait()
        report = dispatcher.run(lambda: 60_000)
        reports.append(report)
        if report.stopped == COALESCED and len(reports) == 3:
            first_send.set()

    threads = [threading.Thread(target=invoke) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # THEN one run sent all 40, the three others coalesced; no claim was ever lost
    working = [r for r in reports if r.stopped != COALESCED]
    assert len(reports) == 4
    assert len(working) == 1
    assert working[0]["sent"] == 40
    assert working[0]["lost_race"] == 0
    # AND each coalesced run left a request the holder served with one more pass
    assert 1 <= working[0]["requested_passes"] <= 3
    assert sorted(body for _, _, body, _ in plum.queued) == sorted(f"lease {i}" for i in range(40))
    # AND the lease, let go, tells the next run whose messages this one found
    assert lease_item(dynamo_server, table_name) == {SENDERS: {"SS": [ACCOUNT]}}
