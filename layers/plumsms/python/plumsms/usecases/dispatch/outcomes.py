"""What a claimed message becomes once Plum has answered (or been asked about it).

Shared by the run loop (a send's answer) and recovery (a stale claim checked with Plum):
``queued`` with Plum's ids, due again after a backoff, kept until Plum can be asked,
``failed`` with Plum's reason, or an opt-out learned from Plum. A recurring message's
next occurrence is created (with a derived id, so at most once) when the current one is
sent or has failed for good. Every final status written goes to the change publisher.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from plumsms.domain.errors import ValidationFailed
from plumsms.domain.models import MessageType, Status, derived_id, new_message_for
from plumsms.domain.plum import PlumError, UnsubscribedRecipient
from plumsms.domain.sending import Claim, next_occurrence
from plumsms.domain.status import ChangePublisher, StatusChange, change_to
from plumsms.usecases.dispatch.run import DispatchConfig, Run
from plumsms.usecases.ports import Clock, DispatchOutbox
from plumsms.usecases.sending import suppress_pending_for

PLUM_OPT_OUT_KEYWORD = "PLUM-UNSUBSCRIBED"
"""The keyword recorded on an opt-out learned from Plum's unsubscribed-recipient error."""


def reason(exc: PlumError | ValidationFailed) -> str:
    """The error recorded on the message: Plum's summary and reason, or the rule broken."""
    if isinstance(exc, ValidationFailed):
        return str(exc)
    return f"{exc.summary}: {exc.reason}" if exc.reason else exc.summary


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Records what happened to claimed messages in the outbox."""

    outbox: DispatchOutbox
    config: DispatchConfig
    clock: Clock
    draw: Callable[[], float]
    publisher: ChangePublisher | None

    def publish(self, change: StatusChange) -> None:
        """Best effort by contract (the publisher counts and logs what it could not put)."""
        if self.publisher is not None:
            self.publisher.publish([change])

    def sent(self, run: Run, claim: Claim, plum_ids: Sequence[str]) -> None:
        """Plum has it: ``queued`` with Plum's ids."""
        self._next_occurrence(claim)
        if self.outbox.record_sent(claim, plum_ids, self.clock()):
            run.report.add("sent")
        else:
            run.report.add("lost_claim")

    def fail(self, run: Run, claim: Claim, why: str) -> None:
        """Failed for good, with ``why``."""
        self._next_occurrence(claim)
        self._finish_failed(claim, why, self.clock())
        run.report.add("failed")

    def retry_now(self, claim: Claim) -> None:
        """Hand the claim back untouched: due again now, no attempt counted."""
        now = self.clock()
        self.outbox.retry_later(claim, now, claim.attempts, None, now)

    def check_later(self, run: Run, claim: Claim, attempts: int, exc: PlumError) -> None:
        """Plum may have it: keep the claim until Plum can be asked about it."""
        now = self.clock()
        self.outbox.check_later(claim, now + self.config.check_delay, attempts, reason(exc), now)
        run.report.add("to_check")

    def unauthorized(self, run: Run, claim: Claim, exc: PlumError) -> None:
        """Plum refused the credentials: the run stops; the message is due again soon
        (not its fault: no attempt counted)."""
        run.halt("unauthorized")
        now = self.clock()
        self.outbox.retry_later(
            claim, now + self.config.backoff_base, claim.attempts, reason(exc), now
        )
        run.report.add("retried")

    def plum_failed(self, run: Run, claim: Claim, exc: PlumError) -> None:
        """Plum's call failed: check, retry with backoff, or fail, as the error says."""
        attempts = claim.attempts + 1
        if exc.maybe_sent:
            # Plum may have queued it: never resend before asking Plum.
            self.check_later(run, claim, attempts, exc)
        elif exc.transient and attempts < self.config.max_attempts:
            now = self.clock()
            due = now + self.config.backoff(attempts, self.draw())
            self.outbox.retry_later(claim, due, attempts, reason(exc), now)
            run.report.add("retried")
        else:
            self.fail(run, claim, reason(exc))

    def unsubscribed(self, run: Run, claim: Claim, exc: UnsubscribedRecipient) -> None:
        """Plum says the recipient unsubscribed: fail this one, record the opt-out, and
        suppress the number's other pending messages."""
        message = claim.message
        now = self.clock()
        self.outbox.record_opt_out(message.to, message.id, PLUM_OPT_OUT_KEYWORD, now)
        self._finish_failed(claim, reason(exc), now)
        run.report.add("failed")
        run.report.add("opted_out_at_plum")
        suppressed = suppress_pending_for(
            self.outbox, message.to, self.clock, publisher=self.publisher
        )
        run.report.add("suppressed", suppressed)

    def _finish_failed(self, claim: Claim, why: str, now: datetime) -> None:
        failed = self.outbox.finish(claim, Status.FAILED, why, now)
        if failed is not None:
            self.publish(change_to(failed, Status.SENDING))

    def _next_occurrence(self, claim: Claim) -> None:
        schedule = claim.schedule
        now = self.clock()
        planned = next_occurrence(schedule, now)
        if planned is None:
            return
        next_schedule, due = planned
        current = claim.message
        series = schedule.series_id or current.id
        message = new_message_for(
            current,
            derived_id(series, "occurrence", next_schedule.occurrence),
            MessageType.OUTBOUND,
            status=Status.SCHEDULED,
            at=now,
            source="recurrence",
            send_at=due,
        )
        self.outbox.put_occurrence(message, next_schedule.model_copy(update={"series_id": series}))
