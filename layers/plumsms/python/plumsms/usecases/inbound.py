"""The inbound use case: log an incoming SMS, decide its replies, answer Reply-Schema XML."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from plumsms.domain.errors import ConcurrentUpdate, DuplicateInbound
from plumsms.domain.guards import (
    ReplyLimits,
    Screened,
    Unanswered,
    body_digest,
    screen,
)
from plumsms.domain.keywords import KeywordKind
from plumsms.domain.models import (
    InboundRecord,
    InboundSms,
    Message,
    MessageType,
    OptOut,
    Reply,
    Status,
    derived_id,
    new_message_for,
    utc_now,
)
from plumsms.domain.phone import plum_from_digits, plum_to_digits
from plumsms.domain.replyxml import ReplyElement, build_reply
from plumsms.domain.rules import Decision, ReplyHook, RulesConfig, decide
from plumsms.usecases.ports import Clock, InboundLog

StatusUrlBuilder = Callable[[str], str | None]
"""Given a message id, the Result URL Plum should POST its statuses to (or None)."""

SOURCE = "plum-inbound"
_WRITE_ATTEMPTS = 3
"""Reads and conditional writes of the reply counters, when a concurrent message wins."""


@dataclass(frozen=True, slots=True)
class InboundResult:
    """The XML to answer, whether it repeats an earlier answer, and what decided it."""

    xml: bytes
    duplicate: bool
    decision: Decision | None = None
    suppressed: int = 0
    sent: int = 0
    unanswered: Unanswered | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundService:
    """Handles one inbound SMS end to end; dependencies are injected."""

    log: InboundLog
    rules: RulesConfig
    status_url: StatusUrlBuilder
    limits: ReplyLimits
    hook: ReplyHook | None = None
    clock: Clock = utc_now
    on_hook_error: Callable[[Exception], None] | None = None
    on_opt_out: Callable[[str], None] | None = None

    def handle(self, inbound: InboundSms) -> InboundResult:
        """Store ``inbound`` and its replies; a retried webhook gets the first answer."""
        now = self.clock()
        if self.hook is not None:
            # A user hook may have side effects (a CRM call, a ticket): a retried webhook
            # gets the first answer without running it again.
            earlier = self.log.earlier_answer(inbound.sms_message_id)
            if earlier is not None:
                return InboundResult(xml=earlier, duplicate=True)
        decision = decide(inbound, self.rules, self._guarded_hook())
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                return self._record(inbound, decision, now)
            except ConcurrentUpdate:
                if attempt == _WRITE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _record(self, inbound: InboundSms, decision: Decision, now: datetime) -> InboundResult:
        screened = self._screen(inbound, decision, now)
        reply_messages = [
            self._reply_message(inbound, reply, index, now)
            for index, reply in enumerate(screened.replies)
        ]
        xml = build_reply([self._element(inbound, m) for m in reply_messages])
        opt_out = (
            OptOut(
                number=inbound.from_,
                keyword=decision.matched or "STOP",
                at=now,
                message_id=inbound.sms_message_id,
            )
            if decision.keyword is KeywordKind.OPT_OUT
            else None
        )
        opt_in = inbound.from_ if decision.keyword is KeywordKind.OPT_IN else None
        unanswered = decision.unanswered or screened.reason
        try:
            self.log.record_inbound(
                InboundRecord(
                    self._inbound_message(inbound, now, unanswered),
                    reply_messages,
                    xml,
                    opt_out=opt_out,
                    opt_in_number=opt_in,
                    peers=screened.peers,
                )
            )
        except DuplicateInbound as duplicate:
            return InboundResult(xml=duplicate.reply_xml or xml, duplicate=True)
        if opt_out is not None and self.on_opt_out is not None:
            self.on_opt_out(opt_out.number)  # e.g. suppress the number's pending sends
        return InboundResult(
            xml=xml,
            duplicate=False,
            decision=decision,
            suppressed=screened.suppressed,
            sent=len(reply_messages),
            unanswered=unanswered,
        )

    def _guarded_hook(self) -> ReplyHook | None:
        hook = self.hook
        if hook is None:
            return None

        def guarded(inbound: InboundSms) -> Sequence[Reply] | None:
            # A broken user hook must not cost the sender their message: fall through to
            # the keyword rules and report the failure.
            try:
                return hook(inbound)
            except Exception as exc:
                if self.on_hook_error is not None:
                    self.on_hook_error(exc)
                return None

        return guarded

    def _screen(self, inbound: InboundSms, decision: Decision, now: datetime) -> Screened:
        if not decision.replies:
            return Screened(replies=[])
        # One batch read: the recipients' opt-outs and reply counters.
        peers = self.log.peer_states({r.to for r in decision.replies})
        if decision.keyword is KeywordKind.OPT_IN and inbound.from_ in peers:
            # A START/UNSTOP message clears the sender's opt-out in the same write.
            peers[inbound.from_] = replace(peers[inbound.from_], opted_out=False)
        return screen(
            inbound.from_,
            decision.replies,
            peers=peers,
            limits=self.limits,
            now=now,
            digest=body_digest(inbound.body),
        )

    def _inbound_message(
        self, inbound: InboundSms, now: datetime, unanswered: Unanswered | None
    ) -> Message:
        return new_message_for(
            inbound,
            inbound.sms_message_id,
            MessageType.INBOUND,
            sms_message_id=inbound.sms_message_id,
            status=Status.RECEIVED,
            at=now,
            source=SOURCE,
            unanswered=unanswered,
        )

    def _reply_message(
        self, inbound: InboundSms, reply: Reply, index: int, now: datetime
    ) -> Message:
        reply_id = derived_id(inbound.sms_message_id, "reply", index)
        return new_message_for(
            reply,
            reply_id,
            MessageType.REPLY,
            status=Status.QUEUED,
            at=now,
            source=SOURCE,
            result_url=self.status_url(reply_id),
        )

    @staticmethod
    def _element(inbound: InboundSms, reply: Message) -> ReplyElement:
        # Plum's default is "to the sender, from the number that received it": say only
        # what differs, as Plum's own examples do.
        return ReplyElement(
            body=reply.body,
            to=None if reply.to == inbound.from_ else plum_to_digits(reply.to),
            from_=None if reply.from_ == inbound.to else plum_from_digits(reply.from_),
            result_url=reply.result_url,
        )
