"""What the use cases need from the outside world, as Protocols (the adapters implement).

Only domain types cross these ports: times are timezone-aware datetimes, paging
positions are typed cursors the use case hands back unread; no store's shapes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from plumsms.domain.guards import PeerState
from plumsms.domain.models import Message, OptOut

if TYPE_CHECKING:
    # Not at run time: the inbound function's cold start would pay for the send stack.
    from plumsms.domain.sending import Claim, DueCursor, DuePage, DueRef, Schedule


class InboundLog(Protocol):
    """The part of the message store the inbound flow uses."""

    def record_inbound(
        self,
        inbound: Message,
        replies: Sequence[Message],
        reply_xml: bytes,
        *,
        opt_out: OptOut | None = None,
        opt_in_number: str | None = None,
        peers: Sequence[PeerState] = (),
    ) -> None:
        """Store all of it atomically, or raise ``DuplicateInbound`` if seen before.

        ``peers`` are written conditional on the revision they were read at; a change in
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


class DispatchOutbox(Protocol):
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

    def pending_for(self, number: str) -> list[str]:
        """Ids of the scheduled messages to ``number``."""

    def suppress(self, message_id: str, now: datetime, source: str) -> Message | None:
        """``scheduled -> suppressed``; the message as written, None if no longer pending."""


class Pacer(Protocol):
    """What the dispatcher paces its sends with (``RateLimiter``, ``SharedPacer``)."""

    def reserve(self, key: str, deadline: float | None = None) -> float | None:
        """Book ``key``'s next local slot (monotonic seconds); None past ``deadline``."""

    def wait_until(self, key: str, slot: float) -> bool:
        """Sleep until the send may start; False when it may not start in this run."""


class SlotBook(Protocol):
    """Send slots shared by every dispatcher (``DynamoSlotBook`` implements it)."""

    def book(self, number: str, deadline: float) -> tuple[float | None, float]:
        """Book ``number``'s next slot (wall clock) unless it starts after ``deadline``;
        returns the slot (or None) and the sender's next free slot after this call."""
