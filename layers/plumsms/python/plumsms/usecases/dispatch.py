"""The dispatcher: send every due message exactly once, under a per-sender rate limit.

One run (an EventBridge tick, or a direct call for a send due now):

1. Reconcile stale claims: a message held in ``sending`` past its ``check_after``
   belongs to a dispatcher that died, or whose Plum call ended without an answer
   (``maybe_sent``). Plum's ``sms/messages`` list is asked whether it went out (by our
   ``ref`` in its result URL, else by to/from/body in the time window) before anything
   is sent again: found means recorded, not found means due again.
2. Page through the ``Due`` index, oldest first. For each message: skip (``suppressed``)
   if the recipient opted out; book the sender's next rate-limit slot (in due order, so
   each sender's sends reach Plum evenly paced); claim it with a conditional update (two
   dispatchers never both win); at its slot, call Plum's ``sms/queue`` with the result
   URL ``.../plum/status?key=...&ref=<id>``; record Plum's id (``queued``). Sends run on
   a thread pool; no slot is booked past the Lambda's remaining time less
   ``stop_margin``, so no claim is abandoned by a timeout.
3. Errors: transient ones retry later with exponential backoff and jitter, up to
   ``max_attempts``, then ``failed``; permanent ones are ``failed`` with Plum's reason;
   Plum's unsubscribed-recipient error also records a local opt-out and suppresses
   that number's pending messages; refused credentials stop the run (nothing is
   counted against the messages). A store error is one message's problem: it is
   counted (``errors``) and the run goes on with the next one.
4. Plum's credentials are read only when a message is to be sent or a stale claim
   checked: a run with nothing to do never needs them. Unset credentials (a fresh
   deploy) stop the run before any claim (``stopped`` ``not_configured``): the
   messages stay due, nothing is failed.

Every final status the dispatcher writes (``failed``, ``suppressed``) goes to the
change publisher, as Plum's callbacks do for the statuses after ``queued``.

A recurring message's next occurrence is created (with a derived id, so at most once)
when the current one is sent or has failed for good.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import zip_longest
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from plumsms.domain import segments
from plumsms.domain.errors import PlumNotConfigured, ValidationFailed
from plumsms.domain.models import (
    HistoryEntry,
    Message,
    MessageType,
    Status,
    derived_id,
    utc_now,
)
from plumsms.domain.phone import same_number
from plumsms.domain.plum import (
    PlumError,
    PlumGateway,
    PlumMessageQuery,
    PlumSmsResource,
    Unauthorized,
    UnsubscribedRecipient,
)
from plumsms.domain.sending import Claim, DuePage, DueRef, Schedule, next_occurrence
from plumsms.domain.status import ChangePublisher, StatusChange, change_to
from plumsms.usecases.pacing import Pacer, RateLimiter
from plumsms.usecases.ports import Clock
from plumsms.usecases.sending import suppress_pending_for

PLUM_OPT_OUT_KEYWORD = "PLUM-UNSUBSCRIBED"
"""The keyword recorded on an opt-out learned from Plum's unsubscribed-recipient error."""

MIN_STOP_MARGIN_SECONDS = 2.0
NOT_CONFIGURED = "not_configured"
_log = logging.getLogger(__name__)


class DispatchOutbox(Protocol):
    """What the dispatcher needs from the outbox (``DynamoOutbox`` implements it)."""

    def due(self, now: datetime, limit: int, after: dict[str, Any] | None = None) -> DuePage:
        """Messages due at ``now``, oldest first."""

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


@dataclass(frozen=True, slots=True)
class DispatchConfig:
    """Tuning of the dispatcher; the defaults suit a 60-second Lambda on a 1-minute rule."""

    rate_per_second: float = 1.0
    """Messages per second per sender number (a US 10DLC long code's usual limit)."""
    concurrency: int = 8
    max_attempts: int = 5
    stop_margin: timedelta = timedelta(seconds=20)
    """No new claim with less than this left: enough for a slow Plum call and a record.
    An invocation shorter than three margins keeps a third of its time instead (at least
    ``MIN_STOP_MARGIN_SECONDS``), so a short local timeout still sends."""
    stale_after: timedelta = timedelta(minutes=5)
    """A claim this old belongs to a dead dispatcher (well above the function timeout)."""
    check_delay: timedelta = timedelta(seconds=60)
    """How long to wait before asking Plum about a send whose answer was lost."""
    backoff_base: timedelta = timedelta(seconds=30)
    backoff_max: timedelta = timedelta(minutes=15)
    page_size: int | None = None
    """Due messages read per Query; by default about a minute's worth at the rate limit
    (at least four per worker, at most 500), so a slow sender does not read far ahead."""
    stale_batch: int = 100
    window_slack: timedelta = timedelta(minutes=2)
    """Extra time around a claim when looking for the message in Plum's list."""

    def page(self) -> int:
        """The number of due messages to read per Query."""
        if self.page_size is not None:
            return self.page_size
        return min(500, max(4 * self.concurrency, math.ceil(self.rate_per_second * 60)))

    def margin_for(self, seconds_left: float) -> float:
        """The stop margin (seconds) of an invocation starting with ``seconds_left``."""
        floor = min(MIN_STOP_MARGIN_SECONDS, self.stop_margin.total_seconds())
        return min(self.stop_margin.total_seconds(), max(seconds_left / 3, floor))

    def backoff(self, attempts: int, draw: float) -> timedelta:
        """Delay before try ``attempts + 1``: exponential, capped, with jitter (50-100%)."""
        raw = self.backoff_base * (1 << min(max(attempts - 1, 0), 20))
        return min(raw, self.backoff_max) * (0.5 + draw / 2)


@dataclass
class DispatchReport:
    """What one run did (counts), for logs, metrics and tests."""

    counts: Counter[str] = field(default_factory=Counter)
    stopped: str | None = None
    """Why the run stopped claiming early: ``time``, ``unauthorized`` (Plum refused the
    credentials), ``not_configured`` (there are none yet), ``store`` (the due messages
    could not be listed) or None."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, amount: int = 1) -> None:
        """Count ``amount`` more of ``name`` (thread-safe)."""
        with self._lock:
            self.counts[name] += amount

    def __getitem__(self, name: str) -> int:
        with self._lock:
            return self.counts[name]

    def as_dict(self) -> dict[str, Any]:
        """The counts and stop reason, JSON-ready; ``outcome`` says whether Plum is set up."""
        with self._lock:
            outcome = "not_configured" if self.stopped == NOT_CONFIGURED else "done"
            return {"outcome": outcome, "counts": dict(self.counts), "stopped": self.stopped}


@dataclass
class _Run:
    """The state of one run, shared by its worker threads."""

    plum_provider: Callable[[], PlumGateway]
    remaining_ms: Callable[[], int]
    limiter: Pacer
    report: DispatchReport
    margin_seconds: float
    monotonic: Callable[[], float]
    halted: threading.Event = field(default_factory=threading.Event)
    claims_in_pass: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _plum: PlumGateway | None = None

    def plum_ready(self) -> bool:
        """Get Plum's client on first need (reading the credentials); False, with the run
        halted as ``not_configured``, when there are none. Called before any claim."""
        with self.lock:
            if self._plum is None and not self.halted.is_set():
                try:
                    self._plum = self.plum_provider()
                except PlumNotConfigured:
                    self.report.stopped = NOT_CONFIGURED
                    self.halted.set()
            return self._plum is not None

    @property
    def plum(self) -> PlumGateway:
        """Plum's client; only after ``plum_ready`` said True."""
        if self._plum is None:
            raise PlumNotConfigured("Plum's client was used before the credentials were read")
        return self._plum

    def seconds_left(self) -> float:
        return self.remaining_ms() / 1000.0 - self.margin_seconds

    def may_claim(self) -> bool:
        if self.halted.is_set():
            return False
        if self.seconds_left() <= 0:
            self.report.stopped = self.report.stopped or "time"
            return False
        return True

    def deadline(self) -> float:
        return self.monotonic() + self.seconds_left()

    def claimed(self) -> None:
        with self.lock:
            self.claims_in_pass += 1

    def take_pass_claims(self) -> int:
        with self.lock:
            count, self.claims_in_pass = self.claims_in_pass, 0
            return count


def by_sender_in_turn(refs: Sequence[DueRef]) -> list[DueRef]:
    """Due messages taken one sender at a time, each sender's in due order.

    Each sender is paced on its own; in plain due order a run of one sender's messages
    would hold every worker waiting for that sender's slots while the others' slots
    went by unused.
    """
    queues: dict[str, list[DueRef]] = {}
    for ref in refs:
        queues.setdefault(ref.from_, []).append(ref)
    turns = zip_longest(*queues.values())
    return [ref for turn in turns for ref in turn if ref is not None]


def _ref_of(url: str | None) -> str | None:
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get("ref")
    return values[0] if values else None


def _same_body(theirs: str, ours: str) -> bool:
    # Plum may list a long message as its parts.
    return theirs == ours or theirs in segments.split(ours)


def _reason(exc: PlumError | ValidationFailed) -> str:
    if isinstance(exc, ValidationFailed):
        return str(exc)
    return f"{exc.summary}: {exc.reason}" if exc.reason else exc.summary


class Dispatcher:
    """Sends due messages through a ``PlumGateway``; one instance per cold start."""

    def __init__(
        self,
        *,
        outbox: DispatchOutbox,
        plum: Callable[[], PlumGateway],
        result_url: Callable[[str], str | None],
        config: DispatchConfig | None = None,
        clock: Clock = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        draw: Callable[[], float] = random.random,
        log: Any = None,
        publisher: ChangePublisher | None = None,
        pacer: Callable[[], Pacer] | None = None,
    ) -> None:
        self._outbox = outbox
        self._pacer = pacer
        self._plum = plum
        self._publisher = publisher
        self._result_url = result_url
        self.config = config or DispatchConfig()
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._draw = draw
        self._log = log if log is not None else _log

    def run(self, remaining_ms: Callable[[], int]) -> DispatchReport:
        """Reconcile stale claims, then send due messages while time allows."""
        config = self.config
        run = _Run(
            plum_provider=self._plum,
            remaining_ms=remaining_ms,
            limiter=self._pacer()
            if self._pacer is not None
            else RateLimiter(config.rate_per_second, self._monotonic, self._sleep),
            report=DispatchReport(),
            margin_seconds=config.margin_for(remaining_ms() / 1000),
            monotonic=self._monotonic,
        )
        self._recover(run)
        with ThreadPoolExecutor(config.concurrency, thread_name_prefix="dispatch") as pool:
            self._claim_loop(run, pool)
        return run.report

    # -- the main loop ----------------------------------------------------------------

    def _claim_loop(self, run: _Run, pool: ThreadPoolExecutor) -> None:
        workers = threading.BoundedSemaphore(self.config.concurrency)
        cursor: dict[str, Any] | None = None
        in_pass: list[Future[None]] = []
        full: set[str] = set()  # senders with no slot left before the deadline
        while run.may_claim():
            try:
                page = self._outbox.due(self._clock(), self.config.page(), cursor)
                blocked = (
                    self._outbox.opted_out({r.to for r in page.items}) if page.items else set()
                )
            except Exception:
                # Nothing can be claimed safely without the list and its opt-outs; the
                # claims already made finish, and the next run lists again.
                run.report.add("errors")
                run.report.stopped = run.report.stopped or "store"
                self._log.exception("listing due messages failed")
                return
            submitted = 0
            for ref in by_sender_in_turn(page.items):
                slot: float | None = None
                if ref.to not in blocked:
                    if ref.from_ in full:
                        continue
                    if not run.plum_ready():
                        return
                    # Booked here, in due order, so each sender's sends leave evenly paced.
                    slot = run.limiter.reserve(ref.from_, run.deadline())
                    if slot is None:
                        full.add(ref.from_)
                        continue
                if not self._free_worker(run, workers):
                    return
                future = pool.submit(self._deliver, run, ref, slot)
                future.add_done_callback(lambda _: workers.release())
                in_pass.append(future)
                submitted += 1
            cursor = page.next_position
            if page.items and not submitted:
                return  # every sender on this page is out of slots for this run
            if cursor is None:
                # End of the index: go round again only if this pass sent something
                # (retries and new sends may have come due meanwhile).
                wait(in_pass)
                if not run.take_pass_claims():
                    return
                in_pass = []

    @staticmethod
    def _free_worker(run: _Run, workers: threading.BoundedSemaphore) -> bool:
        while run.may_claim():
            if workers.acquire(timeout=0.2):
                if run.may_claim():
                    return True
                workers.release()
                return False
        return False

    def _deliver(self, run: _Run, ref: DueRef, slot: float | None) -> None:
        """Suppress (``slot`` None: opted out) or claim, wait for the slot, and send."""
        try:
            if slot is None:
                suppressed = self._outbox.suppress(ref.message_id, self._clock(), "dispatcher")
                if suppressed is not None:
                    run.report.add("suppressed")
                    self._publish(change_to(suppressed, Status.SCHEDULED))
                return
            now = self._clock()
            claim = self._outbox.claim(
                ref,
                uuid.uuid4().hex,
                now,
                now + self.config.stale_after,
                self._result_url(ref.message_id),
            )
            if claim is None:
                run.report.add("lost_race")
                return
            run.claimed()
            run.report.add("claimed")
            if not run.limiter.wait_until(ref.from_, slot) or run.halted.is_set():
                # No shared slot left in this run, or credentials were refused meanwhile:
                # hand it back untouched.
                now = self._clock()
                self._outbox.retry_later(claim, now, claim.attempts, None, now)
                return
            self._send(run, claim)
        except Exception:
            # The claim (if any) stays; a later run reconciles it with Plum.
            run.report.add("errors")
            self._log.exception(
                "dispatch of a message failed", extra={"message_id": ref.message_id}
            )

    def _send(self, run: _Run, claim: Claim) -> None:
        message = claim.message
        try:
            resources = run.plum.queue(message.to, message.from_, message.body, message.result_url)
        except UnsubscribedRecipient as exc:
            self._unsubscribed(run, claim, exc)
        except Unauthorized as exc:
            run.halted.set()
            run.report.stopped = "unauthorized"
            # Not the message's fault: due again soon, no attempt counted.
            now = self._clock()
            self._outbox.retry_later(
                claim, now + self.config.backoff_base, claim.attempts, _reason(exc), now
            )
            run.report.add("retried")
        except PlumError as exc:
            self._plum_failed(run, claim, exc)
        except ValidationFailed as exc:
            self._fail(run, claim, _reason(exc))
        else:
            self._sent(run, claim, [r.sms_message_id for r in resources])

    def _sent(self, run: _Run, claim: Claim, plum_ids: Sequence[str]) -> None:
        self._next_occurrence(claim)
        if self._outbox.record_sent(claim, plum_ids, self._clock()):
            run.report.add("sent")
        else:
            run.report.add("lost_claim")

    def _fail(self, run: _Run, claim: Claim, reason: str) -> None:
        self._next_occurrence(claim)
        self._finish_failed(claim, reason, self._clock())
        run.report.add("failed")

    def _finish_failed(self, claim: Claim, reason: str, now: datetime) -> None:
        failed = self._outbox.finish(claim, Status.FAILED, reason, now)
        if failed is not None:
            self._publish(change_to(failed, Status.SENDING))

    def _publish(self, change: StatusChange) -> None:
        # Best effort by contract (the publisher counts and logs what it could not put).
        if self._publisher is not None:
            self._publisher.publish([change])

    def _plum_failed(self, run: _Run, claim: Claim, exc: PlumError) -> None:
        attempts = claim.attempts + 1
        now = self._clock()
        if exc.maybe_sent:
            # Plum may have queued it: never resend before asking Plum.
            self._outbox.check_later(
                claim, now + self.config.check_delay, attempts, _reason(exc), now
            )
            run.report.add("to_check")
        elif exc.transient and attempts < self.config.max_attempts:
            due = now + self.config.backoff(attempts, self._draw())
            self._outbox.retry_later(claim, due, attempts, _reason(exc), now)
            run.report.add("retried")
        else:
            self._fail(run, claim, _reason(exc))

    def _unsubscribed(self, run: _Run, claim: Claim, exc: UnsubscribedRecipient) -> None:
        message = claim.message
        now = self._clock()
        self._outbox.record_opt_out(message.to, message.id, PLUM_OPT_OUT_KEYWORD, now)
        self._finish_failed(claim, _reason(exc), now)
        run.report.add("failed")
        run.report.add("opted_out_at_plum")
        suppressed = suppress_pending_for(
            self._outbox, message.to, self._clock, publisher=self._publisher
        )
        run.report.add("suppressed", suppressed)

    def _next_occurrence(self, claim: Claim) -> None:
        schedule = claim.schedule
        now = self._clock()
        planned = next_occurrence(schedule, now)
        if planned is None:
            return
        next_schedule, due = planned
        current = claim.message
        series = schedule.series_id or current.id
        message = Message(
            id=derived_id(series, "occurrence", next_schedule.occurrence),
            type=MessageType.OUTBOUND,
            to=current.to,
            from_=current.from_,
            body=current.body,
            status=Status.SCHEDULED,
            created_at=now,
            updated_at=now,
            send_at=due,
            segments=current.segments,
            encoding=current.encoding,
            history=[HistoryEntry(status=Status.SCHEDULED, at=now, source="recurrence")],
        )
        self._outbox.put_occurrence(message, next_schedule.model_copy(update={"series_id": series}))

    # -- stale claims -----------------------------------------------------------------

    def _recover(self, run: _Run) -> None:
        now = self._clock()
        try:
            stale_claims = self._outbox.stale(now, self.config.stale_batch)
        except Exception:
            # The due messages do not depend on these: send them, recover next run.
            run.report.add("errors")
            self._log.exception("listing stale claims failed")
            return
        for stale in stale_claims:
            if not run.may_claim() or not run.plum_ready():
                return
            try:
                claim = self._outbox.take_over(
                    stale, uuid.uuid4().hex, now + self.config.stale_after
                )
                if claim is not None:
                    self._reconcile(run, claim)
            except Exception:
                run.report.add("errors")
                self._log.exception(
                    "reconciling a claim failed", extra={"message_id": stale.message.id}
                )

    def _reconcile(self, run: _Run, claim: Claim) -> None:
        now = self._clock()
        try:
            plum_ids = self._find_at_plum(run.plum, claim, now)
        except PlumError as exc:
            self._outbox.check_later(
                claim, now + self.config.check_delay, claim.attempts, _reason(exc), now
            )
            run.report.add("to_check")
            return
        if plum_ids:
            run.report.add("reconciled")
            self._sent(run, claim, plum_ids)
        elif claim.attempts >= self.config.max_attempts:
            self._fail(run, claim, "not sent: Plum did not confirm it after every attempt")
        else:
            # Plum never got it: due again now.
            self._outbox.retry_later(claim, now, claim.attempts, None, now)
            run.report.add("resent")

    def _find_at_plum(self, plum: PlumGateway, claim: Claim, now: datetime) -> list[str]:
        """Plum's ids for ``claim``'s message if Plum has it (by ref, else by content)."""
        message = claim.message
        claimed_at = datetime.fromisoformat(claim.claimed_at) if claim.claimed_at else now
        slack = self.config.window_slack
        query = PlumMessageQuery(
            type="outbound",
            number=message.to,
            number_side="customer",
            start=claimed_at - slack,
            end=now + slack,
            sort="asc",
            limit=1000,
        )
        listed: list[PlumSmsResource] = []
        while True:
            page = plum.messages(query)
            listed += page
            if len(page) < query.limit:
                break
            query = query.model_copy(update={"offset": query.offset + len(page)})
        by_ref = [r.sms_message_id for r in listed if _ref_of(r.result_url) == message.id]
        if by_ref:
            return by_ref
        for resource in listed:
            ref = _ref_of(resource.result_url)
            if (
                (ref is None or ref == message.id)
                and same_number(resource.to, message.to)
                and same_number(resource.from_, message.from_)
                and _same_body(resource.body, message.body)
                and not self._outbox.known_plum_id(resource.sms_message_id)
            ):
                return [resource.sms_message_id]
        return []
