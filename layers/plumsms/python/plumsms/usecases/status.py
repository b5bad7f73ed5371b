"""Apply what Plum says about a message: Result URL callbacks and ``sms/status`` answers.

A callback finds its message by our reference (the ``ref`` of its Result URL) first, so
one that beats the queue answer still lands, then by Plum's id. A report that moves the
message is written at once, conditioned on the status it moves out of (no read); any
other is planned by the domain (``plumsms.domain.status.plan``) on the message as it is,
and written with one conditional write if it says anything new. A
callback for a message we do not have is kept as an orphan until the message appears.
Every status change goes to the change publisher.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from plumsms.domain import status
from plumsms.domain.callbacks import StatusCallback
from plumsms.domain.errors import NotFound
from plumsms.domain.models import HistoryEntry, Message, utc_now
from plumsms.usecases.ports import AppliedWrite, Clock, StatusLog

CALLBACK_SOURCE = "plum-callback"
STATUS_SOURCE = "plum-status"
"""``source`` of history entries from Result URL callbacks and from ``sms/status``."""


class Outcome(StrEnum):
    """What a report did."""

    CHANGED = "changed"
    """The status moved (and the report joined the history)."""
    RECORDED = "recorded"
    """Joined the history without moving the status: late, or a status we do not know."""
    DUPLICATE = "duplicate"
    """Said nothing new: no write."""
    ORPHANED = "orphaned"
    """No such message (yet): kept until it appears."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusResult:
    """The outcome of one report, for the answer, the logs and the metrics."""

    outcome: Outcome
    reported: str
    known: bool
    message_id: str | None = None
    change: status.StatusChange | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusService:
    """Applies reports through the state machine and publishes the changes."""

    log: StatusLog
    publisher: status.ChangePublisher
    clock: Clock = utc_now

    def handle_callback(self, callback: StatusCallback, ref: str | None) -> StatusResult:
        """Apply one Result URL callback (``ref``: our message id from its URL, if any)."""
        entry = HistoryEntry(status=callback.status, at=self.clock(), source=CALLBACK_SOURCE)
        message = None
        if ref:
            # The usual case (a report that moves the message) is this one write.
            advanced = self.log.advance(ref, entry, callback.sms_message_id)
            if advanced.applied is not None:
                return self._result(advanced.applied, entry.status, known=True)
            message = advanced.current
        if message is None:
            message = self.log.find_by_plum_id(callback.sms_message_id)
        if message is None:
            return self._orphan(callback.sms_message_id, entry, ref)
        try:
            return self._apply(message, entry, callback.sms_message_id)
        except NotFound:
            return self._orphan(callback.sms_message_id, entry, ref)

    def apply_status(
        self, message: Message, reported: str, source: str, sms_message_id: str | None = None
    ) -> StatusResult:
        """Apply a status learned another way (``sms/status`` answers) to ``message``.

        ``sms_message_id`` is recorded on a message that has no Plum id yet.
        """
        entry = HistoryEntry(status=status.normalize(reported), at=self.clock(), source=source)
        return self._apply(message, entry, sms_message_id)

    def attach_orphans(self, message_id: str, sms_message_id: str) -> StatusResult | None:
        """Fold callbacks kept for ``sms_message_id`` into message ``message_id``."""
        applied = self.log.attach_orphans(message_id, sms_message_id)
        if applied is None:
            return None
        return self._result(applied, "", known=applied.plan.known)

    def _apply(self, message: Message, entry: HistoryEntry, plum_id: str | None) -> StatusResult:
        applied = self.log.apply(message, lambda m: status.plan(m, [entry], plum_id))
        return self._result(applied, entry.status, known=applied.plan.known)

    def _result(self, applied: AppliedWrite, reported: str, *, known: bool) -> StatusResult:
        change = applied.change
        if change is not None:
            self.publisher.publish([change])  # best effort; the publisher counts failures
            outcome = Outcome.CHANGED
        elif applied.plan.append:
            outcome = Outcome.RECORDED
        else:
            outcome = Outcome.DUPLICATE
        return StatusResult(
            outcome=outcome,
            reported=reported,
            known=known,
            message_id=applied.before.id,
            change=change,
        )

    def _orphan(self, sms_message_id: str, entry: HistoryEntry, ref: str | None) -> StatusResult:
        kept = self.log.keep_orphan(sms_message_id, entry, ref)
        return StatusResult(
            outcome=Outcome.ORPHANED if kept else Outcome.DUPLICATE,
            reported=entry.status,
            known=status.is_known(entry.status),
        )
