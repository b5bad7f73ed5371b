"""The sending use cases: create (now, later, recurring), cancel, move or edit, suppress.

Dependencies are injected: the outbox (``SendingOutbox``), the clock, a
``DispatchTrigger`` that wakes the dispatcher for a message due now, and the change
publisher that hears of every ``cancelled`` and ``suppressed``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from plumsms.domain.errors import Conflict, PlumSmsError, ValidationFailed
from plumsms.domain.models import (
    Message,
    MessageType,
    Status,
    new_message_for,
    new_message_id,
    utc_now,
)
from plumsms.domain.sending import (
    IDEMPOTENCY_TTL,
    EditRequest,
    IdempotencyRecord,
    Schedule,
    SendRequest,
    check_idempotency_key,
    plan_edit,
    plan_send,
)
from plumsms.domain.status import ChangePublisher, change_to
from plumsms.usecases.ports import Clock, DispatchTrigger, PendingMessages, SendingOutbox

SOURCE = "api"


@dataclass(frozen=True, slots=True)
class Created:
    """The answer to a send request; ``replayed`` when an Idempotency-Key repeated it."""

    body: dict[str, Any]
    replayed: bool


def answer(message: Message, schedule: Schedule) -> dict[str, Any]:
    """The API's JSON for a message it scheduled: the message plus its schedule."""
    data = message.to_json()
    extra = schedule.public()
    if extra:
        data["schedule"] = extra
    return data


@dataclass(frozen=True, slots=True, kw_only=True)
class SendingService:
    """Create, cancel, move and edit outgoing messages."""

    outbox: SendingOutbox
    sms_numbers: Callable[[], tuple[str, ...]]
    """The account's numbers, read when a request needs them (it may raise
    ``ConfigurationError``: a wrong setting fails sending, nothing else)."""
    trigger: DispatchTrigger | None = None
    clock: Clock = utc_now
    on_trigger_error: Callable[[Exception], None] | None = None
    publisher: ChangePublisher | None = None

    def create(
        self, request: SendRequest, fingerprint: str, idempotency_key: str | None = None
    ) -> Created:
        """Validate and store a send request; wake the dispatcher when it is due now.

        With an ``Idempotency-Key``, a repeat of the same request (same ``fingerprint``)
        gets the first answer and creates nothing; the same key with a different request
        is a ``Conflict``. The key is looked up before the rules that depend on the time,
        so a retry of an accepted request is never refused because its time has passed.
        """
        now = self.clock()
        now_epoch = int(now.timestamp())
        if idempotency_key is not None:
            check_idempotency_key(idempotency_key)
            existing = self.outbox.get_idempotency(idempotency_key, now_epoch)
            if existing is not None:
                return self._replay(existing, fingerprint)
        plan = plan_send(request, now, self.sms_numbers())
        self._refuse_opted_out(request)
        message = new_message_for(
            request,
            new_message_id(),
            MessageType.OUTBOUND,
            status=Status.SCHEDULED,
            at=now,
            source=SOURCE,
            send_at=plan.due,
        )
        schedule = plan.schedule
        if schedule.recurrence is not None:
            schedule = schedule.model_copy(update={"series_id": message.id})
        body = answer(message, schedule)
        record = None
        if idempotency_key is not None:
            record = IdempotencyRecord(
                key=idempotency_key,
                fingerprint=fingerprint,
                message_id=message.id,
                response=json.dumps(body, separators=(",", ":")),
                expires_at=now_epoch + int(IDEMPOTENCY_TTL.total_seconds()),
                taken_at=now_epoch,
            )
        taken = self.outbox.create(message, schedule, record)
        if taken is not None:
            return self._replay(taken, fingerprint)
        if plan.due <= now:
            self._wake_dispatcher()
        return Created(body=body, replayed=False)

    def cancel(self, message_id: str) -> Message:
        """Cancel a pending message (``Conflict`` once it has gone to Plum).

        Cancelling a cancelled message answers it again, and publishes nothing more.
        """
        try:
            cancelled = self.outbox.cancel(message_id, self.clock(), SOURCE)
        except Conflict:
            message, _ = self.outbox.get(message_id)
            if message.status == Status.CANCELLED:
                return message
            raise
        if self.publisher is not None:
            self.publisher.publish([change_to(cancelled, Status.SCHEDULED)])
        return cancelled

    def edit(self, message_id: str, edit: EditRequest) -> dict[str, Any]:
        """Move a pending message's due time and/or change its body."""
        now = self.clock()
        message, schedule = self.outbox.get(message_id)
        if message.status != Status.SCHEDULED:
            raise Conflict(f"message is {message.status}; only scheduled messages can be changed")
        plan = plan_edit(edit, schedule, now)
        updated = self.outbox.edit(message_id, now, plan)
        if plan.due is not None and plan.due <= now:
            self._wake_dispatcher()
        return answer(updated, schedule)

    def _refuse_opted_out(self, request: SendRequest) -> None:
        if self.outbox.opted_out({request.to}):
            raise ValidationFailed("to", "the recipient opted out (texted STOP)")

    @staticmethod
    def _replay(existing: IdempotencyRecord, fingerprint: str) -> Created:
        if existing.fingerprint != fingerprint:
            raise Conflict(
                "Idempotency-Key was already used with a different request; "
                "use a new key for a new message"
            )
        return Created(body=json.loads(existing.response), replayed=True)

    def _wake_dispatcher(self) -> None:
        if self.trigger is None:
            return
        try:
            self.trigger()
        except Exception as exc:
            # The message is stored: the scheduled run sends it within a minute.
            if self.on_trigger_error is not None:
                self.on_trigger_error(exc)


def suppress_pending_for(
    outbox: PendingMessages,
    number: str,
    clock: Clock = utc_now,
    source: str = "opt-out",
    publisher: ChangePublisher | None = None,
) -> int:
    """Mark every pending scheduled message to ``number`` ``suppressed``; how many.

    Each suppression is published, also those made before a store error cut it short.
    """
    now = clock()
    changes = []
    try:
        for message_id in outbox.pending_for(number):
            suppressed = outbox.suppress(message_id, now, source)
            if suppressed is not None:
                changes.append(change_to(suppressed, Status.SCHEDULED))
    finally:
        if changes and publisher is not None:
            publisher.publish(changes)
    return len(changes)


def opt_out_callback(
    outbox: PendingMessages,
    clock: Clock = utc_now,
    on_error: Callable[[Exception], None] | None = None,
    publisher: ChangePublisher | None = None,
) -> Callable[[str], None]:
    """The inbound flow's ``on_opt_out``: suppress the number's pending messages.

    A failure here must not fail the inbound webhook: the dispatcher checks opt-outs
    again before every send, so nothing reaches an opted-out number either way.
    """

    def on_opt_out(number: str) -> None:
        try:
            suppress_pending_for(outbox, number, clock, publisher=publisher)
        except PlumSmsError as exc:
            if on_error is not None:
                on_error(exc)

    return on_opt_out
