"""The message status state machine: monotonic, so late or repeated reports cannot regress.

    scheduled -> sending -> queued -> sent -> delivered | undelivered | failed
    received                      (inbound, final)
    cancelled | suppressed        (never left, final)

Plum sends only the latest status, without a timestamp or ordering guarantee, and may
repeat itself: a report moves a message only forward, a final status is never
overwritten, and a status string we do not know is kept in the history without moving
the state.
"""

from __future__ import annotations

from dataclasses import dataclass

from plumsms.domain.models import Status

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
