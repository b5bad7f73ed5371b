"""The run loop: page through the due messages, claim each, wait for its slot, send it."""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import timedelta
from typing import Any

from plumsms.domain.errors import ValidationFailed
from plumsms.domain.models import Status, utc_now
from plumsms.domain.plum import PlumError, PlumGateway, Unauthorized, UnsubscribedRecipient
from plumsms.domain.sending import Claim, DueRef, HeldLease
from plumsms.domain.status import ChangePublisher, change_to
from plumsms.usecases.dispatch.feed import DueFeed
from plumsms.usecases.dispatch.outcomes import Outcomes, reason
from plumsms.usecases.dispatch.pacing import RateLimiter
from plumsms.usecases.dispatch.recovery import Recovery
from plumsms.usecases.dispatch.run import COALESCED, DispatchConfig, DispatchReport, Run
from plumsms.usecases.ports import Clock, DispatchOutbox, Pacer, RunLease

_log = logging.getLogger(__name__)

FEED_PAGES = 4
"""Pages of due messages a run holds read ahead (queued per sender, waiting their turn)."""
FEED_REACH = 8192
"""Due messages a run holds at most while a sender it has seen has none queued (about
1.6 MB: each is an id, two numbers and a due time)."""
CLAIM_SETTLE_SECONDS = 5.0
"""How long a run waits for its last claims to be answered before it lets go of the lease
(a claim is one conditional write: past this the store client has given up on it)."""
LEASE_ROUNDS = 4
"""Tries at taking the lease or leaving a request (each lost only to a release)."""
LEASE_POLL_SECONDS = 0.2
"""How often a run started by a hand-over tries the lease while its predecessor holds
it: each try is one conditional write, and a send slot is booked ahead anyway."""


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
        lease: RunLease | None = None,
        successor: Callable[[], None] | None = None,
    ) -> None:
        self._outbox = outbox
        self._pacer = pacer
        self._lease = lease
        self._successor = successor
        self._plum = plum
        self._result_url = result_url
        self.config = config or DispatchConfig()
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._log = log if log is not None else _log
        self._outcomes = Outcomes(outbox, self.config, clock, draw, publisher)
        self._recovery = Recovery(outbox, self._outcomes, self.config, clock, self._log)

    def run(self, remaining_ms: Callable[[], int], *, hand_over: bool = False) -> DispatchReport:
        """Reconcile stale claims, then send due messages while time allows.

        With a lease, only one run works at a time: a run that finds it held asks the
        holder for another pass and ends (``stopped`` ``coalesced``); the holder makes
        one more pass for every such request before it lets go, so a send-now that
        arrives while a run is finishing is still sent by it. A run started by another
        one's hand-over (``hand_over``) waits for the lease instead, up to twice the
        hand-over lead (its predecessor lets go within the lead), and never past its own
        claiming time.
        """
        config = self.config
        seconds = remaining_ms() / 1000
        margin = config.margin_for(seconds)
        run = Run(
            plum_provider=self._plum,
            remaining_ms=remaining_ms,
            limiter=self._pacer()
            if self._pacer is not None
            else RateLimiter(config.rate_per_second, self._monotonic, self._sleep),
            report=DispatchReport(),
            margin_seconds=margin,
            monotonic=self._monotonic,
            hand_over_lead=config.lead_for(seconds - margin),
        )
        if self._lease is None:
            self._work(run, self._lease, "")
            return run.report
        holder = uuid.uuid4().hex
        try:
            # Never past its own claiming time: a wait that outlived the invocation
            # would end it with a timeout.
            longest = min(2 * config.hand_over_lead.total_seconds(), run.seconds_left())
            wait = max(longest, 0.0) if hand_over else 0.0
            held = self._hold(self._lease, holder, remaining_ms, wait)
        except Exception:
            # Without the lease no run may start: the next tick tries again.
            run.report.add("errors")
            run.report.stopped = "store"
            self._log.exception("taking the dispatcher's lease failed")
            return run.report
        if held is None:
            run.report.stopped = COALESCED
            return run.report
        run.known_senders = held.senders
        self._work(run, self._lease, holder)
        return run.report

    def _hold(
        self, lease: RunLease, holder: str, remaining_ms: Callable[[], int], wait: float
    ) -> HeldLease | None:
        """Take the lease (trying again every ``LEASE_POLL_SECONDS`` for ``wait`` seconds),
        or leave a request with its holder; None when not taken."""
        waiting_ends = self._monotonic() + wait
        rounds = 0
        while rounds < LEASE_ROUNDS:
            now = self._clock()
            # The lease lapses when this invocation's time is up (the function is gone).
            held = lease.acquire(holder, now, now + timedelta(milliseconds=remaining_ms()))
            if held is not None:
                return held
            if self._monotonic() < waiting_ends:
                self._sleep(LEASE_POLL_SECONDS)
                continue
            if lease.request(now):
                return None
            # Released (or lapsed) between the two writes: try to take it again.
            rounds += 1
        self._log.warning("the dispatcher's lease changed hands too often; leaving it")
        return None

    def _work(self, run: Run, lease: RunLease | None, holder: str) -> None:
        """Recover, pass over the due messages until no pass is owed, and start the next
        run at once when this one ran out of time (or slots) with messages still due.

        The lease is let go as soon as this run stops claiming and its last claims are
        answered, before its last sends have left: a run started meanwhile may claim
        while they finish (each of them holds its booked slot, so every sender keeps its
        pace).
        """
        pool = ThreadPoolExecutor(self.config.concurrency, thread_name_prefix="dispatch")
        try:
            more = self._passes(run, pool, lease, holder)
        finally:
            pool.shutdown(wait=True)
            if missed := run.limiter.missed():
                run.report.add("slots_missed", missed)
        # Unless already started within the lead, decided once the last sends have left:
        # whether this run moved anything is known only then (a run that moved nothing
        # hands over to nobody).
        if more and not run.successor_started:
            self._hand_over(run)

    def _passes(
        self, run: Run, pool: ThreadPoolExecutor, lease: RunLease | None, holder: str
    ) -> bool:
        """Every pass this run owes; True when messages it could not take are still due."""
        released = lease is None
        try:
            self._recovery.recover(run)
            more = self._claim_loop(run, pool)
            while lease is not None and run.may_claim():
                if run.successor_started:
                    # The next run is waiting for the lease and lists the due messages
                    # once it has it: it serves any request, and sooner than a pass here.
                    break
                try:
                    self._settle_claims(run)
                    released = lease.release(holder, frozenset(run.found_senders))
                except Exception:
                    run.report.add("errors")
                    self._log.exception("letting go of the dispatcher's lease failed")
                    break  # giving it up is tried next
                if released:
                    break
                run.report.add("requested_passes")
                more = self._claim_loop(run, pool)
            return more
        finally:
            if not released:
                self._settle_claims(run)
                self._give_up(lease, holder, run)

    def _settle_claims(self, run: Run) -> None:
        """Wait until this run's last claims are answered, and book their send slots,
        before it lets go of the lease.

        A worker makes its claim a moment after the claim loop hands it the message; a
        next run that took the lease and listed the due messages in that moment found the
        message still due, and one of the two claims was refused (a write for nothing,
        and a slot the loser had reserved went unused). And a worker books its shared
        slot only just before it: a next run booking meanwhile took the slots this run's
        last claims were counting on, and sent them back unsent."""
        if not run.wait_for_claims(CLAIM_SETTLE_SECONDS):
            self._log.warning("claims still unanswered when letting go of the lease")
        if run.halted.is_set():
            return  # nothing more is sent (credentials refused): no slot to hold
        try:
            run.limiter.book_reserved()
        except Exception:
            # Each worker books its own slot instead, as it would have anyway.
            run.report.add("errors")
            self._log.exception("booking the run's last send slots failed")

    def _hand_over(self, run: Run) -> None:
        """Start the next run now (a campaign would otherwise idle until the next tick)."""
        if self._successor is None or run.halted.is_set():
            return
        if not (run.report["sent"] or run.report["suppressed"]):
            # A run that moved nothing (every slot taken far ahead, Plum failing) would
            # hand over to one that moves nothing either: the next tick tries instead.
            return
        self._start_successor(run, self._successor)

    def _hand_over_early(self, run: Run, feed: DueFeed, *, out_of_slots: bool = False) -> None:
        """Start the next run ``hand_over_lead`` before this one stops claiming, when this
        one is claiming and messages are still due: it is up (cold start included) and
        waiting for the lease when this one lets go, so no sender idles in between.

        ``out_of_slots``: every sender with messages due has no slot left in this run,
        which therefore claims no more; the next run starts now, whatever the time left
        (the claim loop books a few slots per sender ahead, so this can come before the
        lead, and waiting for the end of the last sends would leave a gap of a cold start).
        """
        if self._successor is None or run.hand_over_tried:
            return
        if not (run.report["claimed"] or run.report["suppressed"]):
            return
        seconds_left = run.seconds_left()
        if not out_of_slots and (
            seconds_left > run.hand_over_lead
            or not feed.outlasts(self.config.rate_per_second * seconds_left)
        ):
            return
        run.hand_over_tried = True  # once here; the hand-over at the end tries again
        self._start_successor(run, self._successor)

    def _start_successor(self, run: Run, successor: Callable[[], None]) -> None:
        try:
            successor()
        except Exception:
            # The next tick starts it instead.
            run.report.add("errors")
            self._log.exception("starting the next dispatcher run failed")
            return
        run.successor_started = True
        run.report.add("continued")

    def _give_up(self, lease: RunLease | None, holder: str, run: Run) -> None:
        if lease is None:
            return
        try:
            lease.give_up(holder, frozenset(run.found_senders))
        except Exception:
            # The lease lapses by itself when this invocation's time is up.
            run.report.add("errors")
            self._log.exception("giving up the dispatcher's lease failed")

    def _claim_loop(self, run: Run, pool: ThreadPoolExecutor) -> bool:
        """Pass over the due messages while the run may claim; True when it stopped with
        due messages it had no time or no slot for (the next run should start now)."""
        workers = threading.BoundedSemaphore(self.config.concurrency)
        page = self.config.page()
        feed = self._feed(run, page)
        in_pass: list[Future[None]] = []
        full: set[str] = set()  # senders with no slot left before the deadline
        while run.may_claim():
            self._hand_over_early(run, feed)
            if feed.wants_page():
                if feed.left() >= feed.cap:
                    run.report.add("pages_for_dry_senders")
                try:
                    feed.read_page()
                except Exception:
                    # Nothing can be claimed safely without the list and its opt-outs;
                    # the claims already made finish, and the next run lists again.
                    run.report.add("errors")
                    run.report.stopped = run.report.stopped or "store"
                    self._log.exception("listing due messages failed")
                    return False
                continue
            turn = feed.turn(full)
            if not turn:
                if feed.wants_page():
                    continue  # reading on may find a sender with slots left
                if feed.left():
                    # Every sender with messages due is out of slots: no more claims
                    # here (whether any was made is known once they are answered).
                    self._settle_claims(run)
                    self._hand_over_early(run, feed, out_of_slots=True)
                    return True
                # End of the due messages: go round again only if this pass sent
                # something (retries and new sends may have come due meanwhile).
                if not run.may_claim():
                    # No next pass: let go of the lease while the sends finish.
                    return not run.halted.is_set()
                wait(in_pass)
                if not run.take_pass_claims():
                    return False
                feed = self._feed(run, page)
                in_pass = []
                continue
            for ref in turn:
                slot: float | None = None
                if ref.to not in feed.blocked:
                    if ref.from_ in full:
                        continue
                    if not run.plum_ready():
                        return False
                    # Booked here, in turn, so each sender's sends leave evenly paced.
                    slot = run.limiter.reserve(ref.from_, run.deadline())
                    if slot is None:
                        full.add(ref.from_)
                        continue
                if not self._free_worker(run, workers):
                    if slot is not None:
                        run.limiter.drop(ref.from_, slot)  # never handed to a worker
                    return not run.halted.is_set()
                if slot is not None:
                    run.claim_started()
                future = pool.submit(self._deliver, run, ref, slot)
                future.add_done_callback(lambda _: workers.release())
                in_pass.append(future)
        return not run.halted.is_set()

    def _feed(self, run: Run, page: int) -> DueFeed:
        """The due messages of a new pass: it reads on until it holds a message of each
        sender the run before (or this run) found messages for."""
        return DueFeed(
            self._outbox,
            self._clock,
            page,
            FEED_PAGES * page,
            FEED_REACH,
            known=run.known_senders | run.found_senders,
            found=run.found_senders,
        )

    @staticmethod
    def _free_worker(run: Run, workers: threading.BoundedSemaphore) -> bool:
        while run.may_claim():
            if workers.acquire(timeout=0.2):
                if run.may_claim():
                    return True
                workers.release()
                return False
        return False

    def _deliver(self, run: Run, ref: DueRef, slot: float | None) -> None:
        """Suppress (``slot`` None: opted out) or claim, wait for the slot, and send."""
        try:
            if slot is None:
                suppressed = self._outbox.suppress(ref.message_id, self._clock(), "dispatcher")
                if suppressed is not None:
                    run.report.add("suppressed")
                    self._outcomes.publish(change_to(suppressed, Status.SCHEDULED))
                return
            now = self._clock()
            claim: Claim | None = None
            try:
                claim = self._outbox.claim(
                    ref,
                    uuid.uuid4().hex,
                    now,
                    now + self.config.stale_after,
                    self._result_url(ref.message_id),
                )
            finally:
                if claim is None:
                    # Lost or failed: no shared slot is to be booked for it.
                    run.limiter.drop(ref.from_, slot)
                run.claim_settled()
            if claim is None:
                run.report.add("lost_race")
                return
            run.claimed()
            run.report.add("claimed")
            if not run.limiter.wait_until(ref.from_, slot) or run.halted.is_set():
                # No shared slot left in this run, or credentials were refused meanwhile:
                # hand it back untouched.
                self._outcomes.retry_now(claim)
                return
            self._send(run, claim)
        except Exception:
            # The claim (if any) stays; a later run reconciles it with Plum.
            run.report.add("errors")
            self._log.exception(
                "dispatch of a message failed", extra={"message_id": ref.message_id}
            )

    def _send(self, run: Run, claim: Claim) -> None:
        message = claim.message
        try:
            resources = run.plum.queue(message.to, message.from_, message.body, message.result_url)
        except UnsubscribedRecipient as exc:
            self._outcomes.unsubscribed(run, claim, exc)
        except Unauthorized as exc:
            self._outcomes.unauthorized(run, claim, exc)
        except PlumError as exc:
            self._outcomes.plum_failed(run, claim, exc)
        except ValidationFailed as exc:
            self._outcomes.fail(run, claim, reason(exc))
        else:
            self._outcomes.sent(run, claim, [r.sms_message_id for r in resources])
