"""The due messages of one pass, queued per sender and handed out one sender at a time.

A page of due messages rarely holds the same number from each sender. Taken page by
page, a sender with few messages on the page ran dry while the run still worked through
the others' (each waiting for its slot), and sent nothing until the next page was read:
a gap of seconds in its rate. Worse, a run taking over from another finds the head of
the due list full of the senders its predecessor had fallen behind on, and a sender it
had served furthest is on no page read so far: it idled until some other sender ran
dry. The feed keeps ``cap`` messages read ahead (refilling as soon as fewer are held)
and hands out turns: one message from each sender with any queued, in due order within
each sender.

At equal rates the senders' places in the due list drift apart as a campaign goes on
(in a list that mixes ``k`` senders at random, a sender's ``n``-th message lies about
``k n ± k √n`` places down), so a sender served on pace can find its next message past
the messages held: it idles until the reading reaches it, about a second per 40 places
at 40 msg/s. So while a sender seen in this pass has nothing queued, the feed reads on
past ``cap``, up to ``reach`` messages held, and at most ``cap`` more between two turns:
the senders with messages queued take their turns meanwhile (a sender with nothing due
any more would otherwise hold every turn until the reach was read).

A run that takes over has read nothing yet: a sender its predecessor served on pace
whose next message lies past the first pages was on no page read so far, so no reading
on was due for it, and it idled until the reading reached it (seconds, once the places
had drifted apart). So a feed also starts from the senders the run before found messages
for (``known``, left in the lease): until each has a message queued, the feed reads on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime

from plumsms.domain.sending import DueCursor, DueRef
from plumsms.usecases.ports import DispatchOutbox


class DueFeed:
    """Pages of ``Due`` messages, queued per sender for one pass over them."""

    def __init__(
        self,
        outbox: DispatchOutbox,
        clock: Callable[[], datetime],
        page: int,
        cap: int,
        reach: int | None = None,
        *,
        known: Iterable[str] = (),
        found: set[str] | None = None,
    ) -> None:
        self._outbox = outbox
        self._clock = clock
        self._page = page
        self.cap = max(cap, page)
        """Messages held read ahead (more only while a sender has none queued)."""
        self._reach = self.cap if reach is None else max(reach, self.cap)
        self._queues: dict[str, deque[DueRef]] = {sender: deque() for sender in known}
        self.found: set[str] = set() if found is None else found
        """Senders this feed read messages for (added to the set given, if any: the run's
        record across its passes)."""
        self.blocked: set[str] = set()
        """Recipients on the pages read so far who opted out (sent nothing: suppressed)."""
        self._cursor: DueCursor | None = None
        self._read_on = 0
        """Messages read past ``cap`` since the last turn."""
        self.exhausted = False
        """True once the last page of this pass has been read."""

    def wants_page(self) -> bool:
        """True when another page should be read now: pages are left, and fewer than
        ``cap`` messages are held, or fewer than ``reach`` while a sender seen in this
        pass (or ``known``) has none queued and fewer than ``cap`` were read on since
        the last turn."""
        if self.exhausted:
            return False
        held = self.left()
        if held < self.cap:
            return True
        return held < self._reach and self._read_on < self.cap and self.dry()

    def dry(self) -> bool:
        """True when a sender seen in this pass (or ``known``) has nothing queued (its
        next message, if any, lies further down the due list)."""
        return any(not q for q in self._queues.values())

    def read_page(self) -> None:
        """Read the next page and its opt-outs (store errors propagate)."""
        reading_on = self.left() >= self.cap
        page = self._outbox.due(self._clock(), self._page, self._cursor)
        if reading_on:
            self._read_on += len(page.items)
        if page.items:
            self.blocked |= self._outbox.opted_out({r.to for r in page.items})
        for ref in page.items:
            self._queues.setdefault(ref.from_, deque()).append(ref)
            self.found.add(ref.from_)
        self._cursor = page.next_position
        self.exhausted = self._cursor is None

    def turn(self, skip: set[str]) -> list[DueRef]:
        """The next message of each sender not in ``skip`` that has one queued."""
        self._read_on = 0
        return [q.popleft() for sender, q in self._queues.items() if sender not in skip and q]

    def outlasts(self, per_sender: float) -> bool:
        """True when messages will still be due after each sender sends ``per_sender``
        more: pages are left to read, or a sender has more than that queued."""
        if self._cursor is None and not self.exhausted:
            return False  # nothing read yet: nothing known
        return not self.exhausted or any(len(q) > per_sender for q in self._queues.values())

    def left(self) -> int:
        """Messages still queued (for any sender)."""
        return sum(len(q) for q in self._queues.values())
