"""The message status state machine: monotonic, so late or repeated reports cannot regress.

    scheduled -> sending -> queued -> sent -> delivered | undelivered | failed
    received                      (inbound, final)
    cancelled | suppressed        (never left, final)

Plum sends only the latest status, without a timestamp or ordering guarantee, and may
repeat itself: a report moves a message only forward, a final status is never
overwritten, and a status string we do not know is kept in the history without moving
the state.

``plan`` turns reports into the one write a message needs: the statuses to append to its
history (each distinct status once, with the time it first arrived) and the status it
ends in. Applying any duplication or reordering of the same reports ends in the same
status with the same set of statuses in the history.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from plumsms.domain.models import HistoryEntry, Message, Status

RANK: dict[str, int] = {
    Status.SCHEDULED: 0,
    Status.SENDING: 1,
    Status.QUEUED: 2,
    Status.SENT: 3,
    Status.DELIVERED: 4,
    Status.UNDELIVERED: 4,
    Status.FAILED: 4,
    Status.RECEIVED: 4,
    Status.CANCELLED: 4,
    Status.SUPPRESSED: 4,
}
FINAL = frozenset(s for s, rank in RANK.items() if rank == max(RANK.values()))
PENDING = frozenset({Status.SCHEDULED})
"""Statuses in which a message may still be cancelled, moved or edited."""

REPORTABLE = frozenset(
    {Status.QUEUED, Status.SENT, Status.DELIVERED, Status.UNDELIVERED, Status.FAILED}
)
"""Statuses Plum may report for a message it sends. The others are ours (scheduled,
sending, cancelled, suppressed) or inbound-only (received): reported by Plum for an
outgoing message they are kept in the history but never move it."""

DELIVERY_OUTCOMES = frozenset({Status.DELIVERED, Status.UNDELIVERED, Status.FAILED})
"""The final statuses of a message Plum accepted: what the delivery metrics count."""

MAX_HISTORY = 64
"""History entries kept per message. Past it, only entries that change the status are
appended (bounds the item size against a flood of distinct unknown statuses)."""


def normalize(reported: str) -> str:
    """Plum's status text as we compare it: trimmed, lower case."""
    return reported.strip().lower()


def is_known(status: str) -> bool:
    """True for the statuses of this state machine."""
    return normalize(status) in RANK


def is_final(status: str) -> bool:
    """True when nothing may change the status any more."""
    return normalize(status) in FINAL


@dataclass(frozen=True, slots=True)
class Transition:
    """The outcome of applying a reported status to a current one."""

    status: str
    changed: bool
    known: bool


def apply(current: str, reported: str) -> Transition:
    """Apply ``reported`` to a message in ``current``; never moves backwards."""
    new = normalize(reported)
    if new not in RANK:
        return Transition(current, changed=False, known=False)
    if current in FINAL or RANK[new] <= RANK.get(current, -1):
        return Transition(current, changed=False, known=True)
    return Transition(new, changed=True, known=True)


def apply_reported(current: str, reported: str) -> Transition:
    """Apply a status Plum reported: like ``apply``, but only Plum's own statuses move."""
    new = normalize(reported)
    if new not in REPORTABLE:
        return Transition(current, changed=False, known=new in RANK)
    return apply(current, new)


def predecessors(reported: str) -> frozenset[str]:
    """The statuses ``reported`` moves a message out of (empty when it moves none).

    A write conditioned on the status being one of these needs no read first: it can
    only succeed when the report moves the message, and then the report is not in the
    history yet (a status joins the history only by moving it, or when it cannot).
    """
    new = normalize(reported)
    if new not in REPORTABLE:
        return frozenset()
    return frozenset(s for s, rank in RANK.items() if rank < RANK[new] and s not in FINAL)


# -- planning one write ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plan:
    """What one write does to a message: entries to append, the status it ends in."""

    previous: str
    status: str
    append: tuple[HistoryEntry, ...]
    known: bool
    """False when a report named a status this state machine does not know."""
    record_plum_id: str | None = None
    """Plum's id to store on a message that has none yet (a callback beat the queue
    answer, or a reply Plum sent from Reply-Schema XML)."""

    @property
    def changed(self) -> bool:
        """True when the status moves."""
        return self.status != self.previous

    @property
    def needs_write(self) -> bool:
        """False when the reports say nothing new: a duplicate costs no write."""
        return bool(self.append) or self.record_plum_id is not None


def plan(
    message: Message, reports: Iterable[HistoryEntry], sms_message_id: str | None = None
) -> Plan:
    """Fold ``reports`` (oldest first) into ``message``'s status and history.

    A status already in the history is a duplicate and adds nothing; any other report is
    appended (known or not, moving the status or arriving too late to), so the history
    holds every distinct status Plum told us, each with the time it first arrived.
    """
    seen = {normalize(entry.status) for entry in message.history}
    current = message.status
    known = True
    appended: list[HistoryEntry] = []
    for entry in sorted(reports, key=lambda e: e.at):
        reported = normalize(entry.status)
        transition = apply_reported(current, reported)
        known = known and transition.known
        if reported in seen:
            continue
        if not transition.changed and len(message.history) + len(appended) >= MAX_HISTORY:
            continue
        seen.add(reported)
        current = transition.status
        appended.append(HistoryEntry(status=reported, at=entry.at, source=entry.source))
    record = sms_message_id if sms_message_id and message.sms_message_id is None else None
    return Plan(message.status, current, tuple(appended), known, record)


def queue_to_final_seconds(history: Sequence[HistoryEntry], status: str) -> float | None:
    """Seconds from ``queued`` to the delivery outcome ``status``, read from ``history``.

    None when ``status`` is not a delivery outcome or either time is missing (a dropped
    ``queued`` callback on a message the dispatcher did not record as queued).
    """
    final = normalize(status)
    if final not in DELIVERY_OUTCOMES:
        return None
    queued = [e.at for e in history if normalize(e.status) == Status.QUEUED]
    ended = [e.at for e in history if normalize(e.status) == final]
    if not queued or not ended:
        return None
    return max(0.0, (min(ended) - min(queued)).total_seconds())


# -- change events -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A message moved from one status to another: what change events and metrics carry."""

    message_id: str
    sms_message_id: str | None
    type: str
    to: str
    from_: str
    previous: str
    status: str
    at: datetime
    source: str
    queue_to_final_seconds: float | None

    @property
    def final(self) -> bool:
        """True when the new status is final."""
        return is_final(self.status)


def change_of(before: Message, written: Plan) -> StatusChange | None:
    """The change ``written`` made to ``before`` (None when the status did not move)."""
    if not written.changed:
        return None
    cause = next(e for e in reversed(written.append) if normalize(e.status) == written.status)
    history = [*before.history, *written.append]
    return StatusChange(
        message_id=before.id,
        sms_message_id=before.sms_message_id or written.record_plum_id,
        type=before.type.value,
        to=before.to,
        from_=before.from_,
        previous=written.previous,
        status=written.status,
        at=cause.at,
        source=cause.source,
        queue_to_final_seconds=queue_to_final_seconds(history, written.status),
    )


def change_to(written: Message, previous: str) -> StatusChange:
    """The change a write of our own made (dispatcher, API, opt-out): ``written`` is the
    message as written, moved out of ``previous``; its last history entry is the move."""
    cause = written.history[-1]
    return StatusChange(
        message_id=written.id,
        sms_message_id=written.sms_message_id,
        type=written.type.value,
        to=written.to,
        from_=written.from_,
        previous=previous,
        status=written.status,
        at=cause.at,
        source=cause.source,
        queue_to_final_seconds=queue_to_final_seconds(written.history, written.status),
    )


class ChangePublisher(Protocol):
    """Where status changes go (EventBridge on AWS, a recorder locally)."""

    def publish(self, changes: Sequence[StatusChange]) -> int:
        """Publish ``changes``; returns how many could not be published (never raises)."""
        ...
