"""Test factories: one way to make the domain objects tests need."""

from __future__ import annotations

import uuid
from datetime import datetime

from plumsms.adapters.dynamodb import codec, keys
from plumsms.adapters.dynamodb.store import DynamoMessageStore
from plumsms.domain import segments
from plumsms.domain.models import Message, MessageType, Status, new_message

CUSTOMER = "+19998881234"
ACCOUNT = "+12435678910"


def outbound_message(
    at: datetime,
    *,
    message_id: str | None = None,
    to: str = CUSTOMER,
    from_: str = ACCOUNT,
    body: str = "hello",
    status: str = Status.SCHEDULED,
    send_at: datetime | None = None,
    sms_message_id: str | None = None,
    source: str = "test",
) -> Message:
    """An outbound message as first stored at ``at`` (a fresh id unless given; a
    scheduled one is due at ``at`` unless ``send_at`` says otherwise)."""
    if send_at is None and status == Status.SCHEDULED:
        send_at = at
    info = segments.analyze(body)
    return new_message(
        message_id or uuid.uuid4().hex,
        MessageType.OUTBOUND,
        to=to,
        from_=from_,
        body=body,
        status=status,
        at=at,
        source=source,
        send_at=send_at,
        sms_message_id=sms_message_id,
        segments=info.segments,
        encoding=info.encoding,
    )


def put_message(store: DynamoMessageStore, message: Message) -> None:
    """Store ``message`` as a row of ``store``'s table (it must not exist yet), the way the
    bundle's own writes lay it out."""
    store.client.put_item(
        TableName=store.table_name,
        Item=codec.serialize(codec.message_item(message, store.retention)),
        ConditionExpression=f"attribute_not_exists({keys.PK})",
    )
