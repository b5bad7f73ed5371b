"""The message log over DynamoDB: a boto3 client is injected; errors become domain errors.

Every access is a GetItem, a Query on an index, or a conditional write; never a Scan.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from plumsms.adapters.dynamodb import codec, keys, sharding
from plumsms.adapters.dynamodb.codec import Item
from plumsms.adapters.dynamodb.errors import condition_failed, store_errors
from plumsms.domain.errors import ConcurrentUpdate, DuplicateInbound, NotFound
from plumsms.domain.guards import PeerState
from plumsms.domain.models import InboundRecord, Message, OptOut, Status
from plumsms.domain.paging import LogPosition
from plumsms.domain.queries import MessageQuery, Page
from plumsms.domain.replyxml import build_reply

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

REPLY_XML = "reply_xml"
"""The answer given to an inbound message, kept for Plum's retries (absent: no reply)."""


def default_client() -> DynamoDBClient:
    """A DynamoDB client honouring ``AWS_ENDPOINT_URL_DYNAMODB``, with standard retries."""
    config = Config(
        retries={"mode": "standard", "max_attempts": 4},
        connect_timeout=2,
        # Requests are built by the typed codec and DynamoDB validates them again; the
        # client-side check walks every attribute of every item, on the inbound path
        # too (a tenth of a millisecond or more per write, measured in bench_inbound).
        parameter_validation=False,
    )
    return boto3.client("dynamodb", config=config)


def message_by_plum_id(
    client: DynamoDBClient, table_name: str, sms_message_id: str
) -> Message | None:
    """The message Plum knows as ``sms_message_id`` (Query on ``ByPlumId``), if any."""
    # Orphan rows carry no plum_id attribute, so only messages are in this index. It
    # projects keys only: the message itself is one GetItem away.
    items = _plum_id_keys(client, table_name, sms_message_id)
    if not items:
        return None
    with store_errors("get message"):
        found = client.get_item(
            TableName=table_name, Key={keys.PK: items[0][keys.PK], keys.SK: items[0][keys.SK]}
        )
    item = found.get("Item")
    return codec.message_from_item(codec.deserialize(item)) if item else None


def plum_id_known(client: DynamoDBClient, table_name: str, sms_message_id: str) -> bool:
    """True when one of our messages carries ``sms_message_id`` (one keys-only Query)."""
    return bool(_plum_id_keys(client, table_name, sms_message_id))


def _plum_id_keys(
    client: DynamoDBClient, table_name: str, sms_message_id: str
) -> list[dict[str, Any]]:
    """The ``ByPlumId`` row of ``sms_message_id`` (keys only; empty: none), one Query."""
    with store_errors("query by plum id"):
        response = client.query(
            TableName=table_name,
            IndexName=keys.BY_PLUM_ID,
            KeyConditionExpression="#k = :v",
            ExpressionAttributeNames={"#k": keys.PLUM_ID_ATTR},
            ExpressionAttributeValues={":v": {"S": sms_message_id}},
            Limit=1,
        )
    return list(response.get("Items", []))


class DynamoMessageStore:
    """Messages, their history and opt-outs in one DynamoDB table."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient | None = None,
        retention: timedelta | None = None,
    ) -> None:
        self.table_name = table_name
        self.client = client or default_client()
        self.retention = retention

    # -- inbound ------------------------------------------------------------------------

    def record_inbound(self, record: InboundRecord) -> None:
        """Store an inbound message with its replies, opt-out change and reply counters.

        Keyed on the inbound id (Plum's ``sms_message_id``): a retried webhook raises
        ``DuplicateInbound`` carrying the XML answered the first time, and writes nothing
        new. Without an opt-out change or reply counters the writes are plain conditional
        PutItems, the replies first and the inbound last: reply ids derive from the
        inbound id, so a retry after a partial write puts the same replies (kept if
        present) and then the inbound, and a stored inbound always has its replies (a
        transaction would cost twice the WCU of every item and index entry). An opt-out
        change, or counters (written conditional on the revision they were read at:
        ``ConcurrentUpdate`` when another message moved them first), go in one transaction
        with the inbound: they must happen exactly when the inbound is new.
        """
        inbound, replies = record.inbound, record.replies
        row = codec.message_item(inbound, self.retention)
        if replies:
            # Most inbound get no reply; the empty answer is implied (earlier_answer).
            row[REPLY_XML] = record.reply_xml
        condition = f"attribute_not_exists({keys.PK})"
        if record.opt_out is None and record.opt_in_number is None and not record.peers:
            with store_errors("record inbound"):
                for reply in replies:
                    self._put_if_new(codec.message_item(reply, self.retention))
                if not self._put_if_new(row):
                    raise DuplicateInbound(self.earlier_answer(inbound.id) or b"")
            return
        others: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": codec.serialize(codec.message_item(r, self.retention)),
                }
            }
            for r in replies
        ]
        if record.opt_out is not None:
            others.append(
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": codec.serialize(codec.opt_out_item(record.opt_out)),
                    }
                }
            )
        if record.opt_in_number is not None:
            opted_in = {keys.PK: keys.opt_out_pk(record.opt_in_number), keys.SK: keys.OPT_OUT_SK}
            others.append(
                {"Delete": {"TableName": self.table_name, "Key": codec.serialize(opted_in)}}
            )
        others.extend(self._peer_put(peer) for peer in record.peers)
        with store_errors("record inbound"):
            try:
                first = {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": codec.serialize(row),
                        "ConditionExpression": condition,
                    }
                }
                self.client.transact_write_items(TransactItems=[first, *others])  # type: ignore[list-item]
            except ClientError as exc:
                if condition_failed(exc, in_transaction=slice(0, 1)):
                    raise DuplicateInbound(self.earlier_answer(inbound.id) or b"") from exc
                if condition_failed(exc, in_transaction=slice(1, None)):
                    raise ConcurrentUpdate("reply counters changed; read them again") from exc
                raise

    def _peer_put(self, peer: PeerState) -> dict[str, Any]:
        put: dict[str, Any] = {
            "TableName": self.table_name,
            "Item": codec.serialize(codec.peer_item(peer, peer.revision + 1)),
        }
        if peer.revision:
            put["ConditionExpression"] = "#rev = :rev"
            put["ExpressionAttributeNames"] = {"#rev": "rev"}
            put["ExpressionAttributeValues"] = {":rev": {"N": str(peer.revision)}}
        else:
            put["ConditionExpression"] = f"attribute_not_exists({keys.PK})"
        return {"Put": put}

    def _put_if_new(self, row: Item) -> bool:
        """PutItem unless the key exists; False when it did (nothing written)."""
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=codec.serialize(row),
                ConditionExpression=f"attribute_not_exists({keys.PK})",
            )
        except ClientError as exc:
            if not condition_failed(exc, in_transaction=slice(0, 1)):
                raise
            return False
        return True

    def earlier_answer(self, message_id: str) -> bytes | None:
        """The XML answered to inbound ``message_id`` the first time; None if never seen."""
        with store_errors("read inbound"):
            response = self.client.get_item(
                TableName=self.table_name,
                Key=codec.message_key(message_id),
                # The key too: an inbound answered with no reply stores no XML.
                ProjectionExpression=f"{keys.PK}, {REPLY_XML}",
                ConsistentRead=True,
            )
        if "Item" not in response:
            return None
        stored = response["Item"].get(REPLY_XML, {}).get("B")
        return bytes(stored) if stored else build_reply([])

    # -- single messages ----------------------------------------------------------------

    def get(self, message_id: str) -> Message:
        """The message with our id ``message_id``; ``NotFound`` otherwise."""
        with store_errors("get message"):
            response = self.client.get_item(
                TableName=self.table_name,
                Key=codec.message_key(message_id),
            )
        if "Item" not in response:
            raise NotFound(f"message {message_id}")
        return codec.message_from_item(codec.deserialize(response["Item"]))

    def get_by_plum_id(self, sms_message_id: str) -> Message | None:
        """The message Plum knows as ``sms_message_id``, if we have it."""
        return message_by_plum_id(self.client, self.table_name, sms_message_id)

    # -- listing ------------------------------------------------------------------------

    def list_messages(self, query: MessageQuery) -> Page:
        """One page of messages matching ``query``, served by Queries on indexes.

        A number filter reads both the customer-side and the account-side index and
        merges them by time; status and type use their own (sharded) index when no
        number is given, and become filters otherwise. The indexes hold keys (and a few
        attributes): the page's items are read with BatchGetItem.
        """
        counter = _ReadCounter()
        rows: list[Item] = []
        for item in self._matching_items(query, counter, chunk=query.limit + 1):
            rows.append(item)
            if len(rows) > query.limit:
                break
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        return Page(
            items=[codec.message_from_item(r) for r in rows],
            next_position=_position(rows[-1], query) if more and rows else None,
            items_read=counter.count,
        )

    def _matching_items(
        self, query: MessageQuery, counter: _ReadCounter | None = None, chunk: int = 100
    ) -> Iterator[Item]:
        """Full items matching ``query`` in order: index rows merged, then BatchGetItem."""
        streams = self._index_streams(query)
        if counter is not None:
            streams = [counter.wrap(s) for s in streams]
        position = _position_attr(query)
        merged = heapq.merge(*streams, key=lambda row: row[position], reverse=query.order == "desc")
        keep = None
        if query.sort == "send_at":
            # A send claimed between the index read and the item read is not pending.
            keep = lambda item: item.get("status") == Status.SCHEDULED  # noqa: E731
        elif query.number is not None and query.status is not None:
            # Status is not projected into the number indexes (it would make every status
            # change rewrite them): it is checked on the items read.
            wanted = query.status
            keep = lambda item: item.get("status") == wanted  # noqa: E731
        for _, item in sharding.hydrate(
            self.client, self.table_name, _distinct(merged, position), chunk=chunk, keep=keep
        ):
            yield item

    def _index_streams(self, query: MessageQuery) -> list[Iterator[Item]]:
        """The index Queries that serve ``query``, each yielding index rows in order.

        A number reads both the customer-side and the account-side index; otherwise
        status, then type, then the time index (the last three sharded).
        """
        if query.sort == "send_at":
            values = keys.shard_values(keys.DUE_KIND)
            return [self._query_index(keys.DUE, keys.DUE_PK, values, query)]
        if query.number is not None:
            return [
                self._query_index(keys.BY_CUSTOMER, keys.CUSTOMER_PK, [query.number], query),
                self._query_index(keys.BY_ACCOUNT, keys.ACCOUNT_PK, [query.number], query),
            ]
        if query.status is not None:
            values = keys.shard_values(query.status)
            return [self._query_index(keys.BY_STATUS, keys.STATUS_PK, values, query)]
        if query.type is not None:
            values = keys.shard_values(query.type.value)
            return [self._query_index(keys.BY_TYPE, keys.TYPE_PK, values, query)]
        values = keys.shard_values(keys.ALL_MESSAGES)
        return [self._query_index(keys.BY_TIME, keys.TIME_PK, values, query)]

    def _query_index(
        self,
        index: str,
        pk_attr: str,
        pk_values: list[str],
        query: MessageQuery,
        extra_filter: tuple[str, dict[str, str], dict[str, Any]] | None = None,
    ) -> Iterator[Item]:
        """Yield the index rows of ``pk_values`` (shards merged) in order, lazily."""
        position = _position_attr(query)
        names = {"#pk": pk_attr, "#sk": position}
        values: dict[str, Any] = {}
        low = keys.timestamp(query.start) if query.start else None
        high = keys.timestamp(query.end) + "~" if query.end else None
        after = keys.position_sort_key(query.after) if query.after is not None else None
        if after is not None:
            if query.order == "desc":
                # Exclusive, like the ascending bound: the cursor's own row would take a
                # place of the page's Limit and cost a second Query to fill the page.
                below = _just_below(after)
                high = min(high, below) if high else below
            else:
                low = max(low, after + "\x00") if low else after + "\x00"
        condition = "#pk = :pk"
        if not (low or high):
            # DynamoDB rejects attribute names the expressions do not use.
            del names["#sk"]
        if low and high:
            condition += " AND #sk BETWEEN :lo AND :hi"
            values |= {":lo": {"S": low}, ":hi": {"S": high}}
        elif low:
            condition += " AND #sk >= :lo"
            values[":lo"] = {"S": low}
        elif high:
            condition += " AND #sk <= :hi"
            values[":hi"] = {"S": high}
        filters = []
        if query.type is not None and pk_attr != keys.TYPE_PK:
            # ``type`` is projected into every index a type filter can meet.
            filters.append("#type_attr = :type")
            names["#type_attr"] = "type"
            values[":type"] = {"S": query.type.value}
        if extra_filter is not None:
            text, extra_names, extra_values = extra_filter
            filters.append(text)
            names |= extra_names
            values |= extra_values
        sharded = len(pk_values) > 1
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ScanIndexForward": query.order == "asc",
            # One more than the page, so we know whether another page exists.
            "Limit": sharding.per_shard_limit(query.limit + 1) if sharded else query.limit + 1,
        }
        if filters:
            request["FilterExpression"] = " AND ".join(filters)
        requests = [
            request | {"ExpressionAttributeValues": values | {":pk": {"S": v}}} for v in pk_values
        ]
        if sharded:
            rows = sharding.merged_query(
                self.client,
                requests,
                position,
                descending=query.order == "desc",
                operation="list messages",
            )
        else:
            rows = sharding.query_stream(self.client, requests[0], "list messages")
        for row in rows:
            # The exclusive bound: BETWEEN and <= include the cursor row itself.
            if after is not None and row[position] == after:
                continue
            yield row

    # -- log listings: export, chart, opt-outs -------------------------------------------

    def iter_messages(self, query: MessageQuery) -> Iterator[tuple[Message, LogPosition]]:
        """Every message matching ``query``, in order, each with its seek position.

        Lazy: index pages and BatchGetItem reads (100 items) happen only as the caller
        consumes them, so an export stops reading as soon as its own budget is spent
        and resumes later from the last position it returned (``query.after``). The
        index choice is ``list_messages``'s.
        """
        for item in self._matching_items(query):
            yield codec.message_from_item(item), _position(item, query)

    def iter_statuses(
        self, start: datetime, end: datetime, page_size: int = 1000
    ) -> Iterator[tuple[datetime, str]]:
        """``(created_at, status)`` of every message created in ``[start, end]``, newest first.

        Queries on the (sharded) time index bounded by the window, then BatchGetItem of
        the status alone (the index projects keys only). The caller caps how many it reads.
        """
        window = MessageQuery(start=start, end=end, order="desc", limit=page_size)
        rows = self._query_index(
            keys.BY_TIME, keys.TIME_PK, keys.shard_values(keys.ALL_MESSAGES), window
        )
        for row, item in sharding.hydrate(
            self.client, self.table_name, rows, projection="#st", names={"#st": "status"}
        ):
            created = datetime.fromisoformat(str(row[keys.TIME_SK]).split("#", 1)[0])
            yield created, str(item["status"])

    def list_opt_outs(
        self, limit: int, order: Literal["asc", "desc"] = "desc", after: LogPosition | None = None
    ) -> tuple[list[OptOut], LogPosition | None]:
        """One page of opted-out numbers by opt-out time, and the next page's position.

        Opt-out rows live in the type index under their own (sharded) partition
        (``OPTOUT``), with the same ``<time>#<key>`` sort key shape as messages, so the
        same seek works.
        """
        page = MessageQuery(order=order, limit=limit, after=after)
        shards = keys.shard_values(keys.OPT_OUT_KIND)
        index_rows = self._query_index(keys.BY_TYPE, keys.TYPE_PK, shards, page)
        rows: list[Item] = []
        for _, item in sharding.hydrate(self.client, self.table_name, index_rows, chunk=limit + 1):
            rows.append(item)
            if len(rows) > limit:
                break
        more = len(rows) > limit
        rows = rows[:limit]
        position = keys.sort_key_position(str(rows[-1][keys.TIME_SK])) if more and rows else None
        return [codec.opt_out_from_item(r) for r in rows], position

    # -- opt-outs and reply counters ----------------------------------------------------

    def peer_states(self, numbers: Iterable[str]) -> dict[str, PeerState]:
        """Opt-out and reply counters of each of ``numbers``: one BatchGetItem per 50
        numbers (unprocessed keys retried with backoff)."""
        wanted = sorted(set(numbers))
        found = sharding.batch_get(
            self.client,
            self.table_name,
            (
                {keys.PK: pk, keys.SK: sk}
                for n in wanted
                for pk, sk in (
                    (keys.opt_out_pk(n), keys.OPT_OUT_SK),
                    (keys.peer_pk(n), keys.PEER_SK),
                )
            ),
        )
        return {
            n: codec.peer_from_item(
                n,
                found.get((keys.peer_pk(n), keys.PEER_SK)),
                (keys.opt_out_pk(n), keys.OPT_OUT_SK) in found,
            )
            for n in wanted
        }

    def opted_out(self, numbers: Iterable[str]) -> set[str]:
        """Which of ``numbers`` have opted out (BatchGetItem; unprocessed keys retried)."""
        wanted = [
            {keys.PK: keys.opt_out_pk(n), keys.SK: keys.OPT_OUT_SK} for n in sorted(set(numbers))
        ]
        found = sharding.batch_get(
            self.client, self.table_name, wanted, projection="#n", names={"#n": "number"}
        )
        return {str(item["number"]) for item in found.values()}


class _ReadCounter:
    """Counts rows pulled from index streams: the page's read cost."""

    def __init__(self) -> None:
        self.count = 0

    def wrap(self, rows: Iterator[Item]) -> Iterator[Item]:
        for row in rows:
            self.count += 1
            yield row


def _position_attr(query: MessageQuery) -> str:
    """The sort key a listing is ordered and resumed by: creation time, or due time."""
    return keys.DUE_SK if query.sort == "send_at" else keys.TIME_SK


def _position(item: Item, query: MessageQuery) -> LogPosition:
    """Where a listing resumes after ``item``: its sort key in the listing's index."""
    return keys.sort_key_position(str(item[_position_attr(query)]))


def _distinct(rows: Iterator[Item], position_attr: str = keys.TIME_SK) -> Iterator[Item]:
    """Drop repeated rows: a message between two of the account's own numbers is in
    both number indexes; its copies share a sort key, so they arrive side by side."""
    previous: str | None = None
    for row in rows:
        position = str(row[position_attr])
        if position != previous:
            yield row
        previous = position


def _just_below(position: str) -> str:
    """The greatest sort key below ``position`` that any stored (ASCII) key can have.

    Positions end in ASCII; DynamoDB compares UTF-8 bytes, and U+10FFFF sorts after
    every ASCII byte, so nothing stored lies strictly between the result and ``position``.
    """
    return position[:-1] + chr(ord(position[-1]) - 1) + "\U0010ffff"
