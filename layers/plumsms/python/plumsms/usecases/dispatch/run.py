"""One dispatcher run: its tuning, its report, and the state its worker threads share."""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from plumsms.domain.errors import PlumNotConfigured
from plumsms.domain.plum import PlumGateway
from plumsms.usecases.ports import Pacer

MIN_STOP_MARGIN_SECONDS = 2.0
NOT_CONFIGURED = "not_configured"
COALESCED = "coalesced"
"""A run that found another one working and left it a request for one more pass."""


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
    hand_over_lead: timedelta = timedelta(seconds=5)
    """A run with messages still due starts the next run this long before it stops
    claiming (a cold start included), and the next run waits for the lease instead of
    coalescing: it takes over as soon as this one lets go, while this one's last booked
    sends still leave, so a campaign's senders see no gap. A run with less claiming time
    uses half of it."""

    def page(self) -> int:
        """The number of due messages to read per Query."""
        if self.page_size is not None:
            return self.page_size
        return min(500, max(4 * self.concurrency, math.ceil(self.rate_per_second * 60)))

    def margin_for(self, seconds_left: float) -> float:
        """The stop margin (seconds) of an invocation starting with ``seconds_left``."""
        floor = min(MIN_STOP_MARGIN_SECONDS, self.stop_margin.total_seconds())
        return min(self.stop_margin.total_seconds(), max(seconds_left / 3, floor))

    def lead_for(self, claim_seconds: float) -> float:
        """The hand-over lead (seconds) of a run with ``claim_seconds`` to claim."""
        return min(self.hand_over_lead.total_seconds(), max(claim_seconds, 0.0) / 2)

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
    or the lease could not be read), ``coalesced`` (another run holds the lease and
    will make one more pass for this one) or None."""
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
class Run:
    """The state of one run, shared by its worker threads."""

    plum_provider: Callable[[], PlumGateway]
    remaining_ms: Callable[[], int]
    limiter: Pacer
    report: DispatchReport
    margin_seconds: float
    monotonic: Callable[[], float]
    hand_over_lead: float = 0.0
    """Seconds before it stops claiming at which the run starts its successor."""
    halted: threading.Event = field(default_factory=threading.Event)
    hand_over_tried: bool = False
    successor_started: bool = False
    """The next run was started (it waits for the lease: it serves any pass requested)."""
    claims_in_pass: int = 0
    known_senders: frozenset[str] = frozenset()
    """Senders the run before found due messages for (left in the lease)."""
    found_senders: set[str] = field(default_factory=set)
    """Senders this run found due messages for (left in the lease for the next run)."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    _plum: PlumGateway | None = None
    _claiming: int = 0
    _claims_settled: threading.Condition = field(default_factory=threading.Condition)

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
        """Seconds until the run must stop claiming."""
        return self.remaining_ms() / 1000.0 - self.margin_seconds

    def may_claim(self) -> bool:
        """True while the run is neither halted nor out of time (then ``stopped`` says so)."""
        if self.halted.is_set():
            return False
        if self.seconds_left() <= 0:
            self.report.stopped = self.report.stopped or "time"
            return False
        return True

    def deadline(self) -> float:
        """The monotonic time past which no send slot is booked."""
        return self.monotonic() + self.seconds_left()

    def halt(self, reason: str) -> None:
        """Stop claiming for ``reason`` (the claims already made finish)."""
        self.halted.set()
        self.report.stopped = reason

    def claimed(self) -> None:
        """Count a claim made in the current pass over the due messages."""
        with self.lock:
            self.claims_in_pass += 1

    def claim_started(self) -> None:
        """A worker was handed a message to claim (the claim request is not yet answered)."""
        with self._claims_settled:
            self._claiming += 1

    def claim_settled(self) -> None:
        """That claim was answered (made, lost or failed)."""
        with self._claims_settled:
            self._claiming -= 1
            if self._claiming == 0:
                self._claims_settled.notify_all()

    def wait_for_claims(self, timeout: float) -> bool:
        """Wait until every claim handed to a worker was answered; False after ``timeout``."""
        with self._claims_settled:
            return self._claims_settled.wait_for(lambda: self._claiming == 0, timeout)

    def take_pass_claims(self) -> int:
        """The claims made in the pass now ending (and start counting the next one)."""
        with self.lock:
            count, self.claims_in_pass = self.claims_in_pass, 0
            return count
