"""The message log over DynamoDB: a boto3 client is injected; errors become domain errors.

Every access is a GetItem, a Query on an index, or a conditional write; never a Scan.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError

from plumsms.adapters.dynamodb import keys
from plumsms.adapters.dynamodb.errors import store_errors
from plumsms.domain.errors import DuplicateInbound, NotFound
from plumsms.domain.models import Message, OptOut, Status
from plumsms.domain.queries import MessageQuery, Page

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

Item = dict[str, Any]

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
_MESSAGE_FIELDS = (
    "id", "sms_message_id", "type", "to", "from", "body", "status", "created_at",
    "updated_at", "send_at", "result_url", "segments", "encoding", "error",
)  # fmt: skip
_BATCH_GET_LIMIT = 100


def default_client() -> DynamoDBClient:
    """A DynamoDB client honouring ``AWS_ENDPOINT_URL_DYNAMODB``, with adaptive retries."""
    config = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=2)
    return boto3.client("dynamodb", config=config)


def _serialize(item: Item) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in item.items() if v is not None}


def _deserialize(raw: dict[str, Any]) -> Item:
    return {k: _deserializer.deserialize(v) for k, v in raw.items()}


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

    # -- rows ---------------------------------------------------------------------------

    def message_item(self, message: Message) -> Item:
        """The stored row of ``message``, with the index attributes it belongs in."""
        data = message.model_dump(mode="json", by_alias=True, exclude={"history"})
        row: Item = {k: data[k] for k in _MESSAGE_FIELDS}
        row["history"] = [e.model_dump(mode="json") for e in message.history]
        for name in ("created_at", "updated_at", "send_at"):
            value = getattr(message, name)
            row[name] = keys.timestamp(value) if value else None
        sort_key = keys.time_sort_key(message.created_at, message.id)
        row.update(
            {
                keys.PK: keys.message_pk(message.id),
                keys.SK: keys.MESSAGE_SK,
                keys.PLUM_ID_ATTR: message.sms_message_id,
                keys.TIME_PK: keys.ALL_MESSAGES,
                keys.TIME_SK: sort_key,
                keys.CUSTOMER_PK: message.customer_number,
                keys.ACCOUNT_PK: message.account_number,
                keys.STATUS_PK: message.status,
                keys.TYPE_PK: message.type.value,
            }
        )
        if message.status == Status.SCHEDULED and message.send_at is not None:
            row[keys.DUE_PK] = "DUE"
            row[keys.DUE_SK] = keys.time_sort_key(message.send_at, message.id)
        if self.retention:
            expires = message.created_at + self.retention
            row[keys.TTL_ATTR] = int(expires.timestamp())
        return row

    @staticmethod
    def message_from_item(item: Item) -> Message:
        """Rebuild a ``Message`` from a stored row."""
        data = {k: item.get(k) for k in _MESSAGE_FIELDS}
        data["history"] = item.get("history", [])
        return Message.model_validate(data)

    # -- inbound ------------------------------------------------------------------------

    def record_inbound(
        self,
        inbound: Message,
        replies: Sequence[Message],
        reply_xml: bytes,
        opt_out: OptOut | None = None,
        opt_in_number: str | None = None,
    ) -> None:
        """Store an inbound message with its replies and opt-out change, all or nothing.

        Keyed on the inbound id (Plum's ``sms_message_id``): a retried webhook raises
        ``DuplicateInbound`` carrying the XML answered the first time, and writes nothing.
        The common case (no reply, no opt-out change) is a single conditional PutItem.
        """
        row = self.message_item(inbound) | {"reply_xml": Binary(reply_xml)}
        condition = f"attribute_not_exists({keys.PK})"
        others: list[dict[str, Any]] = [
            {"Put": {"TableName": self.table_name, "Item": _serialize(self.message_item(r))}}
            for r in replies
        ]
        if opt_out is not None:
            others.append(
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": _serialize(self._opt_out_row(opt_out)),
                    }
                }
            )
        if opt_in_number is not None:
            others.append({"Delete": {"TableName": self.table_name, "Key": _serialize(
                {keys.PK: keys.opt_out_pk(opt_in_number), keys.SK: keys.OPT_OUT_SK})}})  # fmt: skip
        with store_errors("record inbound"):
            try:
                if not others:
                    self.client.put_item(
                        TableName=self.table_name,
                        Item=_serialize(row),
                        ConditionExpression=condition,
                    )
                    return
                first = {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": _serialize(row),
                        "ConditionExpression": condition,
                    }
                }
                self.client.transact_write_items(TransactItems=[first, *others])  # type: ignore[list-item]
            except ClientError as exc:
                if not _is_condition_failure(exc):
                    raise
                raise DuplicateInbound(self._stored_reply_xml(inbound.id)) from exc

    def _stored_reply_xml(self, message_id: str) -> bytes:
        with store_errors("read inbound"):
            response = self.client.get_item(
                TableName=self.table_name,
                Key=_serialize({keys.PK: keys.message_pk(message_id), keys.SK: keys.MESSAGE_SK}),
                ProjectionExpression="reply_xml",
                ConsistentRead=True,
            )
        stored = response.get("Item", {}).get("reply_xml", {}).get("B")
        return bytes(stored) if stored else b""

    # -- single messages ----------------------------------------------------------------

    def put_message(self, message: Message) -> None:
        """Store a new message; it must not exist yet."""
        with store_errors("put message"):
            self.client.put_item(
                TableName=self.table_name,
                Item=_serialize(self.message_item(message)),
                ConditionExpression=f"attribute_not_exists({keys.PK})",
            )

    def get(self, message_id: str) -> Message:
        """The message with our id ``message_id``; ``NotFound`` otherwise."""
        with store_errors("get message"):
            response = self.client.get_item(
                TableName=self.table_name,
                Key=_serialize({keys.PK: keys.message_pk(message_id), keys.SK: keys.MESSAGE_SK}),
            )
        if "Item" not in response:
            raise NotFound(f"message {message_id}")
        return self.message_from_item(_deserialize(response["Item"]))

    def get_by_plum_id(self, sms_message_id: str) -> Message | None:
        """The message Plum knows as ``sms_message_id``, if we have it."""
        with store_errors("query by plum id"):
            response = self.client.query(
                TableName=self.table_name,
                IndexName=keys.BY_PLUM_ID,
                KeyConditionExpression="#k = :v",
                ExpressionAttributeNames={"#k": keys.PLUM_ID_ATTR},
                ExpressionAttributeValues={":v": {"S": sms_message_id}},
                Limit=1,
            )
        items = response.get("Items", [])
        return self.message_from_item(_deserialize(items[0])) if items else None

    # -- listing ------------------------------------------------------------------------

    def list_messages(self, query: MessageQuery) -> Page:
        """One page of messages matching ``query``, served by Queries on indexes.

        A number filter reads both the customer-side and the account-side index and
        merges them by time; status and type use their own index when no number is
        given, and become filters on the chosen index otherwise.
        """
        if query.number is not None:
            streams = [
                self._query_index(keys.BY_CUSTOMER, keys.CUSTOMER_PK, query.number, query),
                self._query_index(keys.BY_ACCOUNT, keys.ACCOUNT_PK, query.number, query),
            ]
        elif query.status is not None:
            streams = [self._query_index(keys.BY_STATUS, keys.STATUS_PK, query.status, query)]
        elif query.type is not None:
            streams = [self._query_index(keys.BY_TYPE, keys.TYPE_PK, query.type.value, query)]
        else:
            streams = [self._query_index(keys.BY_TIME, keys.TIME_PK, keys.ALL_MESSAGES, query)]
        counter = _ReadCounter()
        merged = heapq.merge(
            *(counter.wrap(s) for s in streams),
            key=lambda item: item[keys.TIME_SK],
            reverse=query.order == "desc",
        )
        rows: list[Item] = []
        seen: set[str] = set()
        for row in merged:
            if row["id"] in seen:  # a message between two of the account's own numbers
                continue
            seen.add(row["id"])
            rows.append(row)
            if len(rows) > query.limit:
                break
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        return Page(
            items=[self.message_from_item(r) for r in rows],
            next_position=rows[-1][keys.TIME_SK] if more and rows else None,
            items_read=counter.count,
        )

    def _query_index(
        self, index: str, pk_attr: str, pk_value: str, query: MessageQuery
    ) -> Iterator[Item]:
        """Yield matching rows of one index in order, page by page, lazily."""
        names = {"#pk": pk_attr, "#sk": keys.TIME_SK}
        values: dict[str, Any] = {":pk": {"S": pk_value}}
        low = keys.timestamp(query.start) if query.start else None
        high = keys.timestamp(query.end) + "~" if query.end else None
        if query.after is not None:
            if query.order == "desc":
                high = min(high, query.after) if high else query.after
            else:
                low = max(low, query.after + "\x00") if low else query.after + "\x00"
        condition = "#pk = :pk"
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
        if query.status is not None and pk_attr != keys.STATUS_PK:
            filters.append("#status_attr = :status")
            names["#status_attr"] = keys.STATUS_PK
            values[":status"] = {"S": query.status}
        if query.type is not None and pk_attr != keys.TYPE_PK:
            filters.append("#type_attr = :type")
            names["#type_attr"] = keys.TYPE_PK
            values[":type"] = {"S": query.type.value}
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": query.order == "asc",
            # One more than the page, so we know whether another page exists.
            "Limit": query.limit + 1,
        }
        if filters:
            request["FilterExpression"] = " AND ".join(filters)
        while True:
            with store_errors("list messages"):
                response = self.client.query(**request)
            for raw in response.get("Items", []):
                row = _deserialize(raw)
                # The exclusive bound: BETWEEN and <= include the cursor row itself.
                if query.after is not None and row[keys.TIME_SK] == query.after:
                    continue
                yield row
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # -- opt-outs -----------------------------------------------------------------------

    def _opt_out_row(self, opt_out: OptOut) -> Item:
        at = keys.timestamp(opt_out.at)
        return {
            keys.PK: keys.opt_out_pk(opt_out.number),
            keys.SK: keys.OPT_OUT_SK,
            "number": opt_out.number,
            "keyword": opt_out.keyword,
            "at": at,
            "message_id": opt_out.message_id,
            keys.TYPE_PK: keys.OPT_OUT_KIND,
            keys.TIME_SK: f"{at}#{opt_out.number}",
        }

    def opted_out(self, numbers: Iterable[str]) -> set[str]:
        """Which of ``numbers`` have opted out (BatchGetItem; unprocessed keys retried)."""
        wanted = sorted(set(numbers))
        found: set[str] = set()
        for start in range(0, len(wanted), _BATCH_GET_LIMIT):
            chunk = wanted[start : start + _BATCH_GET_LIMIT]
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [
                        _serialize({keys.PK: keys.opt_out_pk(n), keys.SK: keys.OPT_OUT_SK})
                        for n in chunk
                    ],
                    "ProjectionExpression": "#n",
                    "ExpressionAttributeNames": {"#n": "number"},
                }
            }
            while request:
                with store_errors("read opt-outs"):
                    response = self.client.batch_get_item(RequestItems=request)
                for raw in response.get("Responses", {}).get(self.table_name, []):
                    found.add(str(_deserialize(raw)["number"]))
                request = response.get("UnprocessedKeys") or {}
        return found

    def get_opt_out(self, number: str) -> OptOut | None:
        """The opt-out record of ``number``, if it has opted out."""
        with store_errors("get opt-out"):
            response = self.client.get_item(
                TableName=self.table_name,
                Key=_serialize({keys.PK: keys.opt_out_pk(number), keys.SK: keys.OPT_OUT_SK}),
            )
        if "Item" not in response:
            return None
        row = _deserialize(response["Item"])
        return OptOut(
            number=row["number"],
            keyword=row["keyword"],
            at=datetime.fromisoformat(row["at"]),
            message_id=row["message_id"],
        )


class _ReadCounter:
    """Counts rows pulled from index streams: the page's read cost."""

    def __init__(self) -> None:
        self.count = 0

    def wrap(self, rows: Iterator[Item]) -> Iterator[Item]:
        for row in rows:
            self.count += 1
            yield row


def _is_condition_failure(exc: ClientError) -> bool:
    code = exc.response.get("Error", {}).get("Code")
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        reasons = exc.response.get("CancellationReasons", [])
        return bool(reasons) and reasons[0].get("Code") == "ConditionalCheckFailed"
    return False
