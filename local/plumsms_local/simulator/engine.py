"""The simulated Plum DEV platform: queueing, status progression, callbacks, phones.

The HTTP layer (``server.py``) only parses requests and renders answers; everything Plum
and the carrier would do happens here. Faults are drawn from generators seeded with the
configured seed (one stream for API calls, one per message for its callbacks), so a run
of sequential requests replays exactly.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache, partial
from importlib import resources
from typing import Any, Final

from lxml import etree

from plumsms.domain import segments
from plumsms.domain.errors import ValidationFailed
from plumsms.domain.phone import normalize
from plumsms.domain.replyxml import safe_parser
from plumsms_local.simulator import inferred
from plumsms_local.simulator.config import Faults, SimulatorConfig
from plumsms_local.simulator.inferred import FailureKind
from plumsms_local.simulator.state import (
    FINAL_STATUSES,
    CallbackRecord,
    InboxEntry,
    Kind,
    MessageQuery,
    SimMessage,
    SimState,
)
from plumsms_local.simulator.transport import HttpAnswer, Poster, PostFailed, Urllib3Poster
from plumsms_local.simulator.workers import Scheduler, SerialWorker

logger = logging.getLogger(__name__)

# Plum's documented failure strings (plum-dev-sms-api.md section 1).
INVALID_TO: Final = "Invalid 'to' phone number"
UNSUBSCRIBED: Final = "Attempt to send to unsubscribed recipient"
NOT_MOBILE_TEMPLATE: Final = "To number: {number}, is not a mobile number"

# Carrier keywords (plum-dev-sms-api.md section 4). The simulator keeps its own table
# on purpose: it stands for the carrier, so a slip in the bundle's table shows in tests.
OPT_OUT: Final = "opt_out"
OPT_IN: Final = "opt_in"
HELP: Final = "help"
CARRIER_KEYWORDS: Final = {
    **dict.fromkeys(("STOP", "CANCEL", "END", "QUIT", "STOPALL", "UNSUBSCRIBE"), OPT_OUT),
    **dict.fromkeys(("START", "UNSTOP", "YES"), OPT_IN),
    **dict.fromkeys(("HELP", "INFO"), HELP),
}


def carrier_keyword(body: str) -> str | None:
    """The keyword the whole body is (case and whitespace ignored), if any."""
    return CARRIER_KEYWORDS.get(" ".join(body.split()).upper())


class PlumFailure(Exception):
    """A ``/ws/`` call Plum would answer with a failure envelope."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class SimRequestError(Exception):
    """A ``/sim/`` call that cannot be served; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ReplyRejected(Exception):
    """The Application URL's answer is not a reply Plum would act on."""


@dataclass(frozen=True, slots=True)
class ApiFault:
    """What to do to one ``/ws/`` request before serving it."""

    latency_seconds: float = 0.0
    server_error: bool = False
    hang_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class ReplyMessage:
    """One ``<sms_message>`` of a valid reply, numbers already in E.164."""

    to: str
    from_: str
    body: str
    result_url: str


@dataclass(slots=True)
class _CallbackJob:
    sms_message_id: str
    status: str
    url: str
    fields: list[tuple[str, str]]
    duplicate: bool = False
    reordered: bool = False
    repeat: bool = False  # a duplicate follows it


def parse_reply_document(answer: HttpAnswer) -> list[etree._Element]:
    """Check an Application URL answer as Plum does; return its ``<sms_message>`` nodes.

    Plum wants HTTP 200 and a well-formed document with an XML prologue and a
    ``<reply>`` root valid against the Reply Schema. Raises ``ReplyRejected``.
    """
    if answer.status != 200:
        raise ReplyRejected(f"Application URL answered HTTP {answer.status}, not 200")
    document = answer.body.removeprefix(b"\xef\xbb\xbf")
    if not document.startswith(b"<?xml"):
        raise ReplyRejected("reply does not start with an XML prologue (<?xml ...?>)")
    try:
        root = etree.fromstring(document, safe_parser())
    except etree.XMLSyntaxError as exc:
        raise ReplyRejected(f"reply is not well-formed XML ({exc.msg})") from exc
    if root.getroottree().docinfo.internalDTD is not None:
        raise ReplyRejected("reply carries a DTD")
    try:
        plum_reply_schema().assertValid(root)
    except etree.DocumentInvalid as exc:
        raise ReplyRejected(f"reply is not valid against the Plum reply schema ({exc})") from exc
    return list(root)


@cache
def plum_reply_schema() -> etree.XMLSchema:
    """The simulator's own copy of Plum's reply schema (never the bundle's), loaded once."""
    source = resources.files("plumsms_local.simulator").joinpath("plum_reply.xsd").read_bytes()
    return etree.XMLSchema(etree.fromstring(source, safe_parser()))


class Simulator:
    """Plum DEV and the carrier, in memory. Call :meth:`start` before use."""

    def __init__(
        self,
        config: SimulatorConfig,
        poster: Poster | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._poster: Poster = poster or Urllib3Poster()
        self.state = SimState(clock, config.application_urls)
        self._scheduler = Scheduler()
        self._callbacks = SerialWorker()
        self._lock = threading.Lock()
        self._held: dict[str, _CallbackJob] = {}
        self._message_rngs: dict[str, random.Random] = {}
        self.seed = (
            config.seed if config.seed is not None else random.SystemRandom().getrandbits(32)
        )
        self._faults = config.faults
        self._api_rng = random.Random(f"{self.seed}:api")  # noqa: S311 - fault dice
        self.reset()

    # lifecycle

    def start(self) -> None:
        """Start the background threads."""
        logger.info("simulator fault seed %d", self.seed)
        self._scheduler.start()
        self._callbacks.start()

    def stop(self) -> None:
        """Stop the background threads; pending status changes and callbacks are dropped."""
        self._scheduler.stop()
        self._callbacks.stop()

    def reset(self) -> None:
        """Forget messages, inboxes, callbacks and opt-outs; restore the configured faults.

        Application URLs are kept: like Plum console settings, they are not traffic.
        """
        self._scheduler.clear()
        self._callbacks.clear()
        with self._lock:
            self._held.clear()
            self._message_rngs.clear()
            self._faults = self.config.faults
            self._api_rng = random.Random(f"{self.seed}:api")  # noqa: S311 - fault dice
        self.state.reset(self.config.unsubscribed)

    # faults

    @property
    def faults(self) -> Faults:
        """The fault settings in force."""
        with self._lock:
            return self._faults

    def set_faults(self, changes: Mapping[str, Any]) -> Faults:
        """Change some fault settings at runtime; raises pydantic's ``ValidationError``."""
        with self._lock:
            self._faults = self._faults.updated(changes)
            return self._faults

    def draw_api_fault(self) -> ApiFault:
        """Decide the faults of one ``/ws/`` request (always three draws, for replay)."""
        with self._lock:
            faults = self._faults
            latency, error, hang = (self._api_rng.random() for _ in range(3))
        return ApiFault(
            latency_seconds=faults.api_latency_seconds if latency < faults.api_latency_rate else 0,
            server_error=error < faults.api_error_rate,
            hang_seconds=faults.api_timeout_seconds if hang < faults.api_timeout_rate else None,
        )

    # the REST API

    def queue(
        self, to: str | None, from_: str | None, body: str | None, result_url: str | None
    ) -> list[SimMessage]:
        """Queue an SMS as ``sms/queue`` does: one message per carrier part."""
        try:
            recipient = normalize(to or "", "to")
        except ValidationFailed as exc:
            raise PlumFailure(FailureKind.BAD_REQUEST, INVALID_TO) from exc
        sender = self._account_number(from_ or "")
        if sender is None:
            raise PlumFailure(FailureKind.BAD_REQUEST, inferred.INVALID_FROM)
        if not body:
            raise PlumFailure(FailureKind.BAD_REQUEST, inferred.MISSING_BODY)
        if recipient in self.config.landlines:
            raise PlumFailure(FailureKind.BAD_REQUEST, NOT_MOBILE_TEMPLATE.format(number=recipient))
        if self.state.is_unsubscribed(recipient):
            raise PlumFailure(FailureKind.BAD_REQUEST, UNSUBSCRIBED)
        messages = self._create(Kind.OUTBOUND, recipient, sender, body, result_url=result_url or "")
        logger.info("queued %d part(s): %s", len(messages), messages[0].group_id)
        logger.debug("queued to=%s from=%s body=%r", recipient, sender, body)
        return messages

    def status(self, sms_message_id: str | None) -> SimMessage:
        """One message, as ``sms/status`` returns it."""
        message = self.state.get((sms_message_id or "").strip().lower())
        if message is None:
            raise PlumFailure(FailureKind.NOT_FOUND, inferred.MESSAGE_NOT_FOUND)
        return message

    def messages(self, query: MessageQuery) -> tuple[list[SimMessage], int]:
        """One page of ``sms/messages`` (or ``sms/conversation``) and the total matched."""
        return self.state.query(query)

    # phones

    def set_application_url(self, number: str, url: str | None) -> str:
        """Set an SMS number's Application URL (None clears it); returns the E.164 number."""
        account = self._account_number(number)
        if account is None:
            raise SimRequestError(404, "not one of the simulator's SMS numbers")
        self.state.set_application_url(account, url)
        return account

    def normalize_phone(self, raw: str) -> str:
        """A phone number from a ``/sim/`` path in E.164; ``SimRequestError`` (400) if bad."""
        return _normalize_or_400(raw, "phone")

    def phone_sends(self, phone_raw: str, to_raw: str, body: str) -> dict[str, Any]:
        """A phone texts an SMS number: carrier keywords, then Plum's Application URL POST."""
        phone = _normalize_or_400(phone_raw, "phone")
        account = self._account_number(to_raw)
        if account is None:
            raise SimRequestError(400, "'to' must be one of the simulator's SMS numbers")
        keyword = carrier_keyword(body)
        outcome: dict[str, Any] = {
            "phone": phone,
            "to": account,
            "keyword": keyword,
            "sms_message_id": None,
            "forwarded": False,
            "application_url": None,
            "reply": None,
        }
        if keyword == HELP:
            # The carrier answers HELP itself; Plum never sees it.
            self.state.deliver_to_inbox(
                phone,
                InboxEntry(account, inferred.HELP_REPLY_TEXT, 1, self.state.now(), (), "carrier"),
            )
            return outcome
        if keyword == OPT_OUT:
            self.state.unsubscribe(phone)
        elif keyword == OPT_IN:
            self.state.resubscribe(phone)
        inbound = SimMessage(
            sms_message_id=uuid.uuid4().hex,
            seq=self.state.next_seq(),
            kind=Kind.INBOUND,
            to=account,
            from_=phone,
            body=body,
            created_at=self.state.now(),
            status="received",
        )
        inbound.group_id = inbound.sms_message_id
        self.state.add_group([inbound])
        outcome["sms_message_id"] = inbound.sms_message_id
        logger.info("inbound %s (keyword %s)", inbound.sms_message_id, keyword)
        url = self.state.application_url(account)
        outcome["application_url"] = url
        if url is None:
            outcome["reply"] = {"accepted": False, "error": "no Application URL is set"}
            return outcome
        outcome["forwarded"] = True
        outcome["reply"] = self._forward(inbound, url, opt_out=keyword == OPT_OUT)
        return outcome

    def _forward(self, inbound: SimMessage, url: str, *, opt_out: bool) -> dict[str, Any]:
        fields = [
            ("sms_message_id", inbound.sms_message_id),
            ("to", inferred.account_digits(inbound.to)),
            ("from", inferred.customer_digits(inbound.from_)),
            ("body", inbound.body),
        ]
        report: dict[str, Any] = {
            "accepted": False,
            "http_status": None,
            "error": None,
            "warnings": [],
            "sms_message_ids": [],
        }
        try:
            answer = self._poster.post_form(url, fields, self.config.http_timeout_seconds)
            report["http_status"] = answer.status
            if "xml" not in answer.content_type.lower():
                report["warnings"].append(f"Content-Type is {answer.content_type!r}, not XML")
            replies = self._read_reply(inbound, parse_reply_document(answer))
        except (PostFailed, ReplyRejected) as exc:
            report["error"] = str(exc)
            self.state.set_reply_error(inbound.sms_message_id, str(exc))
            logger.warning("reply to %s refused: %s", inbound.sms_message_id, exc)
            return report
        report["accepted"] = True
        for reply in replies:
            created = self._create(
                Kind.REPLY,
                reply.to,
                reply.from_,
                reply.body,
                result_url=reply.result_url,
                in_reply_to=inbound.sms_message_id,
                opt_out_confirmation=(
                    opt_out
                    and inferred.OPT_OUT_CONFIRMATION_DELIVERED
                    and reply.to == inbound.from_
                ),
            )
            report["sms_message_ids"].extend(m.sms_message_id for m in created)
        return report

    def _read_reply(self, inbound: SimMessage, nodes: list[etree._Element]) -> list[ReplyMessage]:
        replies = []
        for node in nodes:
            to_attr, from_attr = node.get("to"), node.get("from")
            try:
                to = normalize(to_attr, "to") if to_attr else inbound.from_
            except ValidationFailed as exc:
                raise ReplyRejected(
                    f"<sms_message to=...> is not a phone number ({exc.rule})"
                ) from exc
            sender = self._account_number(from_attr) if from_attr else inbound.to
            if sender is None:
                raise ReplyRejected(
                    "<sms_message from=...> is not one of the account's SMS numbers"
                )
            if not node.text:
                raise ReplyRejected("<sms_message> has no text to send")
            replies.append(ReplyMessage(to, sender, node.text, node.get("result_url") or ""))
        return replies

    # messages and their life

    def _account_number(self, raw: str) -> str | None:
        try:
            number = normalize(raw, "number")
        except ValidationFailed:
            return None
        return number if number in self.config.sms_numbers else None

    def _create(
        self,
        kind: Kind,
        to: str,
        from_: str,
        body: str,
        *,
        result_url: str,
        in_reply_to: str | None = None,
        opt_out_confirmation: bool = False,
    ) -> list[SimMessage]:
        parts = segments.split(body)
        group_id = uuid.uuid4().hex
        now = self.state.now()
        messages = [
            SimMessage(
                sms_message_id=uuid.uuid4().hex,
                seq=self.state.next_seq(),
                kind=kind,
                to=to,
                from_=from_,
                body=part,
                created_at=now,
                result_url=result_url,
                group_id=group_id,
                part=index,
                parts=len(parts),
                in_reply_to=in_reply_to,
                opt_out_confirmation=opt_out_confirmation,
            )
            for index, part in enumerate(parts, start=1)
        ]
        self.state.add_group(messages)
        with self._lock:
            for message in messages:
                self._message_rngs[message.sms_message_id] = random.Random(  # noqa: S311 - fault dice
                    f"{self.seed}:callbacks:{message.seq}"
                )
        for message in messages:
            if inferred.CALLBACK_ON_QUEUED:
                self._emit_callback(message)
            self._later(self.config.delays.sent_seconds, message.sms_message_id)
        return messages

    def _later(self, delay: float, sms_message_id: str) -> None:
        self._scheduler.call_later(delay, lambda: self._advance(sms_message_id))

    def _blocked(self, message: SimMessage) -> bool:
        if message.to in self.config.landlines:
            return True
        return not message.opt_out_confirmation and self.state.is_unsubscribed(message.to)

    def _advance(self, sms_message_id: str) -> None:
        """Move a message one step: queued -> sent|failed|undelivered, sent -> final."""
        current = self.state.get(sms_message_id)
        if current is None or current.status in FINAL_STATUSES:
            return
        to = current.to
        if current.status == "queued":
            if to in self.config.failing_numbers:
                status = "failed"
            elif self._blocked(current):
                status = "undelivered"
            else:
                status = "sent"
        elif to in self.config.undeliverable_numbers or self._blocked(current):
            status = "undelivered"
        else:
            status = "delivered"
        snapshot = self.state.set_status(sms_message_id, status)
        if snapshot is None:
            return  # forgotten by a reset meanwhile
        logger.debug("message %s is %s", sms_message_id, status)
        self._emit_callback(snapshot)
        if status == "sent":
            self._later(self.config.delays.final_seconds, sms_message_id)
        elif status == "delivered":
            self._deliver_if_complete(snapshot)

    def _deliver_if_complete(self, message: SimMessage) -> None:
        """The phone shows a split SMS once every part has arrived (carrier reassembly)."""
        group = self.state.group(message.group_id)
        if not group or any(part.status != "delivered" for part in group):
            return
        self.state.deliver_to_inbox(
            message.to,
            InboxEntry(
                from_=message.from_,
                body="".join(part.body for part in group),
                parts=len(group),
                at=self.state.now(),
                sms_message_ids=tuple(part.sms_message_id for part in group),
                source="plum",
            ),
        )

    # callbacks

    def _emit_callback(self, message: SimMessage) -> None:
        """Hand the latest status to the callback worker, with the faults drawn for it."""
        if not message.result_url:
            return
        resource = message.resource()
        job = _CallbackJob(
            sms_message_id=message.sms_message_id,
            status=message.status,
            url=message.result_url,
            fields=[(name, str(resource[name])) for name in inferred.CALLBACK_FIELDS],
        )
        final = message.status in FINAL_STATUSES
        with self._lock:
            faults = self._faults
            rng = self._message_rngs.get(message.sms_message_id)
            if rng is None:
                return  # forgotten by a reset meanwhile
            drop, duplicate, reorder = (rng.random() for _ in range(3))
            held = self._held.pop(message.sms_message_id, None)
            if final:
                del self._message_rngs[message.sms_message_id]
            jobs: list[_CallbackJob] = []
            job.repeat = duplicate < faults.callback_duplicate_rate
            if drop < faults.callback_drop_rate:
                self._record(job, "dropped")
            elif reorder < faults.callback_reorder_rate and held is None and not final:
                job.reordered = True
                self._held[message.sms_message_id] = job  # goes out after the next one
            else:
                jobs.append(job)
            if held is not None:
                jobs.append(held)
        for item in jobs:
            self._callbacks.submit(partial(self._send_callback, item))
            if item.repeat:
                copy = _CallbackJob(
                    item.sms_message_id,
                    item.status,
                    item.url,
                    item.fields,
                    duplicate=True,
                    reordered=item.reordered,
                )
                self._callbacks.submit(partial(self._send_callback, copy))

    def _send_callback(self, job: _CallbackJob) -> None:
        try:
            answer = self._poster.post_form(job.url, job.fields, self.config.http_timeout_seconds)
        except PostFailed as exc:
            self._record(job, "error", error=str(exc))
            logger.warning("callback for %s failed: %s", job.sms_message_id, exc)
            return
        self._record(job, "sent", http_status=answer.status)

    def _record(
        self,
        job: _CallbackJob,
        outcome: str,
        http_status: int | None = None,
        error: str | None = None,
    ) -> None:
        self.state.record_callback(
            CallbackRecord(
                sms_message_id=job.sms_message_id,
                status=job.status,
                url=job.url,
                outcome=outcome,
                at=self.state.now(),
                http_status=http_status,
                error=error,
                duplicate=job.duplicate,
                reordered=job.reordered,
            )
        )


def _normalize_or_400(raw: str, field_name: str) -> str:
    try:
        return normalize(raw, field_name)
    except ValidationFailed as exc:
        raise SimRequestError(400, f"{field_name}: {exc.rule}") from exc
