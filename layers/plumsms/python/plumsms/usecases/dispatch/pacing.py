"""Pacing: each sender's sends spread at its rate, within one run and across all runs.

Times here are seconds (monotonic within a run, Unix time in the shared book): slots are
arithmetic, and a float is the clock's own unit.

``RateLimiter`` paces the sends of one dispatcher run (its threads share it): slots are
booked in due order, so each sender's sends leave evenly spaced, and no slot is booked
past the run's deadline. Several runs at once (the minute tick, send-now invokes,
retries) each have their own, so ``SharedPacer`` adds a slot book every run shares
(``SlotBook``, a DynamoDB item per sender): right before a send, after the claim, the
worker books the sender's next shared slot and sleeps until it. The local limiter
then learns how far the shared book reaches, so a run does not claim messages it has
no slot for. The booking goes out a little ahead of the local slot (half again the
slowest of the book's recent answers), so that its answer is back before the slot
starts: booked at the last moment, a slot would already have passed when the answer
came, and the send would leave late by the round trip, close behind the next one. A
slot that passed by more than half an interval all the same (a stalled store) is left
unused, and another booked. See docs/sending.md, "Rate limit".
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plumsms.usecases.ports import SlotBook


class RateLimiter:
    """At most ``per_second`` slots per key, paced evenly, shared by threads.

    ``reserve`` books the key's next free slot (``1/per_second`` after the previous one)
    and says when it starts; ``wait_until`` sleeps until then, and also until one
    interval after the key's previous start, so a send that started late (its claim
    took long) never brings the next one closer than the interval. A slot that would
    start after ``deadline`` is not booked.
    """

    def __init__(
        self,
        per_second: float,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self._interval = 1.0 / per_second
        self._monotonic = monotonic
        self._sleep = sleep
        self._next: dict[str, float] = {}
        self._started: dict[str, float] = {}
        self._lock = threading.Lock()

    @property
    def interval(self) -> float:
        """Seconds between two slots of one key."""
        return self._interval

    def reserve(self, key: str, deadline: float | None = None) -> float | None:
        """Book ``key``'s next slot; its start (monotonic), or None past ``deadline``."""
        with self._lock:
            now = self._monotonic()
            slot = max(now, self._next.get(key, now))
            if deadline is not None and slot > deadline:
                return None
            self._next[key] = slot + self._interval
            return slot

    def defer(self, key: str, start: float) -> None:
        """Book no slot of ``key`` before ``start`` (others have booked up to there)."""
        with self._lock:
            self._next[key] = max(self._next.get(key, start), start)

    def drop(self, key: str, slot: float) -> None:
        """Nothing to do: a local slot left unused only leaves a gap in this run."""

    def book_reserved(self) -> None:
        """Nothing to do: there is no shared book."""

    def missed(self) -> int:
        """None: a local slot is used however late (the next one keeps its interval)."""
        return 0

    def wait_until(self, key: str, slot: float) -> bool:
        """Sleep until ``slot``, and at least one interval after ``key``'s last start."""
        with self._lock:
            now = self._monotonic()
            start = max(slot, now, self._started.get(key, -math.inf) + self._interval)
            self._started[key] = start
            delay = start - now
        if delay > 0:
            self._sleep(delay)
        return True


BOOK_AHEAD_FIRST = 0.1
"""Seconds a shared slot is booked ahead of its send before any answer was timed."""
BOOK_AHEAD_MIN = 0.02
"""...at the least, however fast the book answers,"""
BOOK_AHEAD_MAX = 1.0
"""...and at the most (a book answering slower than this is failing, not slow)."""
ROUND_TRIPS_KEPT = 32
"""The book's answers the lead is taken from: the slowest of the latest ones."""
LATE_BOOKINGS = 3
"""Shared slots a send books at most when each had passed before the book answered."""


class BookingLead:
    """How far ahead of a send its shared slot is booked: half again the slowest of the
    book's latest answers, within bounds. One per execution environment, so that a run
    starts with what the runs before it learnt (a hand-over's first bookings are the
    ones that follow another run's sends most closely)."""

    def __init__(self) -> None:
        self._trips: deque[float] = deque(maxlen=ROUND_TRIPS_KEPT)
        self._lock = threading.Lock()

    def seconds(self) -> float:
        """The lead for the next booking."""
        with self._lock:
            if not self._trips:
                return BOOK_AHEAD_FIRST
            slowest = max(self._trips)
        return min(BOOK_AHEAD_MAX, max(BOOK_AHEAD_MIN, 1.5 * slowest))

    def record(self, seconds: float) -> None:
        """Time one answer of the book."""
        with self._lock:
            self._trips.append(seconds)


class _Booking:
    """The shared slot of one reserved local slot: not yet asked for, being asked for (by
    its worker or by ``book_reserved``), or booked (``shared`` None: the book refused)."""

    __slots__ = ("asked", "booked", "shared")

    def __init__(self) -> None:
        self.asked = False
        self.booked = False
        self.shared: float | None = None


class SharedPacer:
    """A run's ``RateLimiter`` in front of the slot book all runs share."""

    def __init__(
        self,
        local: RateLimiter,
        book: SlotBook,
        *,
        lead: BookingLead | None = None,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._local = local
        self._book = book
        self.lead = lead if lead is not None else BookingLead()
        self._wall = wall
        self._monotonic = monotonic
        self._sleep = sleep
        self._deadline = math.inf
        self._lag: dict[str, float] = {}
        """Per sender, how far the latest shared slot fell after its local one."""
        self._bookings: dict[tuple[str, float], _Booking] = {}
        """Reserved local slots whose worker has not yet used their shared slot."""
        self._booked = threading.Condition()
        self._missed = 0

    def reserve(self, key: str, deadline: float | None = None) -> float | None:
        """The local slot, booked in due order; remembers the run's deadline.

        No local slot within one booking lead of the deadline, nor within the sender's
        lag behind the book: its shared slot would start past the deadline, and the
        claim made for it would go back unsent (two writes for nothing, and the message
        loses its place)."""
        if deadline is None:
            slot = self._local.reserve(key)
        else:
            self._deadline = deadline
            slot = self._local.reserve(
                key, deadline - self.lead.seconds() - self._lag.get(key, 0.0)
            )
        if slot is not None:
            with self._booked:
                self._bookings[key, slot] = _Booking()
        return slot

    def drop(self, key: str, slot: float) -> None:
        """Forget a reserved local slot that will not be used (its claim was lost), so that
        ``book_reserved`` books no shared slot for it (a gap in the sender's pace)."""
        with self._booked:
            booking = self._bookings.get((key, slot))
            if booking is not None and not booking.asked:
                del self._bookings[key, slot]

    def book_reserved(self) -> None:
        """Book now the shared slot of every reserved local slot not yet booked, soonest
        first: called when the run stops claiming, before it lets go of the lease.

        A worker books its shared slot only just before its local slot, so a next run
        taking over in the meantime booked the slots this run's last claims were counting
        on, and those claims went back unsent (two writes each, and a gap in the sender's
        pace until the next run found them again). Store errors propagate; the slots not
        booked then are booked by their workers as before.
        """
        with self._booked:
            # Soonest first (so each sender's in its order): a slot booked after its
            # start would be moved back behind the answer.
            waiting = deque(
                sorted(
                    (k for k, b in self._bookings.items() if not b.asked),
                    key=lambda key_slot: key_slot[1],
                )
            )
            for key_slot in waiting:
                self._bookings[key_slot].asked = True
        try:
            while waiting:
                key, slot = waiting[0]
                self._settle(key, slot, self._ask(key, slot))
                waiting.popleft()
        except BaseException:
            with self._booked:
                # Their workers wait for these answers: they ask themselves instead.
                for key_slot in waiting:
                    self._bookings[key_slot].asked = False
                self._booked.notify_all()
            raise

    def wait_until(self, key: str, slot: float) -> bool:
        """Wait until just before the local slot, book the shared one (unless
        ``book_reserved`` has), and wait for it.

        False (nothing to send) when the shared book has no slot before the deadline, or
        when each of ``LATE_BOOKINGS`` slots had passed by the time it was booked.
        """
        # The local limiter's own guard (an interval after the last start) is not used:
        # the book spaces the slots, and a send that left late must not push every later
        # one of this run behind the book (the next run's would then follow them closely).
        early = slot - self.lead.seconds() - self._monotonic()
        if early > 0:
            self._sleep(early)
        with self._booked:
            booking = self._bookings.setdefault((key, slot), _Booking())
            # Being booked by ``book_reserved``: its answer is due any moment.
            self._booked.wait_for(lambda: booking.booked or not booking.asked)
            mine = not booking.booked
            booking.asked = True
        if mine:
            self._settle(key, slot, self._ask(key, slot))
        with self._booked:
            shared = self._bookings.pop((key, slot)).shared
        booked = 1
        # A slot that passed more than half an interval ago (the book answered late: a
        # slow store, a starved thread) is not used: sent now, the message would leave
        # closer than that to the sender's next slot, which another worker may be using
        # (a burst the carrier sees). It stays a gap, since the rate is a ceiling.
        while shared is not None and self._wall() - shared > self._local.interval / 2:
            with self._booked:
                self._missed += 1
            if booked == LATE_BOOKINGS:
                return False
            shared, next_free, offset = self._ask(key, slot)
            self._learn(key, slot, shared, next_free, offset)
            booked += 1
        if shared is None:
            return False
        delay = shared - self._wall()
        if delay > 0:
            self._sleep(delay)
        return True

    def missed(self) -> int:
        """Shared slots booked and not used, because each had passed (by more than half
        an interval) when the book's answer came back."""
        with self._booked:
            return self._missed

    def _ask(self, key: str, slot: float) -> tuple[float | None, float, float]:
        """Ask the book for ``key``'s shared slot for local ``slot``: (shared, next free,
        the wall-clock offset of the monotonic clock)."""
        offset = self._wall() - self._monotonic()
        deadline = self._deadline + offset if math.isfinite(self._deadline) else math.inf
        asked = self._wall()
        # Not before the local slot (booked ahead by ``book_reserved``), nor before the
        # answer can be back (booked late by a worker that woke late).
        shared, next_free = self._book.book(
            key,
            deadline if math.isfinite(deadline) else 1e12,
            earliest=max(asked + self.lead.seconds(), slot + offset),
        )
        self.lead.record(self._wall() - asked)
        return shared, next_free, offset

    def _settle(self, key: str, slot: float, answer: tuple[float | None, float, float]) -> None:
        """Keep the book's answer for ``slot``'s worker, and learn from it."""
        shared, next_free, offset = answer
        self._learn(key, slot, shared, next_free, offset)
        with self._booked:
            booking = self._bookings.setdefault((key, slot), _Booking())
            booking.shared, booking.booked = shared, True
            self._booked.notify_all()

    def _learn(
        self, key: str, slot: float, shared: float | None, next_free: float, offset: float
    ) -> None:
        """Follow the book: other runs' bookings push this run's own schedule back."""
        self._local.defer(key, next_free - offset)
        if shared is not None:
            # A run that took over while another's sends were booked ahead keeps that lag
            # to its end: its later local slots were reserved before this answer (in due
            # order, a few per sender ahead), so deferring moves none of them.
            self._lag[key] = max(0.0, shared - offset - slot)
