"""No hot index partition: sharded keys, shard Queries merged in order, thin projections."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from plumsms.adapters.dynamodb import keys
from plumsms.adapters.dynamodb.outbox import DynamoOutbox
from plumsms.adapters.dynamodb.store import DynamoMessageStore
from plumsms.domain.models import Message
from plumsms.domain.queries import MessageQuery
from plumsms.domain.sending import Schedule
from plumsms_local import template
from tests.factories import outbound_message, put_message

ACCOUNT = "+12435678910"
CUSTOMER = "+19998881234"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def scheduled(due: datetime, created: datetime = T0) -> Message:
    return outbound_message(
        created, to=CUSTOMER, from_=ACCOUNT, body="hello", send_at=due, source="api"
    )


def test_no_index_partition_key_is_constant_or_takes_every_write(ddb: Any, table_name: str) -> None:
    # GIVEN 64 scheduled messages
    store = DynamoMessageStore(table_name, ddb)
    messages = [scheduled(T0 + timedelta(seconds=i)) for i in range(64)]
    for message in messages:
        put_message(store, message)
    # WHEN their stored index keys are read back
    items = [ddb.get_item(TableName=table_name, Key=_key(m.id))["Item"] for m in messages]
    # THEN every sharded index spreads them over several partitions, none holding most
    for attr in (keys.TIME_PK, keys.STATUS_PK, keys.TYPE_PK, keys.DUE_PK):
        spread = Counter(item[attr]["S"] for item in items)
        assert len(spread) >= keys.SHARDS // 2, attr
        assert max(spread.values()) <= len(items) // 3, (attr, spread)


def test_due_pages_are_oldest_first_across_shards(ddb: Any, table_name: str) -> None:
    # GIVEN 30 messages due at scattered times (created in another order)
    store = DynamoMessageStore(table_name, ddb)
    outbox = DynamoOutbox(store)
    dues = [T0 + timedelta(seconds=(i * 7919) % 30) for i in range(30)]
    for i, due in enumerate(dues):
        outbox.create(scheduled(due, created=T0 - timedelta(seconds=i)), Schedule())
    # WHEN the Due index is paged 7 at a time
    seen: list[tuple[datetime, str]] = []
    after = None
    for _ in range(10):
        page = outbox.due(T0 + timedelta(minutes=1), 7, after)
        seen += [(ref.due_at, ref.message_id) for ref in page.items]
        after = page.next_position
        if after is None:
            break
    # THEN every due message comes exactly once, the oldest due first
    assert len(seen) == 30
    assert seen == sorted(seen)
    # AND a message not due yet is not listed
    later = scheduled(T0 + timedelta(hours=1))
    outbox.create(later, Schedule())
    assert later.id not in {r.message_id for r in outbox.due(T0 + timedelta(minutes=1), 100).items}


def test_listing_merges_the_shards_in_time_order_with_cursors(ddb: Any, table_name: str) -> None:
    # GIVEN 25 messages created a second apart
    store = DynamoMessageStore(table_name, ddb)
    messages = [scheduled(T0, created=T0 + timedelta(seconds=i)) for i in range(25)]
    for message in messages:
        put_message(store, message)
    for order in ("desc", "asc"):
        # WHEN listed 6 at a time, following the position
        listed: list[str] = []
        after = None
        while True:
            page = store.list_messages(MessageQuery(order=order, limit=6, after=after))
            listed += [m.id for m in page.items]
            after = page.next_position
            if after is None:
                break
        # THEN the merged shards give every message once, in time order
        expected = [m.id for m in messages]
        assert listed == (expected if order == "asc" else expected[::-1])


def test_a_status_filter_reads_only_its_status_shards(ddb: Any, table_name: str) -> None:
    # GIVEN scheduled messages, one of them cancelled
    store = DynamoMessageStore(table_name, ddb)
    outbox = DynamoOutbox(store)
    messages = [scheduled(T0 + timedelta(hours=1)) for _ in range(5)]
    for message in messages:
        outbox.create(message, Schedule())
    outbox.cancel(messages[2].id, T0)
    # WHEN listed by status
    cancelled = store.list_messages(MessageQuery(status="cancelled", limit=10)).items
    pending = store.list_messages(MessageQuery(status="scheduled", limit=10)).items
    # THEN each status lists exactly its messages
    assert [m.id for m in cancelled] == [messages[2].id]
    assert {m.id for m in pending} == {m.id for i, m in enumerate(messages) if i != 2}
    # AND so does a number with a status (status is checked on the items read)
    by_number = store.list_messages(MessageQuery(number=CUSTOMER, status="cancelled", limit=10))
    assert [m.id for m in by_number.items] == [messages[2].id]


def test_indexes_project_only_what_their_queries_filter_on() -> None:
    # GIVEN the table definition
    indexes = template.table_definition("t")["GlobalSecondaryIndexes"]
    # THEN no index copies whole items (history, body) into every write
    projections = {i["IndexName"]: i["Projection"] for i in indexes}
    assert all(p["ProjectionType"] != "ALL" for p in projections.values())
    included = {a for p in projections.values() for a in p.get("NonKeyAttributes", [])}
    assert included <= {"type", "check_after", "id", "to", "from"}


def _key(message_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"MSG#{message_id}"}, "SK": {"S": "MSG"}}
