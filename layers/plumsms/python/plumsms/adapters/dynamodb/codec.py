"""Rows: how messages and opt-outs are stored, and DynamoDB's typed attribute values."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from plumsms.adapters.dynamodb import keys
from plumsms.domain.guards import PeerState
from plumsms.domain.models import Message, MessageType, OptOut, Status

Item = dict[str, Any]

SCHEDULE_ATTR = "schedule"
"""A send's ``plumsms.domain.sending.Schedule``, as JSON (written by the outbox)."""
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
MESSAGE_FIELDS = (
    "id", "sms_message_id", "type", "to", "from", "body", "status", "created_at",
    "updated_at", "send_at", "result_url", "segments", "encoding", "error", "unanswered",
)  # fmt: skip


def serialize(item: Item) -> dict[str, Any]:
    """Plain values to DynamoDB attribute values (None values are left out)."""
    return {k: _serializer.serialize(v) for k, v in item.items() if v is not None}


def deserialize(raw: dict[str, Any]) -> Item:
    """DynamoDB attribute values to plain values."""
    return {k: _deserializer.deserialize(v) for k, v in raw.items()}


def message_key(message_id: str) -> dict[str, Any]:
    """The primary key of a message, serialised."""
    return serialize({keys.PK: keys.message_pk(message_id), keys.SK: keys.MESSAGE_SK})


def message_item(message: Message, retention: timedelta | None = None) -> Item:
    """The stored row of ``message``, with the index attributes it belongs in."""
    data = message.model_dump(mode="json", by_alias=True, exclude={"history"})
    row: Item = {k: data[k] for k in MESSAGE_FIELDS}
    row["history"] = [e.model_dump(mode="json") for e in message.history]
    inbound = message.type is MessageType.INBOUND
    for name in ("created_at", "updated_at", "send_at"):
        value = getattr(message, name)
        row[name] = keys.timestamp(value) if value else None
    # Attributes a reader can infer are left out: every byte is billed on the item and
    # on each index that projects it (see message_from_item for the inference).
    if row["updated_at"] == row["created_at"]:
        row["updated_at"] = None
    if inbound and message.sms_message_id == message.id:
        row["sms_message_id"] = None
    row.update(
        {
            keys.PK: keys.message_pk(message.id),
            keys.SK: keys.MESSAGE_SK,
            # An inbound message's id is Plum's id (a GetItem finds it), and Plum reports
            # no statuses for it: it stays out of ByPlumId, one index write less.
            keys.PLUM_ID_ATTR: None if inbound else message.sms_message_id,
            keys.TIME_PK: keys.sharded(keys.ALL_MESSAGES, message.id),
            keys.TIME_SK: keys.time_sort_key(message.created_at, message.id),
            keys.CUSTOMER_PK: message.customer_number,
            keys.ACCOUNT_PK: message.account_number,
            keys.STATUS_PK: keys.sharded(message.status, message.id),
            keys.TYPE_PK: keys.sharded(message.type.value, message.id),
        }
    )
    row.update(due_attributes(message))
    if retention:
        row[keys.TTL_ATTR] = int((message.created_at + retention).timestamp())
    return row


def due_attributes(message: Message) -> Item:
    """The sparse ``Due`` index attributes: present only while a send is scheduled."""
    if message.status == Status.SCHEDULED and message.send_at is not None:
        return due_keys(message.id, message.send_at)
    return {}


def due_keys(message_id: str, due: datetime) -> Item:
    """The ``Due`` index attributes of message ``message_id`` due at ``due``."""
    return {
        keys.DUE_PK: keys.sharded(keys.DUE_KIND, message_id),
        keys.DUE_SK: keys.time_sort_key(due, message_id),
    }


def status_key(status: str, message_id: str) -> str:
    """The ``ByStatus`` partition value of message ``message_id`` in ``status``."""
    return keys.sharded(status, message_id)


def message_from_item(item: Item) -> Message:
    """Rebuild a ``Message`` from a stored row."""
    data = {k: item.get(k) for k in MESSAGE_FIELDS}
    data["history"] = item.get("history", [])
    # Left out at creation when they repeat another attribute (see message_item).
    data["updated_at"] = data["updated_at"] or data["created_at"]
    if data["type"] == MessageType.INBOUND.value and data["sms_message_id"] is None:
        data["sms_message_id"] = data["id"]
    stored_schedule = item.get(SCHEDULE_ATTR)
    if stored_schedule:
        # Only sends carry one: the inbound path never imports the send stack.
        from plumsms.domain.sending import Schedule  # noqa: PLC0415

        data["schedule"] = Schedule.from_json(stored_schedule).shown()
    return Message.model_validate(data)


def opt_out_item(opt_out: OptOut) -> Item:
    """The stored row of an opt-out (listed through the ``ByType`` index)."""
    at = keys.timestamp(opt_out.at)
    return {
        keys.PK: keys.opt_out_pk(opt_out.number),
        keys.SK: keys.OPT_OUT_SK,
        "number": opt_out.number,
        "keyword": opt_out.keyword,
        "at": at,
        "message_id": opt_out.message_id,
        keys.TYPE_PK: keys.sharded(keys.OPT_OUT_KIND, opt_out.number),
        keys.TIME_SK: f"{at}#{opt_out.number}",
    }


def opt_out_from_item(row: Item) -> OptOut:
    """Rebuild an ``OptOut`` from a stored row."""
    return OptOut(
        number=row["number"],
        keyword=row["keyword"],
        at=datetime.fromisoformat(row["at"]),
        message_id=row["message_id"],
    )


PEER_ROW_DAYS = 2
"""Reply counters look back one hour; their rows expire (TTL) two days after a change."""


def peer_item(state: PeerState, revision: int) -> Item:
    """The stored row of a number's reply counters, at ``revision``."""
    changed = max((*state.replies, *state.forwards), default=None) or state.last_body_at
    row: Item = {
        keys.PK: keys.peer_pk(state.number),
        keys.SK: keys.PEER_SK,
        "replies": [keys.timestamp(t) for t in state.replies],
        "forwards": [keys.timestamp(t) for t in state.forwards],
        "last_body": state.last_body,
        "last_body_at": keys.timestamp(state.last_body_at) if state.last_body_at else None,
        "rev": revision,
    }
    if changed is not None:
        row[keys.TTL_ATTR] = int((changed + timedelta(days=PEER_ROW_DAYS)).timestamp())
    return row


def peer_from_item(number: str, row: Item | None, opted_out: bool) -> PeerState:
    """Rebuild a ``PeerState`` from its row (``None``: no counters yet)."""
    if row is None:
        return PeerState(number, opted_out=opted_out)
    last_at = row.get("last_body_at")
    return PeerState(
        number,
        opted_out=opted_out,
        replies=tuple(datetime.fromisoformat(t) for t in row.get("replies", [])),
        forwards=tuple(datetime.fromisoformat(t) for t in row.get("forwards", [])),
        last_body=row.get("last_body"),
        last_body_at=datetime.fromisoformat(last_at) if last_at else None,
        revision=int(row.get("rev", 0)),
    )
