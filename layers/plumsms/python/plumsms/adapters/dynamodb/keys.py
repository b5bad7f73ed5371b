"""The table's key layout: one table, generic keys, sparse secondary indexes.

The key schema itself is declared once, in ``template.yaml``; this module names the
attributes and indexes the code reads and writes. Every sort key of a message index is
``<created_at ISO-8601 UTC, fixed width>#<id>``: unique, and in time order.

Indexes whose partition key would otherwise take one value (``ByTime``, ``Due``) or a
handful (``ByStatus``, ``ByType``) are sharded: the value carries a suffix ``#NN``
derived from a hash of the item's own key (``sharded``), so writes spread over
``SHARDS`` index partitions. A reader queries every shard (``shard_values``) and merges
the answers by sort key (``plumsms.adapters.dynamodb.sharding``).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from plumsms.domain.paging import LogPosition

PK = "PK"
SK = "SK"

MESSAGE_SK = "MSG"
OPT_OUT_SK = "OPTOUT"
PEER_SK = "LIMITS"
OPT_OUT_KIND = "OPTOUT"
ALL_MESSAGES = "MSG"

# Index name -> (partition attribute, sort attribute or None)
BY_PLUM_ID = "ByPlumId"
BY_TIME = "ByTime"
BY_CUSTOMER = "ByCustomer"
BY_ACCOUNT = "ByAccount"
BY_STATUS = "ByStatus"
BY_TYPE = "ByType"
DUE = "Due"

PLUM_ID_ATTR = "plum_id"
TIME_PK = "time_pk"
TIME_SK = "time_sk"
CUSTOMER_PK = "customer_pk"
ACCOUNT_PK = "account_pk"
STATUS_PK = "status_pk"
TYPE_PK = "type_pk"
DUE_PK = "due_pk"
DUE_SK = "due_sk"
TTL_ATTR = "expires_at"
DUE_KIND = "DUE"

SHARDS = 8
"""Partitions each sharded index value is spread over. Changing it moves every item's
index keys: it needs a backfill (rewrite of each item's sharded attributes)."""

INDEX_KEYS: dict[str, tuple[str, str | None]] = {
    BY_PLUM_ID: (PLUM_ID_ATTR, None),
    BY_TIME: (TIME_PK, TIME_SK),
    BY_CUSTOMER: (CUSTOMER_PK, TIME_SK),
    BY_ACCOUNT: (ACCOUNT_PK, TIME_SK),
    BY_STATUS: (STATUS_PK, TIME_SK),
    BY_TYPE: (TYPE_PK, TIME_SK),
    DUE: (DUE_PK, DUE_SK),
}


def timestamp(value: datetime) -> str:
    """Fixed-width ISO 8601 UTC with microseconds, so strings sort as times do."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def message_pk(message_id: str) -> str:
    """Partition key of a message item."""
    return f"MSG#{message_id}"


def opt_out_pk(number: str) -> str:
    """Partition key of a number's opt-out item."""
    return f"OPTOUT#{number}"


def peer_pk(number: str) -> str:
    """Partition key of a number's reply counters (auto-replies, forwards, last body)."""
    return f"PEER#{number}"


def time_sort_key(created_at: datetime, message_id: str) -> str:
    """Sort key shared by the message indexes."""
    return f"{timestamp(created_at)}#{message_id}"


def position_sort_key(position: LogPosition) -> str:
    """The index sort key a log position stands for (``<time>#<key>``)."""
    return f"{timestamp(position.at)}#{position.key}"


def sort_key_position(sort_key: str) -> LogPosition:
    """The log position of an index row with this ``<time>#<key>`` sort key."""
    at, _, key = sort_key.partition("#")
    return LogPosition(datetime.fromisoformat(at), key)


def shard_of(key: str) -> int:
    """The shard of an item, from its own key (stable, evenly spread)."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "big") % SHARDS


def sharded(value: str, key: str) -> str:
    """The partition value of ``value`` for the item keyed ``key`` in a sharded index."""
    return f"{value}#{shard_of(key):02d}"


def shard_values(value: str) -> list[str]:
    """Every partition value ``value`` is spread over, in shard order."""
    return [f"{value}#{shard:02d}" for shard in range(SHARDS)]
