"""Domain models: messages, their status history, inbound SMS and replies."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from plumsms.domain.errors import ValidationFailed, pydantic_check
from plumsms.domain.phone import E164, Address
from plumsms.domain.segments import analyze

if TYPE_CHECKING:
    from plumsms.domain.guards import PeerState
    from plumsms.domain.sending import SendRequest

MAX_BODY_CHARS = 1600
"""Longest body we accept or send: ten concatenated GSM-7 parts, a common carrier cap."""

MAX_INBOUND_BODY_CHARS = 255 * 153
"""Longest inbound body kept: 255 concatenated GSM-7 parts, the most an SMS can have.

Inbound bodies are never refused for their length (issue 11); anything longer than any
SMS can be is cut here, so the stored row stays far below DynamoDB's 400 KB item limit.
"""

_PLUM_ID = re.compile(r"^[0-9a-f]{32}$")
_ID_NAMESPACE = uuid.UUID("7d0b2f5e-2b44-4d38-9d6c-8d0f4f5e0a11")


class MessageType(StrEnum):
    """Direction of a message, with Plum's names."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"
    REPLY = "reply"


class Status(StrEnum):
    """Every status a message can be in; Plum may also report strings not listed here."""

    SCHEDULED = "scheduled"
    SENDING = "sending"
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    RECEIVED = "received"
    CANCELLED = "cancelled"
    SUPPRESSED = "suppressed"


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def parse_sms_message_id(value: str, field: str = "sms_message_id") -> str:
    """Plum's ``sms_message_id`` (32 hex characters) lowercased, or ``ValidationFailed``."""
    text = value.strip().lower() if isinstance(value, str) else ""
    if not _PLUM_ID.fullmatch(text):
        raise ValidationFailed(field, "must be 32 hexadecimal characters")
    return text


_plum_id = pydantic_check(parse_sms_message_id)


def _aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must carry a time zone")
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        raise ValueError("is out of range once converted to UTC (years 1 to 9999)") from exc


PlumMessageId = Annotated[str, AfterValidator(_plum_id)]
"""Plum's ``sms_message_id``: a 128-bit id as 32 lowercase hex characters."""

UtcDatetime = Annotated[datetime, AfterValidator(_aware_utc)]
"""A timezone-aware datetime, normalised to UTC."""


_KEY_PARAM = re.compile(r"([?&]key=)[^&#]*")
MASK = "***"


def mask_key(url: str) -> str:
    """``url`` with the value of its ``key`` query parameter replaced by ``***``."""
    return _KEY_PARAM.sub(lambda m: m.group(1) + MASK, url)


def new_message_id() -> str:
    """A fresh message id (our own, 32 lowercase hex characters)."""
    return uuid.uuid4().hex


def derived_id(parent_id: str, purpose: str, index: int) -> str:
    """A deterministic id for a record derived from another (e.g. the n-th reply).

    A retried webhook derives the same ids, so it produces the same XML and the same
    records instead of new ones.
    """
    return uuid.uuid5(_ID_NAMESPACE, f"{parent_id}/{purpose}/{index}").hex


class HistoryEntry(BaseModel):
    """One status a message was in, when we learned it, and who said so."""

    model_config = ConfigDict(frozen=True)

    status: str
    at: UtcDatetime
    source: str


def _inbound_body(value: str) -> str:
    return value[:MAX_INBOUND_BODY_CHARS]


class InboundSms(BaseModel):
    """The form fields Plum POSTs to the Application URL.

    Every real SMS is kept: the sender may be a short code or alphanumeric (``from_`` is
    E.164 only when it is a phone number), the body any length (cut at the longest SMS
    possible) or missing. ``to`` is the account's own number, so it must be a phone number.
    """

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    sms_message_id: PlumMessageId
    to: E164
    from_: Address = Field(alias="from")
    body: Annotated[str, AfterValidator(_inbound_body)] = ""


class Reply(BaseModel):
    """An SMS the inbound flow decided to send back (or forward)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    to: E164
    from_: E164 = Field(alias="from")
    body: str = Field(min_length=1, max_length=MAX_BODY_CHARS)


class Message(BaseModel):
    """A message in the log, in or out; the JSON shape of the API and the CLI."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    sms_message_id: PlumMessageId | None = None
    type: MessageType
    to: Address
    from_: Address = Field(alias="from")
    body: str = Field(max_length=MAX_INBOUND_BODY_CHARS)
    status: str
    created_at: UtcDatetime
    updated_at: UtcDatetime
    send_at: UtcDatetime | None = None
    result_url: str | None = None
    segments: int = Field(ge=1)
    encoding: Literal["GSM-7", "UCS-2"]
    error: str | None = None
    unanswered: str | None = None
    """Why an inbound message got no answer, or fewer forwards (``Unanswered`` values)."""
    schedule: dict[str, Any] | None = None
    """A send's series and quiet hours (``recurrence``, ``occurrence``, ``series_id``,
    ``quiet_hours``), as ``POST /messages`` answers them; absent for a plain send."""
    history: list[HistoryEntry] = Field(default_factory=list)

    @field_validator("history")
    @classmethod
    def _oldest_first(cls, value: list[HistoryEntry]) -> list[HistoryEntry]:
        return sorted(value, key=lambda entry: entry.at)

    @property
    def customer_number(self) -> str:
        """The number on the far side: the sender of inbound, the recipient otherwise."""
        return self.from_ if self.type is MessageType.INBOUND else self.to

    @property
    def account_number(self) -> str:
        """The account's own SMS number on this message."""
        return self.to if self.type is MessageType.INBOUND else self.from_

    def to_json(self) -> dict[str, object]:
        """The documented JSON shape (ISO 8601 UTC timestamps, ``from`` not ``from_``).

        The Result URL's webhook key is masked: API answers, exports and the web page
        show where Plum reports, never the secret it reports with.
        """
        data = self.model_dump(mode="json", by_alias=True)
        if data["schedule"] is None:
            del data["schedule"]
        if self.result_url:
            data["result_url"] = mask_key(self.result_url)
        return data


def new_message(
    message_id: str,
    direction: MessageType,
    *,
    to: str,
    from_: str,
    body: str,
    status: str,
    at: datetime,
    source: str,
    segments: int,
    encoding: Literal["GSM-7", "UCS-2"],
    sms_message_id: str | None = None,
    send_at: datetime | None = None,
    result_url: str | None = None,
    unanswered: str | None = None,
) -> Message:
    """A message as first stored: created at ``at`` in ``status``, which ``source`` set
    (its history's first entry)."""
    return Message(
        id=message_id,
        sms_message_id=sms_message_id,
        type=direction,
        to=to,
        from_=from_,
        body=body,
        status=status,
        created_at=at,
        updated_at=at,
        send_at=send_at,
        result_url=result_url,
        segments=segments,
        encoding=encoding,
        unanswered=unanswered,
        history=[HistoryEntry(status=status, at=at, source=source)],
    )


def new_message_for(
    sms: InboundSms | Reply | SendRequest | Message,
    message_id: str,
    direction: MessageType,
    **fields: Any,
) -> Message:
    """``new_message`` with the numbers and body of ``sms`` (an SMS received, to answer,
    to send, or sent before), and the segments and encoding its body takes; ``fields``
    are the rest (``status``, ``at``, ``source``, ``send_at``...)."""
    info = analyze(sms.body)
    return new_message(
        message_id,
        direction,
        to=sms.to,
        from_=sms.from_,
        body=sms.body,
        segments=info.segments,
        encoding=info.encoding,
        **fields,
    )


class OptOut(BaseModel):
    """A number that texted an opt-out keyword and has not opted back in."""

    model_config = ConfigDict(frozen=True)

    number: E164
    keyword: str
    at: UtcDatetime
    message_id: str


@dataclass(frozen=True, slots=True)
class InboundRecord:
    """Everything one new inbound message leaves in the log, stored together."""

    inbound: Message
    replies: Sequence[Message] = ()
    reply_xml: bytes = b""
    """The answer given to Plum (kept only when there are replies)."""
    opt_out: OptOut | None = None
    """The sender's opt-out, when the message was an opt-out keyword."""
    opt_in_number: str | None = None
    """The sender, when the message was an opt-in keyword (its opt-out is removed)."""
    peers: Sequence[PeerState] = ()
    """Reply counters to write back, each conditional on the revision it was read at."""
