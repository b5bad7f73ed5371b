"""One dispatcher run at a time: the run lease as the dispatcher uses it (fakes only)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from plumsms.domain.errors import StoreUnavailable
from plumsms.domain.plum import PlumUnavailable, Unauthorized
from plumsms.domain.sending import DueCursor, DuePage, DueRef, HeldLease
from plumsms.usecases.dispatch import (
    COALESCED,
    DispatchConfig,
    Dispatcher,
    DispatchReport,
    RateLimiter,
)
from plumsms.usecases.dispatch.loop import LEASE_POLL_SECONDS, LEASE_ROUNDS
from plumsms.usecases.ports import Pacer
from tests.fakes import NOW, FakeOutbox, FakeTime, ScriptedPlum
from tests.unit.test_dispatch_feed import A, B, outbox_with
from tests.unit.test_sending_dispatch import message

C = "+12435678912"


class FakeLease:
    """The lease's contract in memory, with a script for what other runs do meanwhile."""

    def __init__(self) -> None:
        self.holder: str | None = None
        self.until: datetime | None = None
        self.wanted = False
        self.calls: list[str] = []
        self.acquired: list[tuple[str, datetime, datetime]] = []
        self.on_release: list[Callable[[], None]] = []
        """Run before each ``release`` (another invocation's moves, one per release)."""
        self.on_request: list[Callable[[], None]] = []
        self.fail: set[str] = set()
        self.senders: frozenset[str] = frozenset()
        """What the last run left in the lease."""

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name in self.fail:
            raise StoreUnavailable(f"{name} failed (ProvisionedThroughputExceededException)")

    def acquire(self, holder: str, now: datetime, until: datetime) -> HeldLease | None:
        self._call("acquire")
        if self.holder is not None and self.until is not None and self.until >= now:
            return None
        self.holder, self.until, self.wanted = holder, until, False
        self.acquired.append((holder, now, until))
        return HeldLease(self.senders)

    def request(self, now: datetime) -> bool:
        self._call("request")
        if self.on_request:
            self.on_request.pop(0)()
        if self.holder is None or self.until is None or self.until < now:
            return False
        self.wanted = True
        return True

    def release(self, holder: str, senders: frozenset[str]) -> bool:
        self._call("release")
        if self.on_release:
            self.on_release.pop(0)()
        if self.holder != holder:
            return True
        if self.wanted:
            self.wanted = False
            return False
        self.holder = self.until = None
        self.senders = senders
        return True

    def give_up(self, holder: str, senders: frozenset[str]) -> None:
        self._call("give_up")
        if self.holder == holder:
            self.holder = self.until = None
            self.wanted = False
            self.senders = senders


class CountingOutbox(FakeOutbox):
    """Counts the due listings (one per page read)."""

    def __init__(self) -> None:
        super().__init__()
        self.listings = 0
        self.after_listing: list[Callable[[DuePage], None]] = []

    def due(self, now: datetime, limit: int, after: DueCursor | None = None) -> DuePage:
        self.listings += 1
        page = super().due(now, limit, after)
        if self.after_listing:
            self.after_listing.pop(0)(page)
        return page


def leased(
    outbox: FakeOutbox,
    plum: ScriptedPlum,
    lease: FakeLease,
    successor: Callable[[], None] | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    pacer: Callable[[], Pacer] | None = None,
    **config: Any,
) -> Dispatcher:
    settings = {"rate_per_second": 1000.0, "concurrency": 4} | config
    return Dispatcher(
        outbox=outbox,
        plum=lambda: plum,
        result_url=lambda ref: f"https://sms.example.test/plum/status?key=k&ref={ref}",
        config=DispatchConfig(**settings),
        clock=lambda: NOW,
        draw=lambda: 1.0,
        lease=lease,
        successor=successor,
        monotonic=monotonic,
        sleep=sleep,
        pacer=pacer,
    )


def plenty() -> int:
    return 600_000


def test_a_run_holds_the_lease_until_its_invocation_ends_and_lets_go_when_done() -> None:
    # GIVEN two due messages and a free lease
    outbox, plum, lease = CountingOutbox(), ScriptedPlum(), FakeLease()
    for index in range(2):
        outbox.add(message(index))
    # WHEN a run with 600 s left works
    report = leased(outbox, plum, lease).run(plenty)
    # THEN it held the lease until its invocation's end, sent both, and let go
    [(_, at, until)] = lease.acquired
    assert (at, until) == (NOW, NOW + timedelta(seconds=600))
    assert report["sent"] == 2
    assert report.stopped is None
    assert lease.holder is None
    assert lease.calls == ["acquire", "release"]


def test_a_run_that_finds_the_lease_held_asks_for_a_pass_and_touches_nothing() -> None:
    # GIVEN a due message and a lease another run holds for a minute more
    outbox, plum, lease = CountingOutbox(), ScriptedPlum(), FakeLease()
    outbox.add(message(1))
    lease.holder, lease.until = "other", NOW + timedelta(minutes=1)
    # WHEN a run starts
    report = leased(outbox, plum, lease).run(plenty)
    # THEN it leaves the holder a request and ends coalesced, without listing or sending
    assert report.stopped == COALESCED == "coalesced"
    assert lease.wanted
    assert lease.holder == "other"
    assert outbox.listings == 0
    assert plum.queued == []
    assert outbox.status(message(1).id) == "scheduled"
    assert lease.calls == ["acquire", "request"]


def test_a_lapsed_lease_is_taken_over() -> None:
    # GIVEN a lease whose holder's invocation ended a second ago without letting go
    outbox, plum, lease = CountingOutbox(), ScriptedPlum(), FakeLease()
    outbox.add(message(1))
    lease.holder, lease.until = "dead", NOW - timedelta(seconds=1)
    # WHEN a run starts
    report = leased(outbox, plum, lease).run(plenty)
    # THEN it takes the lease and sends
    assert report["sent"] == 1
    assert report.stopped is None
    assert lease.acquired[0][0] != "dead"


def test_a_send_now_arriving_after_the_last_listing_gets_one_more_pass() -> None:
    # GIVEN a run whose last listing found nothing more; right after it, a send-now
    # stores its message and its invoke finds the lease held (it leaves a request)
    outbox, plum, lease = CountingOutbox(), ScriptedPlum(), FakeLease()
    outbox.add(message(1))
    late = message(2)
    newcomer = leased(outbox, plum, lease)

    def send_now_arrives(page: DuePage) -> None:
        outbox.add(late)
        assert newcomer.run(plenty).stopped == COALESCED

    # listing 1 finds message 1; listing 2 (the pass's end: nothing new) is followed by
    # the send-now; its request must give message 2 a pass
    outbox.after_listing = [lambda page: None, send_now_arrives]
    report = leased(outbox, plum, lease).run(plenty)
    # THEN the holder made one more pass before letting go, and sent the late message
    assert report["requested_passes"] == 1
    assert report["sent"] == 2
    assert outbox.status(late.id) == "queued"
    assert lease.holder is None
    assert lease.calls.count("release") == 2


def test_without_the_request_the_late_message_would_wait_for_the_next_tick() -> None:
    # The control of the test above: a newcomer that finds the lease held but asks for
    # nothing (a lease without requests) leaves the late message unsent by this run.
    outbox, plum, lease = CountingOutbox(), ScriptedPlum(), FakeLease()
    outbox.add(message(1))
    late = message(2)
    outbox.after_listing = [lambda page: None, lambda page: outbox.add(late)]
    report = leased(outbox, plum, lease).run(plenty)
    assert report["sent"] == 1
    assert outbox.status(late.id) == "scheduled"


def test_a_lease_let_go_between_the_take_and_the_request_is_taken_again() -> None:
    # GIVEN a lease held by another run that lets go right as this run asks it for a pass
    outbox, plum, lease = CountingOutbox(), ScriptedPlum(), FakeLease()
    outbox.add(message(1))
    lease.holder, lease.until = "other", NOW + timedelta(minutes=1)

    def other_lets_go() -> None:
        lease.holder = lease.until = None

    lease.on_request = [other_lets_go]
    # WHEN the run starts
    report = leased(outbox, plum, lease).run(plenty)
    # THEN its request found nobody, so it took the lease itself and sent
    assert lease.calls[:3] == ["acquire", "request", "acquire"]
    assert report["sent"] == 1
    assert report.stopped is None


def test_a_lease_changing_hands_at_every_try_ends_the_run_coalesced() -> None:
    # GIVEN a lease that is always held when taken and always free when asked
    outbox, plum, lease = CountingOutbox(), ScriptedPlum(), FakeLease()
    outbox.add(message(1))
    lease.holder, lease.until = "other", NOW + timedelta(minutes=1)

    def flip() -> None:
        lease.holder = None

    def hold_again(_: str, __: datetime, ___: datetime) -> HeldLease | None:
        lease.calls.append("acquire")
        lease.holder = "other"
        return None

    lease.acquire = hold_again  # type: ignore[method-assign]
    lease.on_request = [flip] * LEASE_ROUNDS
    report = leased(outbox, plum, lease).run(plenty)
    # THEN after LEASE_ROUNDS tries it leaves the messages to the holder
    assert lease.calls.count("acquire") == LEASE_ROUNDS == 4
    assert report.stopped == COALESCED
    assert plum.queued == []


def test_a_run_out_of_time_gives_the_lease_up_even_with_a_request_waiting() -> None:
    # GIVEN a run whose time is up once its first pass is over, and a request waiting
    outbox, plum, lease = CountingOutbox(), ScriptedPlum(), FakeLease()
    outbox.add(message(1))
    left = [600_000]

    def remaining() -> int:
        return left[0]

    def time_is_up(page: DuePage) -> None:
        left[0] = 0
        lease.wanted = True

    outbox.after_listing = [lambda page: None, time_is_up]
    report = leased(outbox, plum, lease, stop_margin=timedelta(seconds=1)).run(remaining)
    # THEN it gives the lease up (the next tick serves the request) and says why
    assert lease.calls[-1] == "give_up"
    assert lease.holder is None
    assert report.stopped == "time"
    assert "release" not in lease.calls
    # AND leaves the next run the sender it found messages for
    assert lease.senders == {message(1).from_}


@pytest.mark.parametrize("failing", ["acquire", "request"])
def test_a_lease_the_store_cannot_read_stops_the_run_before_any_claim(failing: str) -> None:
    # GIVEN a store that fails on the lease
    outbox, plum, lease = CountingOutbox(), ScriptedPlum(), FakeLease()
    outbox.add(message(1))
    lease.holder, lease.until = "other", NOW + timedelta(minutes=1)
    lease.fail = {failing}
    # WHEN a run starts
    report = leased(outbox, plum, lease).run(plenty)
    # THEN nothing is claimed; the error is counted and the run says why it stopped
    assert report.stopped == "store"
    assert report["errors"] == 1
    assert outbox.listings == 0
    assert outbox.status(message(1).id) == "scheduled"


def test_a_failing_release_gives_up_and_a_failing_give_up_is_counted() -> None:
    # GIVEN a store that fails when the run lets go
    outbox, plum, lease = CountingOutbox(), ScriptedPlum(), FakeLease()
    outbox.add(message(1))
    lease.fail = {"release", "give_up"}
    # WHEN the run works
    report = leased(outbox, plum, lease).run(plenty)
    # THEN the send stands, it tried to give the lease up after the failed release (the
    # lease lapses by itself at the invocation's end anyway), and both failures count
    assert report["sent"] == 1
    assert lease.calls[-2:] == ["release", "give_up"]
    assert report["errors"] == 2


def test_a_run_out_of_time_lets_go_before_its_last_sends_have_left() -> None:
    # GIVEN three due messages, one worker, and a run whose time runs out while the
    # first send is with Plum
    outbox, plum, lease = CountingOutbox(), ScriptedPlum(), FakeLease()
    for index in range(3):
        outbox.add(message(index))
    left = [600_000]
    let_go = threading.Event()
    give_up = lease.give_up

    def giving_up(holder: str, senders: frozenset[str]) -> None:
        give_up(holder, senders)
        let_go.set()

    lease.give_up = giving_up  # type: ignore[method-assign]
    queue = plum.queue

    def slow_queue(to: str, from_: str, body: str, result_url: str | None = None) -> Any:
        left[0] = 0
        # THEN the lease is let go while the send is still in flight (the next run can
        # start claiming; the send keeps its booked slot)
        assert let_go.wait(timeout=5)
        return queue(to, from_, body, result_url)

    plum.queue = slow_queue  # type: ignore[method-assign]
    dispatcher = leased(outbox, plum, lease, concurrency=1, stop_margin=timedelta(seconds=1))
    report = dispatcher.run(lambda: left[0])
    # AND the send still finished and was recorded; the two others wait for the next run
    assert report["sent"] == 1
    assert report["errors"] == 0
    assert report.stopped == "time"
    assert lease.holder is None
    assert [outbox.status(message(i).id) for i in range(3)] == ["queued", "scheduled", "scheduled"]


# -- handing over to the next run ----------------------------------------------------------


class Successor:
    """The next run's trigger: records when it was pulled, and whether the lease was free."""

    def __init__(self, lease: FakeLease, fails: bool = False) -> None:
        self.lease = lease
        self.fails = fails
        self.calls: list[str | None] = []

    def __call__(self) -> None:
        self.calls.append(self.lease.holder)
        if self.fails:
            raise ConnectionError("lambda invoke failed")


def handing_over(
    outbox: FakeOutbox, plum: ScriptedPlum, lease: FakeLease, successor: Successor, **config: Any
) -> Dispatcher:
    """A leased dispatcher at 1 msg/s that hands over to ``successor``, on a still clock
    that never sleeps: the run's slots are 0, 1, 2, ... exactly."""
    return leased(
        outbox,
        plum,
        lease,
        successor=successor,
        monotonic=lambda: 0.0,
        sleep=lambda seconds: None,
        **({"rate_per_second": 1.0} | config),
    )


def test_a_run_out_of_slots_with_messages_due_starts_the_next_run_at_once() -> None:
    # GIVEN five due messages from one number at 1 msg/s and a run with 3.5 s to claim,
    # on a clock that stands still: the lead (1.75 s before the end) never comes
    outbox, plum, lease = CountingOutbox(), ScriptedPlum(), FakeLease()
    for index in range(5):
        outbox.add(message(index))
    successor = Successor(lease)
    dispatcher = handing_over(outbox, plum, lease, successor, stop_margin=timedelta(seconds=2))
    report = dispatcher.run(lambda: 5_500)
    # THEN it sent what its slots allowed (0, 1, 2 and 3 s), and started the next run
    # once, as soon as it had no slot left: while it still held the lease (the next run
    # waits for it), not once its last sends had left
    assert report["sent"] == 4
    assert report["continued"] == 1
    assert len(successor.calls) == 1
    assert successor.calls[0] is not None
    assert lease.holder is None


def test_a_run_that_finished_the_due_messages_starts_nothing() -> None:
    outbox, plum, lease = CountingOutbox(), ScriptedPlum(), FakeLease()
    outbox.add(message(1))
    successor = Successor(lease)
    report = handing_over(outbox, plum, lease, successor, rate_per_second=1000.0).run(plenty)
    assert report["sent"] == 1
    assert report["continued"] == 0
    assert successor.calls == []


def test_a_run_that_moved_nothing_leaves_the_messages_to_the_next_tick() -> None:
    # GIVEN a due message whose every send attempt fails for now (Plum overloaded)
    outbox, plum, lease = CountingOutbox(), ScriptedPlum(), FakeLease()
    outbox.add(message(1, to="+12125550001"))
    plum.failures["+12125550001"] = PlumUnavailable("HTTP 503")
    successor = Successor(lease)
    dispatcher = handing_over(outbox, plum, lease, successor, stop_margin=timedelta(seconds=2))
    report = dispatcher.run(lambda: 2_500)
    # THEN no run is started: it would fail the same way; the tick retries later
    assert report["sent"] == 0
    assert successor.calls == []


def test_a_failed_hand_over_is_counted_and_the_tick_takes_over() -> None:
    outbox, plum, lease = CountingOutbox(), ScriptedPlum(), FakeLease()
    for index in range(5):
        outbox.add(message(index))
    successor = Successor(lease, fails=True)
    dispatcher = handing_over(outbox, plum, lease, successor, stop_margin=timedelta(seconds=2))
    report = dispatcher.run(lambda: 5_500)
    # THEN it tried once when out of slots, and again once its last sends had left;
    # both failures are counted, and the lease is free for the tick
    assert len(successor.calls) == 2
    assert successor.calls[1] is None
    assert report["continued"] == 0
    assert report["errors"] == 2
    assert lease.holder is None


def test_a_run_whose_last_send_is_still_with_plum_hands_over_once() -> None:
    # GIVEN three due messages from one number at 1 msg/s, a run with room for one slot,
    # and a Plum that answers slowly: the run runs out of slots while its send is out
    outbox, plum, lease = CountingOutbox(), ScriptedPlum(), FakeLease()
    for index in range(3):
        outbox.add(message(index))
    queue = plum.queue

    def slow_queue(to: str, from_: str, body: str, result_url: str | None = None) -> Any:
        time.sleep(0.3)
        return queue(to, from_, body, result_url)

    plum.queue = slow_queue  # type: ignore[method-assign]
    successor = Successor(lease)
    dispatcher = handing_over(outbox, plum, lease, successor, stop_margin=timedelta(seconds=1))
    report = dispatcher.run(lambda: 1_500)
    # THEN the claim counted as progress: the next run was started, once, while the
    # lease was held (not again at the end)
    assert report["sent"] == 1
    assert len(successor.calls) == 1
    assert successor.calls[0] is not None
    assert report["continued"] == 1


# -- the hand-over, started within the lead ------------------------------------------------


class Timeline(FakeTime):
    """A run's clock (moved only by its sleeps, its workers' included) and its time left."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.ends = seconds

    def remaining_ms(self) -> int:
        return max(0, int((self.ends - self.monotonic()) * 1000))


class TimedSuccessor(Successor):
    """A ``Successor`` that also notes when (on the run's clock) it was started."""

    def __init__(self, lease: FakeLease, timeline: Timeline) -> None:
        super().__init__(lease)
        self.timeline = timeline
        self.at: list[float] = []

    def __call__(self) -> None:
        self.at.append(self.timeline.monotonic())
        super().__call__()


def relaying(
    outbox: FakeOutbox,
    plum: ScriptedPlum,
    lease: FakeLease,
    timeline: Timeline,
    trigger: Callable[[TimedSuccessor], Callable[[], None] | None] = lambda successor: successor,
    **config: Any,
) -> tuple[Dispatcher, TimedSuccessor]:
    """A leased dispatcher at 1 msg/s, one worker, on ``timeline``; its hand-over calls
    ``trigger(successor)`` (the ``TimedSuccessor`` itself by default)."""
    successor = TimedSuccessor(lease, timeline)
    dispatcher = leased(
        outbox,
        plum,
        lease,
        successor=trigger(successor),
        monotonic=timeline.monotonic,
        sleep=timeline.sleep,
        **({"rate_per_second": 1.0, "concurrency": 1, "stop_margin": timedelta(seconds=2)}
           | config),
    )  # fmt: skip
    return dispatcher, successor


def relay_run(
    due: int, seconds: float = 10.0, **config: Any
) -> tuple[DispatchReport, TimedSuccessor, FakeLease]:
    """One run of ``relaying`` with ``due`` messages from one number and ``seconds`` left."""
    outbox, plum, lease = CountingOutbox(), ScriptedPlum(), FakeLease()
    for index in range(due):
        outbox.add(message(index))
    timeline = Timeline(seconds)
    dispatcher, successor = relaying(outbox, plum, lease, timeline, **config)
    return dispatcher.run(timeline.remaining_ms), successor, lease


def test_a_run_with_more_due_than_it_can_send_starts_the_next_one_within_the_lead() -> None:
    # GIVEN 20 due messages from one number at 1 msg/s, and a run with 8 s to claim
    # (10 s left, 2 s margin): its lead is half of that, 4 s
    # WHEN it works
    report, successor, lease = relay_run(20)
    # THEN it started the next run once, 4 s before it stopped claiming, while it still
    # held the lease (the next run waits for it), and not again at its end
    assert len(successor.at) == 1
    assert 4.0 <= successor.at[0] < 5.0
    assert successor.calls[0] is not None
    assert report["continued"] == 1
    assert 7 <= report["sent"] <= 9
    assert lease.holder is None


def test_a_run_that_will_finish_within_the_lead_starts_nothing() -> None:
    # GIVEN 6 due messages at 1 msg/s and 8 s to claim: at the lead (4 s before the
    # end) one message is queued, which the run sends itself
    report, successor, _ = relay_run(6)
    assert report["sent"] == 6
    assert successor.at == []
    assert report["continued"] == 0


def test_the_lead_is_the_configured_one_for_a_long_run() -> None:
    # GIVEN 60 due messages at 1 msg/s and a run with 40 s to claim: the configured
    # lead (5 s) is below half the claim time
    _, successor, _ = relay_run(60, 60.0, stop_margin=timedelta(seconds=20))
    # THEN the next run was started 5 s before the run stopped claiming (at 40 s)
    assert len(successor.at) == 1
    assert 35.0 <= successor.at[0] < 36.0


class WaitingClock:
    """The clock of a run started by a hand-over: its sleeps are its tries at the lease;
    the holder lets go after ``holder_leaves_after`` of them (never when None)."""

    def __init__(self, lease: FakeLease, holder_leaves_after: int | None) -> None:
        self.lease = lease
        self.leaves_after = holder_leaves_after
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.leaves_after is not None and len(self.sleeps) == self.leaves_after:
            self.lease.holder = self.lease.until = None


def behind_predecessor(
    leaves_after: int | None, **config: Any
) -> tuple[Dispatcher, WaitingClock, FakeLease, ScriptedPlum]:
    """A dispatcher with one due message, whose lease a predecessor holds for a minute
    more and lets go of after ``leaves_after`` of the dispatcher's sleeps (or never)."""
    outbox, plum, lease = CountingOutbox(), ScriptedPlum(), FakeLease()
    outbox.add(message(1))
    lease.holder, lease.until = "predecessor", NOW + timedelta(minutes=1)
    clock = WaitingClock(lease, holder_leaves_after=leaves_after)
    dispatcher = leased(outbox, plum, lease, monotonic=clock.monotonic, sleep=clock.sleep, **config)
    return dispatcher, clock, lease, plum


def test_a_run_started_by_a_hand_over_waits_for_the_lease_and_takes_it() -> None:
    # GIVEN the predecessor holds the lease for a minute more, and lets go after the
    # third try of the run it started
    dispatcher, clock, lease, _ = behind_predecessor(3)
    # WHEN the hand-over's run starts
    report = dispatcher.run(plenty, hand_over=True)
    # THEN it tried every LEASE_POLL_SECONDS, took the lease on the fourth try, asked
    # for nothing, and sent
    assert clock.sleeps[:3] == [LEASE_POLL_SECONDS] * 3
    assert lease.calls[:5] == ["acquire"] * 4 + ["release"]
    assert "request" not in lease.calls
    assert report["sent"] == 1
    assert report.stopped is None


def test_a_hand_overs_run_whose_predecessor_keeps_the_lease_coalesces_after_waiting() -> None:
    # GIVEN a predecessor that never lets go
    dispatcher, clock, lease, plum = behind_predecessor(None)
    report = dispatcher.run(plenty, hand_over=True)
    # THEN it waited twice the lead (10 s), then left a request and ended
    waited = 2 * DispatchConfig().hand_over_lead.total_seconds()
    assert waited <= sum(clock.sleeps) <= waited + LEASE_POLL_SECONDS + 1e-9
    assert lease.calls[-1] == "request"
    assert report.stopped == COALESCED
    assert plum.queued == []


def test_a_run_not_started_by_a_hand_over_coalesces_at_once() -> None:
    dispatcher, clock, _, _ = behind_predecessor(1)
    report = dispatcher.run(plenty)
    assert clock.sleeps == []
    assert report.stopped == COALESCED


def test_a_pass_requested_while_the_next_run_waits_is_left_to_that_run() -> None:
    # GIVEN a run that started the next one within its lead, after which a tick found
    # the lease held and asked for a pass
    outbox, plum, lease = CountingOutbox(), ScriptedPlum(), FakeLease()
    for index in range(20):
        outbox.add(message(index))
    timeline = Timeline(10.0)

    def then_a_tick_asks(successor: TimedSuccessor) -> Callable[[], None]:
        def started_then_a_tick_asks() -> None:
            successor()
            assert lease.request(NOW)

        return started_then_a_tick_asks

    dispatcher, _ = relaying(outbox, plum, lease, timeline, then_a_tick_asks)
    # WHEN the run stops claiming
    report = dispatcher.run(timeline.remaining_ms)
    # THEN it gives the lease up at once instead of making the pass: the waiting run
    # takes it and lists the due messages anyway (sooner than one more pass here)
    assert report["continued"] == 1
    assert report["requested_passes"] == 0
    assert lease.calls[-1] == "give_up"
    assert "release" not in lease.calls
    assert lease.holder is None and not lease.wanted


def test_without_a_waiting_run_the_requested_pass_is_made() -> None:
    # The control: the same request with no next run started costs the holder a pass.
    # (8.5 s to claim: the run is out of slots after its slot at 8 s, with time left)
    outbox, plum, lease = CountingOutbox(), ScriptedPlum(), FakeLease()
    for index in range(20):
        outbox.add(message(index))
    timeline = Timeline(10.5)
    dispatcher, _ = relaying(outbox, plum, lease, timeline, lambda successor: None)
    listings = outbox.listings
    outbox.after_listing = [lambda page: lease.request(NOW) and None]
    report = dispatcher.run(timeline.remaining_ms)
    assert outbox.listings > listings
    assert report["requested_passes"] == 1


def test_a_hand_overs_run_waits_no_longer_than_its_own_claiming_time() -> None:
    # GIVEN a predecessor that never lets go, and a hand-over's run with 5 s left
    # (2 s margin: 3 s to claim, less than twice the lead)
    dispatcher, clock, _, _ = behind_predecessor(None, stop_margin=timedelta(seconds=2))
    report = dispatcher.run(lambda: 5_000, hand_over=True)
    # THEN it gave up waiting after its 3 s and coalesced
    assert 3.0 <= sum(clock.sleeps) <= 3.0 + LEASE_POLL_SECONDS + 1e-9
    assert report.stopped == COALESCED


def noting_let_go(lease: FakeLease, order: list[str]) -> None:
    """Note "lease let go" in ``order`` when the run gives ``lease`` up."""
    give_up = lease.give_up

    def giving_up(holder: str, senders: frozenset[str]) -> None:
        order.append("lease let go")
        give_up(holder, senders)

    lease.give_up = giving_up  # type: ignore[method-assign]


def test_a_run_lets_go_of_the_lease_only_once_its_last_claims_are_answered() -> None:
    # GIVEN a due message whose claim takes 0.2 s to be answered, and a run whose time
    # runs out while that claim is on its way
    outbox, plum, lease = CountingOutbox(), ScriptedPlum(), FakeLease()
    outbox.add(message(0))
    left = [600_000]
    order: list[str] = []
    claim = outbox.claim

    def slow_claim(*args: Any, **kwargs: Any) -> Any:
        left[0] = 0
        time.sleep(0.2)
        order.append("claim answered")
        return claim(*args, **kwargs)

    outbox.claim = slow_claim  # type: ignore[method-assign]
    noting_let_go(lease, order)
    dispatcher = leased(outbox, plum, lease, concurrency=1, stop_margin=timedelta(seconds=1))
    report = dispatcher.run(lambda: left[0])
    # THEN the lease was let go after the claim was answered (a next run listing the due
    # messages in between would have raced this run for the message), and the message
    # was still sent
    assert order == ["claim answered", "lease let go"]
    assert report["sent"] == 1 and report["lost_race"] == 0


class RecordingPacer(RateLimiter):
    """A run's limiter that notes, in ``order``, the slots dropped and booked ahead."""

    def __init__(self, order: list[str]) -> None:
        super().__init__(1000.0)
        self.order = order
        self.reserved = threading.Semaphore(0)

    def reserve(self, key: str, deadline: float | None = None) -> float | None:
        slot = super().reserve(key, deadline)
        self.reserved.release()
        return slot

    def drop(self, key: str, slot: float) -> None:
        self.order.append("slot dropped")

    def book_reserved(self) -> None:
        self.order.append("reserved slots booked")


def test_a_run_books_its_last_slots_before_letting_go_and_none_for_a_lost_claim() -> None:
    # GIVEN two due messages, one of which another run claims first, and a run whose
    # time runs out once both claims are on their way
    outbox, plum, lease = CountingOutbox(), ScriptedPlum(), FakeLease()
    outbox.add(message(0))
    outbox.add(message(1))
    left = [600_000]
    order: list[str] = []
    claims: list[str] = []
    claim = outbox.claim

    def claim_or_lose(ref: DueRef, *args: Any, **kwargs: Any) -> Any:
        claims.append(ref.message_id)
        if len(claims) == 2:
            left[0] = 0
        time.sleep(0.1)
        return None if ref.message_id == message(1).id else claim(ref, *args, **kwargs)

    outbox.claim = claim_or_lose  # type: ignore[method-assign]
    noting_let_go(lease, order)
    dispatcher = leased(
        outbox, plum, lease, pacer=lambda: RecordingPacer(order), stop_margin=timedelta(seconds=1)
    )
    report = dispatcher.run(lambda: left[0])
    # THEN the lost claim's slot was dropped, and the slots still to be used were booked
    # before the lease was let go (a next run booking first would take them)
    assert report["lost_race"] == 1 and report["sent"] == 1
    assert order == ["slot dropped", "reserved slots booked", "lease let go"]


def test_a_run_halted_by_refused_credentials_books_no_slot_before_letting_go() -> None:
    # GIVEN a due message whose send Plum refuses (wrong credentials): the run halts
    outbox, plum, lease = CountingOutbox(), ScriptedPlum(), FakeLease()
    outbox.add(message(0, to="+12125550000"))
    plum.failures["+12125550000"] = Unauthorized("HTTP 401")
    order: list[str] = []
    noting_let_go(lease, order)
    dispatcher = leased(outbox, plum, lease, pacer=lambda: RecordingPacer(order))
    report = dispatcher.run(plenty)
    # THEN no slot is held for sends that will not happen
    assert report.stopped == "unauthorized"
    assert order == ["lease let go"]


def test_a_slot_reserved_for_a_message_no_worker_took_is_dropped() -> None:
    # GIVEN one worker, two due messages from one number, and a send that takes 0.3 s
    # during which the run's time runs out: the second message's slot was reserved while
    # the loop waited for the worker
    outbox, plum, lease = CountingOutbox(), ScriptedPlum(), FakeLease()
    outbox.add(message(0))
    outbox.add(message(1))
    left = [600_000]
    order: list[str] = []
    queue = plum.queue
    pacer = RecordingPacer(order)

    def slow_queue(to: str, from_: str, body: str, result_url: str | None = None) -> Any:
        # Once the loop has reserved the second slot (and waits for the worker).
        assert pacer.reserved.acquire(timeout=5) and pacer.reserved.acquire(timeout=5)
        left[0] = 0
        time.sleep(0.3)
        return queue(to, from_, body, result_url)

    plum.queue = slow_queue  # type: ignore[method-assign]
    noting_let_go(lease, order)
    dispatcher = leased(
        outbox,
        plum,
        lease,
        pacer=lambda: pacer,
        concurrency=1,
        stop_margin=timedelta(seconds=1),
    )
    report = dispatcher.run(lambda: left[0])
    # THEN that slot was dropped before the run booked its reserved slots (a shared slot
    # booked for it would go unused: a gap in the sender's pace)
    assert report["sent"] == 1
    assert order == ["slot dropped", "reserved slots booked", "lease let go"]


def test_a_run_reads_on_for_the_senders_its_predecessor_left_in_the_lease() -> None:
    # GIVEN a run taking over from one that found messages of B and C: B's next message
    # lies past the pages held (four pages of four), and C has nothing due any more
    outbox = outbox_with("A" * 24 + "B" + "AAA")
    plum, lease = ScriptedPlum(), FakeLease()
    lease.senders = frozenset({B, C})
    # WHEN it works with one worker (the sends leave in the order taken)
    report = leased(outbox, plum, lease, concurrency=1, page_size=4).run(plenty)
    # THEN B's message takes the first turn with A's first, not once A's queue ran low
    order = [int(body.split()[1]) for _, _, body, _ in plum.queued]
    assert sorted(order[:2]) == [0, 24]
    assert report["sent"] == 28
    # AND the lease, let go, names the senders this run found (not C, found by nobody)
    assert lease.senders == {A, B}


def test_without_senders_left_in_the_lease_a_far_sender_waits_for_the_reading() -> None:
    # The control: the same due list, nothing left in the lease.
    outbox = outbox_with("A" * 24 + "B" + "AAA")
    plum, lease = ScriptedPlum(), FakeLease()
    leased(outbox, plum, lease, concurrency=1, page_size=4).run(plenty)
    order = [int(body.split()[1]) for _, _, body, _ in plum.queued]
    assert order.index(24) > 2


class NoSlotsFor(RateLimiter):
    """A limiter with no slot at all for ``sender`` (as if its book were full)."""

    def __init__(self, sender: str) -> None:
        super().__init__(1000.0)
        self.sender = sender

    def reserve(self, key: str, deadline: float | None = None) -> float | None:
        return None if key == self.sender else super().reserve(key, deadline)


def test_a_run_whose_queued_senders_are_out_of_slots_reads_on_for_a_known_one() -> None:
    # GIVEN A with no slot left, and a run taking over from one that found B, whose
    # message lies far past what one turn reads on (pages of four: 16 per turn)
    outbox = outbox_with("A" * 60 + "B")
    plum, lease = ScriptedPlum(), FakeLease()
    lease.senders = frozenset({B})
    # WHEN it works
    report = leased(
        outbox, plum, lease, pacer=lambda: NoSlotsFor(A), concurrency=1, page_size=4
    ).run(plenty)
    # THEN once A's turn comes back empty it reads on (rather than stopping as out of
    # slots with B unread) and sends B's message
    assert [body for _, _, body, _ in plum.queued] == ["Message 60"]
    assert report["sent"] == 1


class LateForTheFirstSlots(RateLimiter):
    """A limiter whose first ``late`` sends each find every slot passed when the book
    answers (as a ``SharedPacer`` does in front of a stalled store): they may not go."""

    def __init__(self, late: int) -> None:
        super().__init__(1000.0)
        self.late = late
        self.missed_slots = 0
        self.lock = threading.Lock()

    def wait_until(self, key: str, slot: float) -> bool:
        with self.lock:
            if self.late:
                self.late -= 1
                self.missed_slots += 3
                return False
        return super().wait_until(key, slot)

    def missed(self) -> int:
        return self.missed_slots


def test_sends_whose_slots_passed_go_back_unsent_and_the_slots_missed_are_reported() -> None:
    # GIVEN two due messages, and a pacer with no usable slot for the first two sends
    outbox = outbox_with("AB")
    plum, lease = ScriptedPlum(), FakeLease()
    # WHEN a run works
    report = leased(outbox, plum, lease, pacer=lambda: LateForTheFirstSlots(2)).run(plenty)
    # THEN both claims went back unsent (no attempt counted), the run's next pass sent
    # each once, and the slots missed are counted for the metric
    assert sorted(body for _, _, body, _ in plum.queued) == ["Message 0", "Message 1"]
    assert report["claimed"] == 4
    assert report["sent"] == 2
    assert report["retried"] == 0
    assert report["slots_missed"] == 6
