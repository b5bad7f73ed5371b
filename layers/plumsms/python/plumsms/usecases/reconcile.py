"""Reconcile missed callbacks: ask Plum's ``sms/status`` about messages stuck in flight.

A message still ``queued`` or ``sent`` some time after it was created has probably lost
a callback (Plum sends each status once, and never again). The reconciler lists such
messages from the ``ByStatus`` index (oldest first, within a window: younger ones may
still get their callback, older ones were given up on), first folds in any orphan
callbacks kept for them, then asks Plum and applies the answer through the same state
machine as a callback (history ``source`` ``plum-status``). A message without Plum's id
(a reply sent from Reply-Schema XML whose callbacks were all lost) is looked for in
``sms/conversation`` instead, and gets the id it is found under.

Plum's credentials are read only when there is a message to ask about; unset ones (a
fresh deploy) end the run as ``not_configured`` without an error. A store error is one
message's problem: it is counted and the run goes on with the next message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from plumsms.domain.errors import PlumNotConfigured
from plumsms.domain.models import Message, Status, utc_now
from plumsms.domain.phone import same_number
from plumsms.domain.plum import (
    PLUM_LIMIT_MAX,
    PlumError,
    PlumGateway,
    PlumPageQuery,
    PlumSmsResource,
    Unauthorized,
)
from plumsms.domain.queries import MessageQuery
from plumsms.domain.status import StatusChange
from plumsms.usecases.ports import Clock, MessageLister
from plumsms.usecases.status import STATUS_SOURCE, Outcome, StatusResult, StatusService

IN_FLIGHT = (Status.QUEUED, Status.SENT)
GIVE_UP_AFTER = timedelta(days=3)
"""Messages created longer ago than this are no longer asked about."""
SAFETY_SECONDS = 15.0
"""Stop taking new messages when less than this is left of the invocation."""
CONVERSATION_SLACK = timedelta(minutes=2)
CONVERSATION_WINDOW = timedelta(hours=1)
"""Where to look for a message without Plum's id: queued from a little before it was
created (clocks differ) to an hour after."""
_log = logging.getLogger(__name__)


@dataclass(slots=True)
class ReconcileReport:
    """What one run did."""

    examined: int = 0
    without_plum_id: int = 0
    errors: int = 0
    stopped_early: bool = False
    not_configured: bool = False
    """True when the run stopped because there are no Plum credentials yet."""
    changes: list[StatusChange] = field(default_factory=list)

    def count(self, result: StatusResult | None) -> None:
        """Add a result's change (if any) to the report."""
        if result is not None and result.outcome is Outcome.CHANGED and result.change:
            self.changes.append(result.change)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reconciler:
    """One pass over the messages stuck in flight."""

    messages: MessageLister
    service: StatusService
    plum: Callable[[], PlumGateway]
    min_age: timedelta
    max_age: timedelta = GIVE_UP_AFTER
    limit: int = 100
    clock: Clock = utc_now
    log: Any = _log

    def run(self, time_left: Callable[[], float] | None = None) -> ReconcileReport:
        """Reconcile up to ``limit`` messages per in-flight status.

        ``time_left`` (seconds) stops the run before the invocation times out. A Plum
        outage, refused or unset credentials stop it too: the next run tries again.
        """
        now = self.clock()
        report = ReconcileReport()
        gateway: PlumGateway | None = None
        for in_flight in IN_FLIGHT:
            query = MessageQuery(
                status=in_flight,
                start=now - self.max_age,
                end=now - self.min_age,
                order="asc",
                limit=self.limit,
            )
            try:
                messages = self.messages.list_messages(query).items
            except Exception:
                report.errors += 1
                self.log.exception("listing in-flight messages failed", extra={"status": in_flight})
                continue
            for message in messages:
                if time_left is not None and time_left() < SAFETY_SECONDS:
                    report.stopped_early = True
                    return report
                if gateway is None:
                    try:
                        gateway = self.plum()
                    except PlumNotConfigured:
                        report.not_configured = report.stopped_early = True
                        return report
                try:
                    self._reconcile(gateway, message, report)
                except PlumError as exc:
                    report.errors += 1
                    if exc.transient or isinstance(exc, Unauthorized):
                        report.stopped_early = True
                        return report
                except Exception:
                    # A store error (or a bad row) is this message's: go on with the next.
                    report.errors += 1
                    self.log.exception(
                        "reconciling a message failed", extra={"message_id": message.id}
                    )
        return report

    def _reconcile(self, gateway: PlumGateway, message: Message, report: ReconcileReport) -> None:
        resource = self._ask(gateway, message, report)
        if resource is not None:
            applied = self.service.apply_status(
                message, resource.status, STATUS_SOURCE, resource.sms_message_id
            )
            report.count(applied)

    def _ask(
        self, gateway: PlumGateway, message: Message, report: ReconcileReport
    ) -> PlumSmsResource | None:
        """Plum's resource for ``message``: by its id, or found in the conversation."""
        report.examined += 1
        if message.sms_message_id is None:
            report.without_plum_id += 1
            return self._find_in_conversation(gateway, message)
        report.count(self.service.attach_orphans(message.id, message.sms_message_id))
        return gateway.status(message.sms_message_id)

    def _find_in_conversation(
        self, gateway: PlumGateway, message: Message
    ) -> PlumSmsResource | None:
        """The resource of a message Plum never told us the id of (a reply sent from XML
        whose callbacks were all lost): the earliest one from our number to the customer,
        queued around the message's creation, whose body is the message's (or its first
        part), and that no other message of ours claims already.
        """
        window = PlumPageQuery(
            start=message.created_at - CONVERSATION_SLACK,
            end=message.created_at + CONVERSATION_WINDOW,
            sort="asc",
            limit=PLUM_LIMIT_MAX,
        )
        resources = gateway.conversation(message.account_number, message.customer_number, window)
        for resource in resources:
            outgoing = same_number(resource.from_, message.account_number) and same_number(
                resource.to, message.customer_number
            )
            if not outgoing or not resource.body or not message.body.startswith(resource.body):
                continue
            owner = self._claimed(resource.sms_message_id)
            if owner is None or owner == message.id:
                return resource
        return None

    def _claimed(self, sms_message_id: str) -> str | None:
        """Our id of the message holding Plum's ``sms_message_id``, if any."""
        owner = self.messages.get_by_plum_id(sms_message_id)
        return owner.id if owner is not None else None
