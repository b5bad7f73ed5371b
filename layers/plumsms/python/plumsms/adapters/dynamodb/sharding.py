"""Reading sharded and thin indexes: parallel shard Queries merged, then BatchGetItem.

A sharded index spreads one logical partition (``MSG``, ``DUE``, a status) over
``keys.SHARDS`` partition values. ``merged_query`` runs one Query per shard, the first
pages in parallel, and merges the shards' rows by sort key; each shard's next page is
read only when the merge needs it, so a page of 50 costs about 50 index rows, not
``SHARDS * 50``.

Most indexes project keys only (or a few attributes): ``hydrate`` turns their rows into
full items with BatchGetItem (100 keys per request, unprocessed keys retried with
backoff), keeping the index order. Reading the base item costs more RCU than an index
row that holds everything, but it spares every write the index copy: writes are the
expensive side of the log.
"""

from __future__ import annotations

import heapq
import math
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from plumsms.adapters.dynamodb import codec, keys
from plumsms.adapters.dynamodb.codec import Item
from plumsms.adapters.dynamodb.errors import store_errors
from plumsms.domain.errors import StoreUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

BATCH_GET_LIMIT = 100
MAX_UNPROCESSED_ROUNDS = 8


class _Stream:
    """One Query's rows, page by page, read on demand."""

    def __init__(self, client: DynamoDBClient, request: dict[str, Any], operation: str) -> None:
        self._client = client
        self._request = request
        self._operation = operation
        self._rows: deque[Item] = deque()
        self._done = False
        self._fetched = False

    def fetch(self) -> None:
        with store_errors(self._operation):
            response = self._client.query(**self._request)
        self._fetched = True
        self._rows.extend(codec.deserialize(raw) for raw in response.get("Items", []))
        last = response.get("LastEvaluatedKey")
        if last is None:
            self._done = True
        else:
            self._request["ExclusiveStartKey"] = last

    def __iter__(self) -> Iterator[Item]:
        while True:
            while self._rows:
                yield self._rows.popleft()
            if self._done:
                return
            self.fetch()


def query_stream(client: DynamoDBClient, request: dict[str, Any], operation: str) -> Iterator[Item]:
    """Every row of one Query, in index order, page by page as consumed."""
    return iter(_Stream(client, dict(request), operation))


def merged_query(
    client: DynamoDBClient,
    requests: Sequence[dict[str, Any]],
    sort_attr: str,
    *,
    descending: bool,
    operation: str,
) -> Iterator[Item]:
    """Rows of several Queries (one per shard) merged by ``sort_attr``.

    Each request must read its partition in the same direction (``ScanIndexForward``).
    The shards' first pages are read in parallel before the first row is yielded.
    """
    streams = [_Stream(client, dict(r), operation) for r in requests]
    if len(streams) > 1:
        with ThreadPoolExecutor(len(streams), thread_name_prefix="shard") as pool:
            list(pool.map(_Stream.fetch, streams))
    return heapq.merge(*streams, key=lambda row: row[sort_attr], reverse=descending)


def per_shard_limit(limit: int) -> int:
    """Rows each shard reads per page so that one round usually fills ``limit``."""
    return max(2, math.ceil(limit * 1.5 / keys.SHARDS) + 1)


def batch_get(
    client: DynamoDBClient,
    table_name: str,
    key_rows: Iterable[Item],
    *,
    projection: str | None = None,
    names: dict[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[tuple[str, str], Item]:
    """The items with these (``PK``, ``SK``) keys that exist, by key.

    Unprocessed keys (throttling, the 16 MB answer limit) are asked again with
    exponential backoff and jitter; ``StoreUnavailable`` if some stay unprocessed.
    """
    wanted = list(dict.fromkeys((str(r[keys.PK]), str(r[keys.SK])) for r in key_rows))
    found: dict[tuple[str, str], Item] = {}
    for start in range(0, len(wanted), BATCH_GET_LIMIT):
        chunk = wanted[start : start + BATCH_GET_LIMIT]
        spec: dict[str, Any] = {
            "Keys": [codec.serialize({keys.PK: pk, keys.SK: sk}) for pk, sk in chunk]
        }
        if projection is not None:
            # The key comes back too: it is how answers are matched to requests.
            spec["ProjectionExpression"] = f"#bg_pk, #bg_sk, {projection}"
            spec["ExpressionAttributeNames"] = {"#bg_pk": keys.PK, "#bg_sk": keys.SK}
            spec["ExpressionAttributeNames"] |= names or {}
        request: dict[str, Any] = {table_name: spec}
        for round_ in range(MAX_UNPROCESSED_ROUNDS):
            with store_errors("batch get"):
                response = client.batch_get_item(RequestItems=request)
            for raw in response.get("Responses", {}).get(table_name, []):
                item = codec.deserialize(raw)
                found[(str(item[keys.PK]), str(item[keys.SK]))] = item
            request = dict(response.get("UnprocessedKeys") or {})
            if not request:
                break
            sleep(min(1.0, 0.05 * (2**round_)) * (0.5 + random.random() / 2))  # noqa: S311
        else:
            raise StoreUnavailable("batch get: keys still unprocessed after retries")
    return found


def hydrate(
    client: DynamoDBClient,
    table_name: str,
    rows: Iterable[Item],
    *,
    chunk: int = BATCH_GET_LIMIT,
    keep: Callable[[Item], bool] | None = None,
    projection: str | None = None,
    names: dict[str, str] | None = None,
) -> Iterator[tuple[Item, Item]]:
    """``(index row, base item)`` for each index row, in order, ``chunk`` keys per read.

    Rows whose item is gone (deleted meanwhile) or that ``keep`` refuses are skipped.
    """
    size = max(1, min(chunk, BATCH_GET_LIMIT))
    iterator = iter(rows)
    while True:
        batch = [row for _, row in zip(range(size), iterator, strict=False)]
        if not batch:
            return
        items = batch_get(client, table_name, batch, projection=projection, names=names)
        for row in batch:
            item = items.get((str(row[keys.PK]), str(row[keys.SK])))
            if item is not None and (keep is None or keep(item)):
                yield row, item
        if len(batch) < size:
            return
