"""What the simulator remembers: messages, phones' inboxes, opt-outs, callbacks.

Everything is guarded by one lock; readers get copies (plain dicts), never live records.
Numbers are kept in E.164; Plum's digit forms are produced only when a resource is shown.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from plumsms_local.simulator import inferred

FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed"})


class Kind(StrEnum):
    """Message types, with the names Plum's message log uses."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"
    REPLY = "reply"


def iso(timestamp: float) -> str:
    """ISO 8601 UTC with milliseconds, the form every ``/sim/`` answer uses."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


@dataclass(slots=True)
class SimMessage:
    """One SMS as Plum knows it; each part of a split body is its own message."""

    sms_message_id: str
    seq: int
    kind: Kind
    to: str
    from_: str
    body: str
    created_at: float
    result_url: str = ""
    status: str = "queued"
    group_id: str = ""
    part: int = 1
    parts: int = 1
    in_reply_to: str | None = None
    reply_error: str | None = None
    opt_out_confirmation: bool = False
    history: list[tuple[str, float]] = field(default_factory=list)

    @property
    def request_timestamp(self) -> int:
        """Integer Unix seconds, as Plum's resource carries it."""
        return int(self.created_at)

    @property
    def account_number(self) -> str:
        """The account's side of the exchange."""
        return self.to if self.kind is Kind.INBOUND else self.from_

    @property
    def customer_number(self) -> str:
        """The other side: the phone that texted in or is texted."""
        return self.from_ if self.kind is Kind.INBOUND else self.to

    def resource(self) -> dict[str, str | int]:
        """Plum's SMS message resource: exactly its seven fields, numbers in digit form."""
        if self.kind is Kind.INBOUND:
            to, from_ = inferred.account_digits(self.to), inferred.customer_digits(self.from_)
        else:
            to, from_ = inferred.customer_digits(self.to), inferred.account_digits(self.from_)
        return {
            "sms_message_id": self.sms_message_id,
            "to": to,
            "from": from_,
            "body": self.body,
            "request_timestamp": self.request_timestamp,
            "result_url": self.result_url,
            "status": self.status,
        }

    def admin_view(self) -> dict[str, Any]:
        """Everything the simulator knows about the message, for ``GET /sim/messages``."""
        return {
            "sms_message_id": self.sms_message_id,
            "type": self.kind.value,
            "to": self.to,
            "from": self.from_,
            "body": self.body,
            "status": self.status,
            "request_timestamp": self.request_timestamp,
            "result_url": self.result_url,
            "group_id": self.group_id,
            "part": self.part,
            "parts": self.parts,
            "in_reply_to": self.in_reply_to,
            "reply_error": self.reply_error,
            "history": [{"status": s, "at": iso(at)} for s, at in self.history],
        }


@dataclass(frozen=True, slots=True)
class InboxEntry:
    """What a simulated phone received: one whole (reassembled) SMS."""

    from_: str
    body: str
    parts: int
    at: float
    sms_message_ids: tuple[str, ...]
    source: str  # "plum" or "carrier"

    def as_dict(self) -> dict[str, Any]:
        """JSON form for ``GET /sim/phones/{phone}/inbox``."""
        return {
            "from": self.from_,
            "body": self.body,
            "parts": self.parts,
            "at": iso(self.at),
            "sms_message_id": self.sms_message_ids[0] if self.sms_message_ids else None,
            "sms_message_ids": list(self.sms_message_ids),
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class CallbackRecord:
    """One result-URL callback the simulator sent, dropped or failed to send."""

    sms_message_id: str
    status: str
    url: str
    outcome: str  # "sent", "dropped" or "error"
    at: float
    http_status: int | None = None
    error: str | None = None
    duplicate: bool = False
    reordered: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON form for ``GET /sim/callbacks``."""
        return {
            "sms_message_id": self.sms_message_id,
            "status": self.status,
            "url": self.url,
            "outcome": self.outcome,
            "at": iso(self.at),
            "http_status": self.http_status,
            "error": self.error,
            "duplicate": self.duplicate,
            "reordered": self.reordered,
        }


@dataclass(frozen=True, slots=True)
class MessageQuery:
    """Filters and paging of ``sms/messages`` and ``sms/conversation`` (already parsed)."""

    offset: int = 0
    limit: int = inferred.DEFAULT_LIMIT
    sort: str = inferred.MESSAGES_DEFAULT_SORT
    start: int | None = None
    end: int | None = None
    type: str = "all"
    phone_number: str | None = None
    number_side: str | None = None
    between: tuple[str, str] | None = None  # (account, customer) of a conversation

    def matches(self, message: SimMessage) -> bool:
        """True when ``message`` passes every filter (paging aside)."""
        ts = message.request_timestamp
        if self.start is not None and ts < self.start:
            return False
        if self.end is not None and ts > self.end:
            return False
        if self.type == "inbound" and message.kind is not Kind.INBOUND:
            return False
        if self.type == "outbound" and message.kind is Kind.INBOUND:
            return False
        if self.phone_number is not None:
            sides = {
                "account": (message.account_number,),
                "customer": (message.customer_number,),
                None: (message.account_number, message.customer_number),
            }[self.number_side]
            if self.phone_number not in sides:
                return False
        if self.between is not None:
            account, customer = self.between
            if (message.account_number, message.customer_number) != (account, customer):
                return False
        return True


class SimState:
    """The simulator's memory. Thread-safe; every public method takes the lock."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        application_urls: dict[str, str] | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._clock = clock
        self._messages: dict[str, SimMessage] = {}
        self._groups: dict[str, list[str]] = {}
        self._inboxes: dict[str, list[InboxEntry]] = {}
        self._unsubscribed: set[str] = set()
        self._application_urls: dict[str, str] = dict(application_urls or {})
        self._callbacks: list[CallbackRecord] = []
        self._seq = 0

    def reset(self, unsubscribed: Iterable[str]) -> None:
        """Forget the traffic and restore the configured opt-outs.

        Application URLs are console settings, not traffic: they survive a reset.
        """
        with self._lock:
            self._messages.clear()
            self._groups.clear()
            self._inboxes.clear()
            self._callbacks.clear()
            self._unsubscribed = set(unsubscribed)
            self._seq = 0

    def now(self) -> float:
        """The clock the state stamps records with."""
        return self._clock()

    # messages

    def add_group(self, messages: list[SimMessage]) -> None:
        """Store the parts of one request; they share a group id for reassembly."""
        with self._lock:
            for message in messages:
                self._messages[message.sms_message_id] = message
                message.history.append((message.status, message.created_at))
            self._groups[messages[0].group_id] = [m.sms_message_id for m in messages]

    def next_seq(self) -> int:
        """A strictly increasing number: creation order, and the fault generator's key."""
        with self._lock:
            self._seq += 1
            return self._seq

    def set_status(self, sms_message_id: str, status: str) -> SimMessage | None:
        """Record a status change; returns a snapshot, or None for a forgotten message."""
        with self._lock:
            message = self._messages.get(sms_message_id)
            if message is None:
                return None
            message.status = status
            message.history.append((status, self._clock()))
            return _copy(message)

    def set_reply_error(self, sms_message_id: str, error: str) -> None:
        """Note why the Application URL's answer to an inbound message was refused."""
        with self._lock:
            message = self._messages.get(sms_message_id)
            if message is not None:
                message.reply_error = error

    def get(self, sms_message_id: str) -> SimMessage | None:
        """A snapshot of one message."""
        with self._lock:
            message = self._messages.get(sms_message_id)
            return None if message is None else _copy(message)

    def group(self, group_id: str) -> list[SimMessage]:
        """Snapshots of every part of one request, in order."""
        with self._lock:
            return [_copy(self._messages[i]) for i in self._groups.get(group_id, [])]

    def query(self, query: MessageQuery) -> tuple[list[SimMessage], int]:
        """One page of matching messages and the number that matched before paging."""
        with self._lock:
            matching = [_copy(m) for m in self._messages.values() if query.matches(m)]
        matching.sort(key=lambda m: (m.request_timestamp, m.seq), reverse=query.sort == "desc")
        return matching[query.offset : query.offset + query.limit], len(matching)

    def all_messages(self) -> list[SimMessage]:
        """Snapshots of every message, oldest first."""
        with self._lock:
            return sorted((_copy(m) for m in self._messages.values()), key=lambda m: m.seq)

    # phones, opt-outs, numbers

    def deliver_to_inbox(self, phone: str, entry: InboxEntry) -> None:
        """Put a received SMS in a phone's inbox."""
        with self._lock:
            self._inboxes.setdefault(phone, []).append(entry)

    def inbox(self, phone: str) -> list[InboxEntry]:
        """What ``phone`` received, oldest first."""
        with self._lock:
            return list(self._inboxes.get(phone, []))

    def unsubscribe(self, phone: str) -> None:
        """Blacklist ``phone``, as Plum does after an opt-out keyword."""
        with self._lock:
            self._unsubscribed.add(phone)

    def resubscribe(self, phone: str) -> None:
        """Take ``phone`` off the blacklist."""
        with self._lock:
            self._unsubscribed.discard(phone)

    def is_unsubscribed(self, phone: str) -> bool:
        """True when ``phone`` opted out."""
        with self._lock:
            return phone in self._unsubscribed

    def unsubscribed(self) -> list[str]:
        """Every opted-out number, sorted."""
        with self._lock:
            return sorted(self._unsubscribed)

    def set_application_url(self, number: str, url: str | None) -> None:
        """Set (or clear with None) the Application URL of an SMS number."""
        with self._lock:
            if url is None:
                self._application_urls.pop(number, None)
            else:
                self._application_urls[number] = url

    def application_url(self, number: str) -> str | None:
        """The Application URL of ``number``, if any."""
        with self._lock:
            return self._application_urls.get(number)

    def application_urls(self) -> dict[str, str]:
        """Every configured Application URL by SMS number."""
        with self._lock:
            return dict(self._application_urls)

    # callbacks

    def record_callback(self, record: CallbackRecord) -> None:
        """Remember one callback attempt."""
        with self._lock:
            self._callbacks.append(record)

    def callbacks(self) -> list[CallbackRecord]:
        """Every callback attempt, in the order they happened."""
        with self._lock:
            return list(self._callbacks)


def _copy(message: SimMessage) -> SimMessage:
    return replace(message, history=list(message.history))
