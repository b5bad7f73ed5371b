"""Pacing across runs: a run's local limiter in front of the slot book every run shares,
with the wall and monotonic clocks apart (they never agree in a real Lambda)."""

from __future__ import annotations

import math
import threading

import pytest

from plumsms.usecases.dispatch.pacing import (
    BOOK_AHEAD_FIRST,
    BOOK_AHEAD_MAX,
    BOOK_AHEAD_MIN,
    LATE_BOOKINGS,
    BookingLead,
    RateLimiter,
    SharedPacer,
)

OFFSET = 1_700_000_000.0
"""Wall time minus monotonic time in these tests."""


class Clocks:
    """A monotonic and a wall clock ``OFFSET`` apart; sleeping moves both."""

    def __init__(self) -> None:
        self.mono = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.mono

    def wall(self) -> float:
        return self.mono + OFFSET

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.mono += seconds


class Book:
    """An in-memory slot book with the ``SlotBook`` contract, recording its calls."""

    def __init__(self, clocks: Clocks, interval: float) -> None:
        self.clocks = clocks
        self.interval = interval
        self.next: dict[str, float] = {}
        self.calls: list[tuple[str, float]] = []
        self.earliest: list[float | None] = []
        self.trip = 0.0
        """Seconds each booking takes (the wall clock moves on by that much)."""
        self.asked: list[float] = []
        """The wall time of each booking."""

    def book(
        self, number: str, deadline: float, earliest: float | None = None
    ) -> tuple[float | None, float]:
        self.calls.append((number, deadline))
        self.earliest.append(earliest)
        now = self.clocks.wall()
        self.asked.append(now)
        self.clocks.mono += self.trip
        booked = self.next.get(number, -math.inf)
        # as DynamoSlotBook: an idle sender's slot starts at ``earliest``, a busy one's
        # next slot is taken as it is
        slot = booked if booked >= now else max(now, earliest or now)
        if slot > deadline:
            return None, self.next.get(number, slot)
        self.next[number] = slot + self.interval
        return slot, self.next[number]


def pacer(rate: float = 1.0) -> tuple[SharedPacer, Book, Clocks]:
    clocks = Clocks()
    book = Book(clocks, 1 / rate)
    return pacer_on(book), book, clocks


def pacer_on(book: Book) -> SharedPacer:
    """A run's pacer in front of ``book``, on the book's clocks, at the book's rate."""
    clocks = book.clocks
    local = RateLimiter(1 / book.interval, clocks.monotonic, clocks.sleep)
    return SharedPacer(
        local, book, wall=clocks.wall, monotonic=clocks.monotonic, sleep=clocks.sleep
    )


def test_the_shared_book_is_asked_with_the_runs_deadline_in_wall_time() -> None:
    # GIVEN a run whose deadline is 30 s from now on the monotonic clock
    shared, book, clocks = pacer()
    slot = shared.reserve("+1", deadline=clocks.mono + 30)
    assert slot == clocks.mono
    # WHEN its worker waits for the slot
    assert shared.wait_until("+1", slot) is True
    # THEN the book got the same deadline on the wall clock
    assert book.calls == [("+1", 100.0 + 30 + OFFSET)]


def test_without_a_deadline_the_book_is_asked_with_a_far_one() -> None:
    shared, book, _ = pacer()
    slot = shared.reserve("+1")
    assert slot is not None and shared.wait_until("+1", slot)
    assert book.calls == [("+1", 1e12)]


def test_a_later_shared_slot_is_slept_until_and_a_past_one_not() -> None:
    # GIVEN another run that booked this sender's next two seconds
    shared, book, clocks = pacer()
    book.next["+1"] = clocks.wall() + 2.0
    # WHEN this run sends from it
    slot = shared.reserve("+1", deadline=clocks.mono + 30)
    assert slot is not None and shared.wait_until("+1", slot)
    # THEN it slept exactly until the shared slot
    assert clocks.slept == [pytest.approx(2.0)]
    # AND a sender with a free book sends after the least lead a booking is made with
    other = shared.reserve("+2", deadline=clocks.mono + 30)
    assert other is not None and shared.wait_until("+2", other)
    assert clocks.slept == [pytest.approx(2.0), pytest.approx(BOOK_AHEAD_MIN)]


def test_no_shared_slot_before_the_deadline_means_no_send_and_no_more_local_slots() -> None:
    # GIVEN other runs that booked this sender for the next minute, and a 10-s deadline
    shared, book, clocks = pacer()
    book.next["+1"] = clocks.wall() + 60
    slot = shared.reserve("+1", deadline=clocks.mono + 10)
    assert slot is not None
    # WHEN the worker waits for it
    sent = shared.wait_until("+1", slot)
    # THEN it may not send, slept nothing, and the run books no local slot before the
    # shared book's next free one (a minute away, past the deadline)
    assert sent is False and clocks.slept == []
    assert shared.reserve("+1", deadline=clocks.mono + 10) is None
    assert shared.reserve("+1", deadline=clocks.mono + 61) == pytest.approx(clocks.mono + 60)


def test_other_runs_bookings_push_this_runs_schedule_back() -> None:
    # GIVEN a run at 1 msg/s, and another run that has booked the sender's next 5 s
    shared, book, clocks = pacer()
    book.next["+1"] = clocks.wall() + 5
    first = shared.reserve("+1", deadline=clocks.mono + 30)
    assert first is not None and shared.wait_until("+1", first)
    # WHEN this run books its next slot
    second = shared.reserve("+1", deadline=clocks.mono + 30)
    # THEN it is after the shared slot it just used, not one local interval after 0
    assert second == pytest.approx(100.0 + 6)


def test_deferring_never_brings_a_slot_closer() -> None:
    clocks = Clocks()
    limiter = RateLimiter(1, clocks.monotonic, clocks.sleep)
    limiter.defer("+1", 110.0)
    limiter.defer("+1", 105.0)  # an older answer of the book arrives late
    assert limiter.reserve("+1") == 110.0
    limiter.defer("+2", 90.0)  # in the past: the next slot is now
    assert limiter.reserve("+2") == 100.0


def test_a_slot_exactly_at_the_deadline_is_still_booked() -> None:
    clocks = Clocks()
    limiter = RateLimiter(1, clocks.monotonic, clocks.sleep)
    assert limiter.reserve("+1", deadline=101.0) == 100.0
    assert limiter.reserve("+1", deadline=101.0) == 101.0
    assert limiter.reserve("+1", deadline=101.0) is None


@pytest.mark.parametrize("rate", [0, -1.0])
def test_a_rate_must_be_positive(rate: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(rate)


def test_waiting_for_a_past_slot_does_not_sleep() -> None:
    clocks = Clocks()
    limiter = RateLimiter(1, clocks.monotonic, clocks.sleep)
    slot = limiter.reserve("+1")
    assert slot is not None
    clocks.mono += 5
    assert limiter.wait_until("+1", slot) is True
    assert clocks.slept == []


def test_a_first_send_is_not_held_back_even_at_the_clocks_origin() -> None:
    # GIVEN a monotonic clock that starts at 0 (a freshly booted host)
    clocks = Clocks()
    clocks.mono = 0.0
    limiter = RateLimiter(1, clocks.monotonic, clocks.sleep)
    # WHEN a sender's first send takes its slot
    slot = limiter.reserve("+1")
    assert slot == 0.0
    limiter.wait_until("+1", slot)
    # THEN it goes at once: there is no previous send to keep an interval from
    assert clocks.slept == []


def test_a_shared_slot_half_a_second_away_is_slept_for_exactly() -> None:
    shared, book, clocks = pacer()
    book.next["+1"] = clocks.wall() + 0.5
    slot = shared.reserve("+1", deadline=clocks.mono + 30)
    assert slot is not None and shared.wait_until("+1", slot)
    assert clocks.slept == [pytest.approx(0.5)]


def test_a_shared_slot_that_passed_while_booking_is_used_at_once() -> None:
    # GIVEN a slot book that takes 300 ms to answer (a slow DynamoDB call), so the slot
    # it grants is already in the past when the first answer arrives
    shared, book, clocks = pacer()
    book.trip = 0.3
    slot = shared.reserve("+1", deadline=clocks.mono + 30)
    # WHEN the worker gets it
    assert slot is not None and shared.wait_until("+1", slot) is True
    # THEN it sends at once, sleeping nothing
    assert clocks.slept == []


def test_a_shared_slot_that_passed_by_more_than_half_an_interval_is_not_used() -> None:
    # GIVEN a sender at 1 msg/s whose book is busy from now on, and a book taking 750 ms
    # to answer: the slot it grants has passed by 750 ms when the answer is back
    shared, book, clocks = pacer(rate=1.0)
    book.next["+1"] = start = clocks.wall()
    book.trip = 0.75
    slot = shared.reserve("+1", deadline=clocks.mono + 30)
    # WHEN the worker waits for it
    assert slot is not None and shared.wait_until("+1", slot) is True
    # THEN that slot (passed by more than half an interval: sent then, the message would
    # leave close behind the sender's next slot) was left unused, and the send left in
    # the next one, which had passed by exactly half an interval: still used
    assert book.asked == [start, start + 0.75]
    assert clocks.wall() - start == 1.5
    assert shared.missed() == 1
    assert clocks.slept == []


def test_a_send_whose_every_slot_passed_before_the_answer_is_not_sent() -> None:
    # GIVEN a book answering in 1.5 s, later than the longest lead a booking is made with
    shared, book, clocks = pacer(rate=2.0)
    book.trip = 1.5
    slot = shared.reserve("+1", deadline=clocks.mono + 30)
    # WHEN the worker waits for its slot
    sent = shared.wait_until("+1", slot) if slot is not None else None
    # THEN after booking LATE_BOOKINGS slots, each passed when its answer came, it gives
    # the send up (its claim goes back unsent)
    assert sent is False
    assert len(book.calls) == LATE_BOOKINGS == shared.missed() == 3  # as docs/sending.md says


def test_a_local_limiter_misses_no_slot() -> None:
    clocks = Clocks()
    limiter = RateLimiter(2, clocks.monotonic, clocks.sleep)
    slot = limiter.reserve("+1")
    clocks.mono += 5
    assert slot is not None and limiter.wait_until("+1", slot)
    assert limiter.missed() == 0
    assert limiter.interval == 0.5


def test_after_a_slow_answer_slots_are_booked_ahead_and_the_send_leaves_on_time() -> None:
    # GIVEN a slot book that takes 300 ms to answer, and a sender's first send: booked
    # the first lead ahead (100 ms), it leaves 200 ms late (nothing was timed yet)
    shared, book, clocks = pacer()
    book.trip = 0.3
    first = shared.reserve("+1", deadline=clocks.mono + 30)
    assert first is not None and shared.wait_until("+1", first)
    assert clocks.mono == pytest.approx(first + 0.3)
    # WHEN its next send waits for its slot (the book's next: one interval after the
    # first shared slot)
    second = shared.reserve("+1", deadline=clocks.mono + 30)
    assert second == pytest.approx(first + BOOK_AHEAD_FIRST + 1.0)
    assert shared.wait_until("+1", second)
    # THEN the booking went out half again the round trip ahead (450 ms), its answer
    # was back 150 ms before the slot, and the send leaves exactly at the slot
    assert shared.lead.seconds() == pytest.approx(0.45)
    assert book.earliest[1] == pytest.approx(second + OFFSET, abs=1e-6)  # wall: 1.7e9 s
    assert clocks.mono == pytest.approx(second)


def test_a_send_that_left_late_does_not_hold_the_next_one_back() -> None:
    # GIVEN a first send that left 200 ms late (see above)
    shared, book, clocks = pacer()
    book.trip = 0.3
    first = shared.reserve("+1", deadline=clocks.mono + 30)
    assert first is not None and shared.wait_until("+1", first)
    # WHEN the next two wait for their slots
    sent = []
    for _ in range(2):
        slot = shared.reserve("+1", deadline=clocks.mono + 30)
        assert slot is not None and shared.wait_until("+1", slot)
        sent.append(clocks.mono)
    # THEN they leave on the book's slots, an interval apart (a guard of one interval
    # after the late send would have kept every later send 200 ms behind the book)
    assert sent == [
        pytest.approx(first + BOOK_AHEAD_FIRST + 1.0),
        pytest.approx(first + BOOK_AHEAD_FIRST + 2.0),
    ]


def test_the_lead_follows_the_slowest_recent_answer_within_its_bounds() -> None:
    # (A slow rate, so that no answer comes back more than half an interval late: each
    # send is one booking.)
    shared, book, _ = pacer(rate=0.1)
    assert shared.lead.seconds() == BOOK_AHEAD_FIRST
    book.trip = 0.0
    slot = shared.reserve("+1")
    assert slot is not None and shared.wait_until("+1", slot)
    assert shared.lead.seconds() == BOOK_AHEAD_MIN
    for trip in (0.1, 0.02, 0.0):
        book.trip = trip
        slot = shared.reserve("+1")
        assert slot is not None and shared.wait_until("+1", slot)
    # the slowest of the latest answers counts, not the last one
    assert shared.lead.seconds() == pytest.approx(0.15)
    # a book answering in 5 s is failing, not slow: the lead stays at 1 s
    book.trip = 5.0
    slot = shared.reserve("+1")
    assert slot is not None and shared.wait_until("+1", slot)
    assert shared.lead.seconds() == BOOK_AHEAD_MAX == 1.0
    # an answer is remembered for 32 more, then forgotten
    book.trip = 0.0
    for _ in range(31):
        slot = shared.reserve("+1")
        assert slot is not None and shared.wait_until("+1", slot)
    assert shared.lead.seconds() == 1.0
    slot = shared.reserve("+1")
    assert slot is not None and shared.wait_until("+1", slot)
    assert shared.lead.seconds() == BOOK_AHEAD_MIN


def test_a_run_starts_with_the_lead_the_runs_before_it_learnt() -> None:
    # GIVEN one environment's lead, and a run that timed a slow book
    lead = BookingLead()
    clocks = Clocks()
    book = Book(clocks, 1.0)
    book.trip = 0.4

    def run_pacer() -> SharedPacer:
        local = RateLimiter(1.0, clocks.monotonic, clocks.sleep)
        return SharedPacer(
            local, book, lead=lead, wall=clocks.wall, monotonic=clocks.monotonic, sleep=clocks.sleep
        )

    first = run_pacer()
    slot = first.reserve("+1")
    assert slot is not None and first.wait_until("+1", slot)
    # WHEN the environment's next run starts
    # THEN its first booking already goes out far enough ahead
    assert run_pacer().lead.seconds() == pytest.approx(0.6)


def test_no_local_slot_is_reserved_within_one_booking_lead_of_the_deadline() -> None:
    # GIVEN a run 10 s from its deadline, at 1 msg/s, booking the first lead ahead
    shared, _, clocks = pacer()
    deadline = clocks.mono + 10
    slots = []
    while (slot := shared.reserve("+1", deadline=deadline)) is not None:
        slots.append(slot)
    # THEN its last local slot leaves the lead free before the deadline (a slot at 10 s
    # would be booked for 10.1 s, past it, and its claim handed back)
    assert slots[-1] == clocks.mono + 9
    assert slots[-1] <= deadline - BOOK_AHEAD_FIRST
    # AND every slot reserved gets its shared slot
    for slot in slots:
        assert shared.wait_until("+1", slot)


def test_a_run_behind_the_book_reserves_no_slot_the_book_would_refuse() -> None:
    # GIVEN a run at 1 msg/s taking over while the previous run's sends hold the book a
    # second ahead, 9.5 s from its deadline, reserving three slots ahead (as its claim
    # loop does: the claims are made before the slots' bookings answer)
    shared, book, clocks = pacer()
    book.next["+1"] = clocks.wall() + 1.0
    deadline = clocks.mono + 9.5
    reserved = [shared.reserve("+1", deadline=deadline) for _ in range(3)]
    sent = refused = 0
    while reserved:
        slot = reserved.pop(0)
        assert slot is not None
        if shared.wait_until("+1", slot):
            sent += 1
        else:
            refused += 1
        if (more := shared.reserve("+1", deadline=deadline)) is not None:
            reserved.append(more)
    # THEN every slot it reserved got its shared one (the book's, a second later than
    # the local one, up to 109 s): none was claimed only to be handed back
    assert (sent, refused) == (9, 0)
    assert book.next["+1"] - OFFSET == pytest.approx(110.0)


def test_a_run_on_the_books_pace_keeps_its_slots_up_to_one_lead_before_the_deadline() -> None:
    # GIVEN a run at 1 msg/s alone on the book, 10 s from its deadline, booking each
    # slot before reserving the next
    shared, _, clocks = pacer()
    deadline = clocks.mono + 10
    slots = []
    while (slot := shared.reserve("+1", deadline=deadline)) is not None:
        assert shared.wait_until("+1", slot)
        slots.append(slot)
    # THEN after the first booking (one first lead late) its shared slots fell on its
    # local ones, with no lag: its last local slot is 109.1 s, within a second of the
    # deadline (only the least lead is kept free)
    assert slots[1] == pytest.approx(101.1)
    assert slots[-1] == pytest.approx(109.1)


def test_a_run_ahead_of_the_book_reserves_no_more_than_one_lead_before_the_deadline() -> None:
    # GIVEN a run whose second shared slot came 10 ms before its local one (the sender's
    # book was busy up to just then): a negative lag
    shared, book, clocks = pacer()
    first = shared.reserve("+1", deadline=clocks.mono + 30)
    assert first is not None and shared.wait_until("+1", first)
    second = shared.reserve("+1", deadline=clocks.mono + 30)
    assert second == pytest.approx(101.1)
    book.next["+1"] = OFFSET + 101.09
    assert shared.wait_until("+1", second)
    assert clocks.mono == pytest.approx(101.09)
    # THEN its next slot (102.1 s) is reserved only with one lead free before the
    # deadline, as with no lag: a book behind the run gains it nothing
    assert shared.reserve("+1", deadline=102.1 + BOOK_AHEAD_MIN - 0.005) is None
    assert shared.reserve("+1", deadline=102.1 + BOOK_AHEAD_MIN) == pytest.approx(102.1)


# -- a run's last slots, booked before it lets go of the lease -----------------------------


def two_runs() -> tuple[SharedPacer, SharedPacer, Book, Clocks]:
    """Two runs at 1 msg/s on one book and one clock: the one ending, and its successor."""
    clocks = Clocks()
    book = Book(clocks, 1.0)
    return pacer_on(book), pacer_on(book), book, clocks


def test_a_run_ending_with_slots_reserved_keeps_them_when_the_next_run_books() -> None:
    # GIVEN a run 10 s from its deadline with three local slots reserved (100, 101 and
    # 102 s: three claims waiting for their slots) when it stops claiming
    ending, following, book, clocks = two_runs()
    deadline = clocks.mono + 10
    slots = [ending.reserve("+1", deadline=deadline) for _ in range(3)]
    # WHEN it books them before letting go, and the next run then books its first slot
    ending.book_reserved()
    taken = following.reserve("+1", deadline=clocks.mono + 60)
    assert taken is not None and following.wait_until("+1", taken)
    # THEN they were asked for at their local slots (the first one lead on: an answer
    # takes that long), the next run's slot comes after the three (103.1 s), and each of
    # the three claims sends in its own slot, booked once
    assert [e - OFFSET for e in book.earliest[:3]] == pytest.approx([100.1, 101.0, 102.0])
    assert clocks.mono - 100 == pytest.approx(3.1)
    clocks.mono = 100.0
    for slot, sends_at in zip(slots, (100.1, 101.1, 102.1), strict=True):
        assert slot is not None and ending.wait_until("+1", slot)
        assert clocks.mono == pytest.approx(sends_at)
    assert len(book.calls) == 4


def test_without_booking_them_the_ending_runs_last_claims_are_refused() -> None:
    # The control: the next run books before the ending run's last workers do, and the
    # ending run's last slot is past its deadline (its claim goes back unsent).
    ending, following, _, clocks = two_runs()
    deadline = clocks.mono + 2.5
    slots = [ending.reserve("+1", deadline=deadline) for _ in range(3)]
    for _ in range(2):
        taken = following.reserve("+1", deadline=clocks.mono + 60)
        assert taken is not None and following.wait_until("+1", taken)
    clocks.mono = 100.0
    assert [ending.wait_until("+1", s) for s in slots if s is not None] == [True, False, False]


def test_reserved_slots_are_booked_soonest_first_across_senders() -> None:
    # GIVEN two senders with two reserved slots each, "+2" reserved after "+1" (so
    # "+2"'s first slot comes before "+1"'s second), and a book taking 0.3 s per answer
    ending, _, book, clocks = two_runs()
    book.trip = 0.3
    deadline = clocks.mono + 10
    for key in ("+1", "+1", "+2", "+2"):
        assert ending.reserve(key, deadline=deadline) is not None
    # WHEN the run books them before letting go
    ending.book_reserved()
    # THEN they were booked in the order their slots come, each sender's in its order
    # (by sender, "+2"'s first slot would be asked for 0.6 s after it started)
    assert [number for number, _ in book.calls] == ["+1", "+2", "+1", "+2"]


def test_a_dropped_slot_is_not_booked() -> None:
    # GIVEN two reserved slots, the first of which lost its claim
    shared, book, clocks = pacer()
    first = shared.reserve("+1", deadline=clocks.mono + 10)
    second = shared.reserve("+1", deadline=clocks.mono + 10)
    assert first is not None and second is not None
    shared.drop("+1", first)
    # WHEN the run books its reserved slots
    shared.book_reserved()
    # THEN only the second was booked, at its local slot: no shared slot goes unused
    assert len(book.calls) == 1
    assert [t - OFFSET for t in book.earliest if t is not None] == [pytest.approx(second)]
    assert shared.wait_until("+1", second)
    assert len(book.calls) == 1


def test_booking_reserved_slots_twice_books_each_once() -> None:
    shared, book, clocks = pacer()
    slot = shared.reserve("+1", deadline=clocks.mono + 10)
    shared.book_reserved()
    shared.book_reserved()
    assert slot is not None and shared.wait_until("+1", slot)
    assert len(book.calls) == 1


class FailingBook(Book):
    """A book whose next ``failures`` bookings raise (the store is unavailable)."""

    def __init__(self, clocks: Clocks, interval: float, failures: int) -> None:
        super().__init__(clocks, interval)
        self.failures = failures

    def book(
        self, number: str, deadline: float, earliest: float | None = None
    ) -> tuple[float | None, float]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("store unavailable")
        return super().book(number, deadline, earliest)


class SlowBook(Book):
    """A book whose answers wait for ``answer``; ``waiting`` is set once one is asked."""

    def __init__(self, clocks: Clocks, interval: float) -> None:
        super().__init__(clocks, interval)
        self.waiting = threading.Event()
        self.answer = threading.Event()

    def book(
        self, number: str, deadline: float, earliest: float | None = None
    ) -> tuple[float | None, float]:
        self.waiting.set()
        assert self.answer.wait(5)
        return super().book(number, deadline, earliest)


def test_when_booking_the_reserved_slots_fails_each_worker_books_its_own() -> None:
    clocks = Clocks()
    book = FailingBook(clocks, 1.0, failures=1)
    shared = pacer_on(book)
    slots = [shared.reserve("+1", deadline=clocks.mono + 10) for _ in range(2)]
    with pytest.raises(ConnectionError):
        shared.book_reserved()
    # THEN neither slot is left waiting for an answer that never comes
    assert all(s is not None and shared.wait_until("+1", s) for s in slots)
    assert len(book.calls) == 2


def test_a_worker_books_its_shared_slot_one_lead_before_its_local_slot() -> None:
    # GIVEN a run whose second local slot is a second away
    shared, book, clocks = pacer()
    first = shared.reserve("+1", deadline=clocks.mono + 10)
    second = shared.reserve("+1", deadline=clocks.mono + 10)
    assert first is not None and second == pytest.approx(101.0)
    clocks.sleep(0.2)
    # WHEN its worker waits for it
    assert shared.wait_until("+1", second)
    # THEN it asked the book only one lead before the slot, not at once (slots booked
    # far ahead are lost to the sender when the send does not happen)
    assert [t - OFFSET for t in book.asked] == [pytest.approx(101.0 - BOOK_AHEAD_FIRST)]
    assert [t - OFFSET for t in book.earliest if t is not None] == [pytest.approx(101.0)]


def test_dropping_a_slot_never_reserved_changes_nothing() -> None:
    shared, book, clocks = pacer()
    slot = shared.reserve("+1", deadline=clocks.mono + 10)
    shared.drop("+1", 12345.0)
    shared.drop("+2", 100.0)
    shared.book_reserved()
    assert slot is not None and shared.wait_until("+1", slot)
    assert len(book.calls) == 1


@pytest.mark.parametrize("first", ["run", "worker"])
def test_a_slot_is_booked_once_when_its_worker_and_the_run_come_for_it_together(
    first: str,
) -> None:
    # GIVEN a slow book, and a reserved slot that the run (booking its reserved slots
    # before it lets go) and the slot's worker both come to book, ``first`` first
    clocks = Clocks()
    book = SlowBook(clocks, 1.0)
    shared = pacer_on(book)
    slot = shared.reserve("+1", deadline=clocks.mono + 10)
    assert slot is not None
    result: list[bool] = []
    worker = threading.Thread(target=lambda: result.append(shared.wait_until("+1", slot)))
    run = threading.Thread(target=shared.book_reserved)
    one, other = (run, worker) if first == "run" else (worker, run)
    one.start()
    assert book.waiting.wait(5)
    other.start()
    # (the run asks nothing and ends at once: a long timeout costs nothing, and a busy
    # machine gets its time; the worker waits for the answer whatever the timeout)
    other.join(5.0 if other is run else 0.2)
    # THEN the second asks the book nothing: a worker waits for the run's answer, and
    # the run leaves a slot its worker is booking to the worker
    assert other.is_alive() == (other is worker)
    book.answer.set()
    one.join(5)
    other.join(5)
    assert result == [True]
    assert len(book.calls) == 1
