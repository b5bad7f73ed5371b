"""What the use cases need from the outside world, as Protocols (the adapters implement).

Only domain types cross these ports: times are timezone-aware datetimes, paging
positions are typed cursors the use case hands back unread; no store's shapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from plumsms.domain.guards import PeerState
from plumsms.domain.models import InboundRecord, Message, OptOut

if TYPE_CHECKING:
    # Not at run time: the inbound function's cold start would pay for the send stack.
    from plumsms.domain import status
    from plumsms.domain.models import HistoryEntry
    from plumsms.domain.paging import LogPosition
    from plumsms.domain.queries import MessageQuery, Page
    from plumsms.domain.sending import (
        Claim,
        DueCursor,
        DuePage,
        DueRef,
        EditPlan,
        HeldLease,
        IdempotencyRecord,
        Schedule,
    )
    from plumsms.usecases.log import Order


class InboundLog(Protocol):
    """The part of the message store the inbound flow uses."""

    def record_inbound(self, record: InboundRecord) -> None:
        """Store all of it atomically, or raise ``DuplicateInbound`` if seen before.

        The peers are written conditional on the revision they were read at; a change in
        between raises ``ConcurrentUpdate`` and nothing is written.
        """

    def peer_states(self, numbers: Iterable[str]) -> dict[str, PeerState]:
        """Opt-out and reply counters of each of ``numbers`` (one batch read)."""

    def earlier_answer(self, message_id: str) -> bytes | None:
        """The XML answered when inbound ``message_id`` was first seen; None if never seen."""


class Clock(Protocol):
    """The current time (injected so tests can fix it)."""

    def __call__(self) -> datetime:
        """Timezone-aware UTC now."""


class PendingMessages(Protocol):
    """Finding and suppressing a number's pending messages."""

    def pending_for(self, number: str) -> list[str]:
        """Ids of the scheduled messages to ``number``."""

    def suppress(self, message_id: str, now: datetime, source: str) -> Message | None:
        """``scheduled -> suppressed``; the message as written, None if no longer pending."""


class DispatchOutbox(PendingMessages, Protocol):
    """What the dispatcher needs from the outbox (``DynamoOutbox`` implements it)."""

    def due(self, now: datetime, limit: int, after: DueCursor | None = None) -> DuePage:
        """Messages due at ``now``, oldest first; ``after`` is the previous page's cursor."""

    def claim(
        self, ref: DueRef, token: str, now: datetime, check_after: datetime, result_url: str | None
    ) -> Claim | None:
        """``scheduled -> sending`` unless someone was first."""

    def record_sent(self, claim: Claim, plum_ids: Sequence[str], now: datetime) -> bool:
        """``sending -> queued`` with Plum's ids."""

    def retry_later(
        self, claim: Claim, due: datetime, attempts: int, error: str | None, now: datetime
    ) -> bool:
        """``sending -> scheduled``, due again at ``due``."""

    def check_later(
        self, claim: Claim, check_after: datetime, attempts: int, error: str, now: datetime
    ) -> bool:
        """Keep the claim until Plum can be asked about the message."""

    def finish(self, claim: Claim, status: str, error: str, now: datetime) -> Message | None:
        """``sending -> failed | suppressed``: the message as written (None: claim lost)."""

    def stale(self, now: datetime, limit: int) -> list[Claim]:
        """Claims whose ``check_after`` has passed."""

    def take_over(self, claim: Claim, token: str, check_after: datetime) -> Claim | None:
        """Move a stale claim to a new token."""

    def opted_out(self, numbers: Iterable[str]) -> set[str]:
        """Which of ``numbers`` opted out."""

    def known_plum_id(self, sms_message_id: str) -> bool:
        """True when one of our messages carries ``sms_message_id``."""

    def put_occurrence(self, message: Message, schedule: Schedule) -> bool:
        """Store a series' next message unless it exists."""

    def record_opt_out(self, number: str, message_id: str, keyword: str, now: datetime) -> None:
        """Remember an opt-out learned from Plum."""


class Pacer(Protocol):
    """What the dispatcher paces its sends with (``RateLimiter``, ``SharedPacer``)."""

    def reserve(self, key: str, deadline: float | None = None) -> float | None:
        """Book ``key``'s next local slot (monotonic seconds); None past ``deadline``."""

    def drop(self, key: str, slot: float) -> None:
        """Forget a reserved slot that will not be used (its claim was lost or failed)."""

    def book_reserved(self) -> None:
        """Make sure every reserved slot still to be used is held by this run, before the
        run lets go of the lease (a next run could otherwise take them)."""

    def wait_until(self, key: str, slot: float) -> bool:
        """Sleep until the send may start; False when it may not start in this run."""

    def missed(self) -> int:
        """Slots booked and left unused because they had passed when booked (a gap)."""


class SlotBook(Protocol):
    """Send slots shared by every dispatcher (``DynamoSlotBook`` implements it)."""

    def book(
        self, number: str, deadline: float, earliest: float | None = None
    ) -> tuple[float | None, float]:
        """Book ``number``'s next slot (wall clock), not before ``earliest`` (default: now),
        unless it starts after ``deadline``; returns the slot (or None) and the sender's
        next free slot after this call."""


class RunLease(Protocol):
    """At most one dispatcher run at a time (``DynamoRunLease`` implements it).

    A run that finds the lease held asks the holder for one more pass and ends; the
    holder serves every such request before it lets go.
    """

    def acquire(self, holder: str, now: datetime, until: datetime) -> HeldLease | None:
        """Hold the lease until ``until`` if nobody holds it (or the hold lapsed); None
        when another run holds it."""

    def request(self, now: datetime) -> bool:
        """Ask the holder for one more pass; False when nobody holds the lease."""

    def release(self, holder: str, senders: frozenset[str]) -> bool:
        """Let go unless a pass was requested, leaving ``senders`` (those this run found
        messages for) to the next holder; False (request taken) when one was requested."""

    def give_up(self, holder: str, senders: frozenset[str]) -> None:
        """Let go whatever was requested (the run has no time for another pass)."""


class SendingOutbox(PendingMessages, Protocol):
    """The part of the outbox the API's use cases need."""

    def create(
        self, message: Message, schedule: Schedule, idempotency: IdempotencyRecord | None = None
    ) -> IdempotencyRecord | None:
        """Store a new message (with its idempotency record); the live record that holds
        the key if it is taken."""

    def get_idempotency(self, key: str, now_epoch: int) -> IdempotencyRecord | None:
        """The live idempotency record of ``key``."""

    def get(self, message_id: str) -> tuple[Message, Schedule]:
        """A message and its schedule, or ``NotFound``."""

    def opted_out(self, numbers: Iterable[str]) -> set[str]:
        """Which numbers opted out."""

    def cancel(self, message_id: str, now: datetime, source: str = "api") -> Message:
        """``scheduled -> cancelled`` (the message as written), or ``Conflict``."""

    def edit(self, message_id: str, now: datetime, plan: EditPlan) -> Message:
        """Apply ``plan`` (a new due time, a new body, or both) to a scheduled message, or
        ``Conflict``; the message as written."""


class DispatchTrigger(Protocol):
    """Wakes the dispatcher now (asynchronously; it must not wait for the sends)."""

    def __call__(self) -> None:
        """Ask for a dispatcher run soon."""


class MessageLog(Protocol):
    """What the log use cases need from the message store."""

    def get(self, message_id: str) -> Message:
        """The message, or ``NotFound``."""

    def list_messages(self, query: MessageQuery) -> Page:
        """One page of messages matching ``query``."""

    def iter_messages(self, query: MessageQuery) -> Iterator[tuple[Message, LogPosition]]:
        """Every matching message in order, with its position, fetched lazily."""

    def iter_statuses(
        self, start: datetime, end: datetime, page_size: int = 1000
    ) -> Iterator[tuple[datetime, str]]:
        """``(created_at, status)`` of messages created in the window, newest first."""

    def list_opt_outs(
        self, limit: int, order: Order = "desc", after: LogPosition | None = None
    ) -> tuple[list[OptOut], LogPosition | None]:
        """One page of opt-outs and the next page's position."""


class MessageLister(Protocol):
    """Lists messages by status and creation time (the message store)."""

    def list_messages(self, query: MessageQuery) -> Page:
        """One page of messages matching ``query``."""
        ...

    def get_by_plum_id(self, sms_message_id: str) -> Message | None:
        """The message Plum knows as ``sms_message_id``, if we have it."""
        ...


class AppliedWrite(Protocol):
    """What a status write did."""

    @property
    def before(self) -> Message:
        """The message as last read, before the write."""
        ...

    @property
    def plan(self) -> status.Plan:
        """The write the domain planned on it."""
        ...

    @property
    def change(self) -> status.StatusChange | None:
        """The status change made, if the status moved."""
        ...


class Advance(Protocol):
    """What an attempt to move a message without reading it first found."""

    @property
    def applied(self) -> AppliedWrite | None:
        """The move written, if the report moved the message."""
        ...

    @property
    def current(self) -> Message | None:
        """Otherwise the message as it is (None: no such message)."""
        ...


class StatusLog(Protocol):
    """The part of the message store the status flow uses."""

    def find(self, message_id: str) -> Message | None:
        """A message by our id (read-after-write consistent)."""
        ...

    def find_by_plum_id(self, sms_message_id: str) -> Message | None:
        """A message by Plum's id."""
        ...

    def advance(self, message_id: str, entry: HistoryEntry, plum_id: str | None) -> Advance:
        """Move a message to ``entry``'s status in one conditional write, if it moves it."""
        ...

    def apply(self, message: Message, decide: Callable[[Message], status.Plan]) -> AppliedWrite:
        """Plan on ``message`` and write the plan conditionally, re-planning on races."""
        ...

    def keep_orphan(self, sms_message_id: str, entry: HistoryEntry, ref: str | None) -> bool:
        """Keep a report for an unknown message; False if that status was kept before."""
        ...

    def attach_orphans(self, message_id: str, sms_message_id: str) -> AppliedWrite | None:
        """Fold reports kept for ``sms_message_id`` into the message; None if there were none."""
        ...
