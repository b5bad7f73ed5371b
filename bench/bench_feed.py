"""The due feed across hand-overs: how long a sender waits for its next message to be read.

A simulation of the campaign's shape (issue 12, item 5) with the real ``DueFeed`` and no
store, clock or threads: 20 senders' messages in one due list in random order (as the
campaign's ids order them), every sender sending one message per step (one interval
at its rate) whenever the feed holds one, and a new run (a new feed over what is left)
every ``RUN_STEPS`` steps, as the 100,000-message campaign handed over about every 16 s.
It isolates the feed's part in a sender's pauses from the store's and the pacing's.

Figures: the longest pause of any sender, in steps beyond the interval, for runs that
start from the senders the run before found (what the lease now carries), for runs that
start knowing nothing (before), and for one run that never hands over (the baseline:
the feed's reading on alone); and the pages read per run, knowing against not knowing
(the reading's cost). Full run: 20 x 5,000 messages; ``--quick``: 20 x 500.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime

from bench.harness import Figure
from plumsms.domain.sending import DueCursor, DuePage, DueRef
from plumsms.usecases.dispatch.feed import DueFeed
from plumsms.usecases.dispatch.loop import FEED_PAGES, FEED_REACH

SENDERS = 20
PAGE = 256
"""The campaign's page (``DispatchConfig.page()`` at 64 workers)."""
RUN_STEPS = 32
"""Steps per run: 16 s at 2 msg/s, the campaign's measured hand-over interval."""
SEED = 20261205
DUE_AT = datetime(2026, 12, 5, tzinfo=UTC)


class ListOutbox:
    """A due list in memory: ``due`` pages over the messages not yet sent, in order."""

    def __init__(self, senders: list[str]) -> None:
        self.senders = senders
        self.sent = bytearray(len(senders))
        self.head = 0
        """Every message before it is sent."""
        self.pages = 0

    def due(self, now: datetime, limit: int, after: DueCursor | None = None) -> DuePage:
        """The next ``limit`` unsent messages after ``after``."""
        self.pages += 1
        while self.head < len(self.sent) and self.sent[self.head]:
            self.head += 1
        index = self.head if after is None else int(after.message_id) + 1
        items: list[DueRef] = []
        while index < len(self.sent) and len(items) < limit:
            if not self.sent[index]:
                items.append(DueRef(str(index), "+12125550100", self.senders[index], DUE_AT))
            index += 1
        more = index < len(self.sent) and items
        return DuePage(items, DueCursor(DUE_AT, items[-1].message_id) if more else None)

    def opted_out(self, numbers: object) -> set[str]:
        """Nobody opted out."""
        return set()


@dataclass
class Outcome:
    """What one simulated campaign measured."""

    longest_pause: int
    """Steps a sender went without sending beyond the one interval, at most."""
    runs: int
    pages: int


def campaign(per_sender: int, run_steps: int | None, *, known: bool) -> Outcome:
    """Send the whole due list; a new run every ``run_steps`` steps (None: one run)."""
    numbers = [f"+1243567{8910 + n:04d}" for n in range(SENDERS)]
    order = [numbers[i % SENDERS] for i in range(SENDERS * per_sender)]
    random.Random(SEED).shuffle(order)
    outbox = ListOutbox(order)
    last = dict.fromkeys(numbers, -1)
    longest, runs, step, left = 0, 0, 0, len(order)
    found: set[str] = set()
    while left:
        runs += 1
        before, found = found, set()
        feed = DueFeed(
            outbox,  # type: ignore[arg-type]  # the part of DispatchOutbox the feed uses
            lambda: DUE_AT,
            PAGE,
            FEED_PAGES * PAGE,
            FEED_REACH,
            known=before if known else (),
            found=found,
        )
        for _ in range(run_steps or len(order)):
            while feed.wants_page():
                feed.read_page()
            for ref in feed.turn(set()):
                outbox.sent[int(ref.message_id)] = 1
                left -= 1
                longest = max(longest, step - last[ref.from_] - 1)
                last[ref.from_] = step
            step += 1
            if not left:
                break
    return Outcome(longest, runs, outbox.pages)


def run(quick: bool) -> list[Figure]:
    """The three campaigns' figures."""
    per_sender = 500 if quick else 5000
    knowing = campaign(per_sender, RUN_STEPS, known=True)
    blind = campaign(per_sender, RUN_STEPS, known=False)
    single = campaign(per_sender, None, known=False)
    shape = f"{SENDERS} x {per_sender} messages, a run every {RUN_STEPS} steps"
    return [
        Figure(
            "longest pause of a sender, runs knowing their predecessor's senders",
            knowing.longest_pause,
            "steps",
            "0 (as the baseline)",
            knowing.longest_pause <= single.longest_pause,
            f"{shape}, {knowing.runs} runs",
        ),
        Figure(
            "longest pause of a sender, runs knowing nothing (before)",
            blind.longest_pause,
            "steps",
            note=f"{shape}; a step is one interval (0.5 s at 2 msg/s)",
        ),
        Figure(
            "longest pause of a sender, one run (baseline)",
            single.longest_pause,
            "steps",
            note="no hand-over: the feed's reading on alone",
        ),
        Figure(
            "pages read per run, knowing / knowing nothing",
            knowing.pages / knowing.runs / (blind.pages / blind.runs),
            "x",
            note=f"{knowing.pages / knowing.runs:.1f} / {blind.pages / blind.runs:.1f} pages "
            f"of {PAGE}",
        ),
    ]
