"""The dispatcher's decisions with an in-memory outbox and a scripted Plum (no sockets)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plumsms.domain.errors import PlumNotConfigured, StoreUnavailable
from plumsms.domain.models import Message, Status
from plumsms.domain.plum import (
    InvalidRecipient,
    PlumError,
    PlumRejected,
    PlumSmsResource,
    PlumUnavailable,
    Unauthorized,
    UnsubscribedRecipient,
)
from plumsms.domain.sending import Claim, DueCursor, DuePage, DueRef, Schedule
from plumsms.domain.status import StatusChange
from plumsms.usecases.dispatch import DispatchConfig, Dispatcher, RateLimiter
from tests.factories import outbound_message
from tests.fakes import NOW, FakeOutbox, FakeTime, ScriptedPlum

SENDER = "+12435678910"


def message(index: int, to: str | None = None) -> Message:
    return outbound_message(
        NOW,
        message_id=f"{index:032x}",
        to=to or f"+1212555{index:04d}",
        from_=SENDER,
        body=f"Message {index}",
    )


def dispatcher(
    outbox: FakeOutbox,
    plum: ScriptedPlum,
    clock: Callable[[], datetime] = lambda: NOW,
    **config: Any,
) -> Dispatcher:
    settings_ = {"rate_per_second": 1000.0, "concurrency": 4} | config
    return Dispatcher(
        outbox=outbox,
        plum=lambda: plum,
        result_url=lambda ref: f"https://sms.example.test/plum/status?key=k&ref={ref}",
        config=DispatchConfig(**settings_),
        clock=clock,
        draw=lambda: 1.0,
    )


def plenty() -> int:
    return 600_000


# -- sending and recording -------------------------------------------------------------


def test_due_messages_are_sent_once_with_their_result_url_and_recorded() -> None:
    outbox, plum = FakeOutbox(), ScriptedPlum()
    for i in range(10):
        outbox.add(message(i))
    report = dispatcher(outbox, plum).run(plenty)
    assert report["sent"] == 10
    assert sorted(q[0] for q in plum.queued) == sorted(message(i).to for i in range(10))
    assert all(
        q[3] and q[3].endswith(f"ref={message(int(q[2].split()[1])).id}") for q in plum.queued
    )
    assert {outbox.status(message(i).id) for i in range(10)} == {Status.QUEUED}
    # Two writes per sent message: the claim and the record.
    assert outbox.writes == 20


def test_messages_not_yet_due_stay() -> None:
    outbox, plum = FakeOutbox(), ScriptedPlum()
    outbox.add(message(1).model_copy(update={"send_at": NOW + timedelta(minutes=1)}))
    assert dispatcher(outbox, plum).run(plenty)["sent"] == 0
    assert plum.queued == []


@pytest.mark.parametrize(
    ("error", "status", "reason"),
    [
        (InvalidRecipient("Invalid 'to' phone number"), Status.FAILED, "Invalid 'to' phone number"),
        (PlumRejected("Error sending sms request"), Status.FAILED, "Error sending sms request"),
    ],
)
def test_permanent_errors_fail_the_message_with_plums_reason(
    error: PlumError, status: str, reason: str
) -> None:
    outbox = FakeOutbox()
    outbox.add(message(1))
    plum = ScriptedPlum({message(1).to: error})
    report = dispatcher(outbox, plum).run(plenty)
    assert report["failed"] == 1
    assert outbox.status(message(1).id) == status
    assert reason in outbox.rows[message(1).id]["error"]


def test_transient_errors_retry_with_growing_backoff_then_fail() -> None:
    outbox = FakeOutbox()
    outbox.add(message(1))
    plum = ScriptedPlum({message(1).to: PlumUnavailable("HTTP 503")})
    now = [NOW]
    run = dispatcher(outbox, plum, clock=lambda: now[0], max_attempts=3)
    delays = []
    for _ in range(3):
        run.run(plenty)
        row = outbox.rows[message(1).id]
        if row["status"] == Status.SCHEDULED:
            delays.append(row["due"] - now[0])
            now[0] = row["due"]
    # THEN two retries (30 s, 60 s with this jitter draw), then failed
    assert delays == [timedelta(seconds=30), timedelta(seconds=60)]
    assert outbox.status(message(1).id) == Status.FAILED
    assert "Plum unavailable" in outbox.rows[message(1).id]["error"]


def test_a_send_that_may_have_reached_plum_is_checked_before_any_resend() -> None:
    outbox = FakeOutbox()
    outbox.add(message(1))
    plum = ScriptedPlum({message(1).to: PlumUnavailable("no answer", maybe_sent=True)})
    now = [NOW]
    run = dispatcher(outbox, plum, clock=lambda: now[0])
    report = run.run(plenty)
    # THEN the claim is kept, to be checked a minute later
    assert report["to_check"] == 1
    row = outbox.rows[message(1).id]
    assert row["status"] == Status.SENDING
    assert row["check_after"] == NOW + timedelta(seconds=60)
    # WHEN Plum's list shows it (by our ref) and the check comes due
    plum.listed = [
        PlumSmsResource(
            sms_message_id="ab" * 16,
            to="12125550001",
            from_="2435678910",
            body="Message 1",
            request_timestamp=int(NOW.timestamp()),
            result_url=f"https://sms.example.test/plum/status?key=k&ref={message(1).id}",
            status="sent",
        )
    ]
    now[0] = NOW + timedelta(seconds=61)
    report = run.run(plenty)
    # THEN it is recorded with Plum's id, never queued again
    assert report["reconciled"] == 1
    assert row["status"] == Status.QUEUED
    assert row["plum_ids"] == ["ab" * 16]
    assert plum.queued == []


def test_a_stale_claim_that_plum_never_got_is_sent_again() -> None:
    outbox, plum = FakeOutbox(), ScriptedPlum()
    outbox.add(message(1))
    row = outbox.rows[message(1).id]
    row.update(status=Status.SENDING, token="dead", claimed_at=NOW, check_after=NOW)
    report = dispatcher(outbox, plum, clock=lambda: NOW + timedelta(minutes=6)).run(plenty)
    assert report["resent"] == 1
    assert report["sent"] == 1
    assert len(plum.queued) == 1


def test_content_matches_must_not_belong_to_another_message() -> None:
    # GIVEN Plum lists a message with the same content but another message's ref
    outbox, plum = FakeOutbox(), ScriptedPlum()
    outbox.add(message(1))
    outbox.rows[message(1).id].update(
        status=Status.SENDING, token="dead", claimed_at=NOW, check_after=NOW
    )
    plum.listed = [
        PlumSmsResource(
            sms_message_id="cd" * 16,
            to="12125550001",
            from_="2435678910",
            body="Message 1",
            request_timestamp=int(NOW.timestamp()),
            result_url="https://sms.example.test/plum/status?key=k&ref=" + "f" * 32,
            status="sent",
        )
    ]
    report = dispatcher(outbox, plum, clock=lambda: NOW + timedelta(minutes=6)).run(plenty)
    # THEN it is not taken for ours: ours is sent
    assert report["reconciled"] == 0
    assert report["resent"] == 1


def test_unsubscribed_at_plum_records_an_opt_out_and_suppresses_pending() -> None:
    number = "+12125559999"
    outbox = FakeOutbox()
    outbox.add(message(1, to=number))
    outbox.add(message(2, to=number).model_copy(update={"send_at": NOW + timedelta(days=1)}))
    plum = ScriptedPlum(
        {number: UnsubscribedRecipient("Attempt to send to unsubscribed recipient")}
    )
    report = dispatcher(outbox, plum).run(plenty)
    assert outbox.status(message(1).id) == Status.FAILED
    assert outbox.status(message(2).id) == Status.SUPPRESSED
    assert outbox.opt_outs == [(number, "PLUM-UNSUBSCRIBED")]
    assert report["suppressed"] == 1


def test_locally_opted_out_recipients_are_suppressed_without_a_claim() -> None:
    outbox, plum = FakeOutbox(), ScriptedPlum()
    outbox.add(message(1))
    outbox.opted.add(message(1).to)
    report = dispatcher(outbox, plum).run(plenty)
    assert report["suppressed"] == 1
    assert outbox.writes == 0  # no claim: the suppress is conditional on "scheduled"
    assert plum.queued == []


def test_refused_credentials_stop_the_run_without_charging_the_messages() -> None:
    outbox = FakeOutbox()
    for i in range(5):
        outbox.add(message(i))
    plum = ScriptedPlum({message(i).to: Unauthorized("Unauthorized access") for i in range(5)})
    report = dispatcher(outbox, plum, concurrency=1).run(plenty)
    assert report.stopped == "unauthorized"
    assert report["claimed"] == 1
    rows = [outbox.rows[message(i).id] for i in range(5)]
    assert all(r["status"] == Status.SCHEDULED and r["attempts"] == 0 for r in rows)


def test_claiming_stops_when_the_invocation_runs_low_on_time() -> None:
    outbox, plum = FakeOutbox(), ScriptedPlum()
    for i in range(50):
        outbox.add(message(i))
    # GIVEN an invocation whose remaining time drops 1 s per look at the clock
    remaining = [60_000]

    def remaining_ms() -> int:
        remaining[0] -= 1000
        return remaining[0]

    report = dispatcher(outbox, plum, concurrency=1).run(remaining_ms)
    # THEN it stopped early, with claims it made all finished and the rest still due
    assert report.stopped == "time"
    assert 0 < report["sent"] < 50
    statuses = [outbox.status(message(i).id) for i in range(50)]
    assert statuses.count(Status.QUEUED) == report["sent"]
    assert statuses.count(Status.SENDING) == 0
    assert statuses.count(Status.SCHEDULED) == 50 - report["sent"]


def test_a_recurring_message_creates_its_next_occurrence_when_sent() -> None:
    from plumsms.domain.scheduling import Recurrence  # noqa: PLC0415

    outbox, plum = FakeOutbox(), ScriptedPlum()
    rule = Recurrence(frequency="daily", count=3, time_zone="UTC")
    schedule = Schedule(recurrence=rule, anchor=NOW.replace(tzinfo=None), series_id="s" * 32)
    outbox.add(message(1), schedule)
    dispatcher(outbox, plum).run(plenty)
    assert len(outbox.occurrences) == 1
    following, following_schedule = outbox.occurrences[0]
    assert following.send_at == NOW + timedelta(days=1)
    assert following_schedule.occurrence == 2
    assert following_schedule.series_id == "s" * 32
    assert following.body == message(1).body
    assert following.id != message(1).id


# -- the rate limiter --------------------------------------------------------------------


def acquire(limiter: RateLimiter, key: str, deadline: float | None = None) -> bool:
    """Book the next slot and wait for it, as a dispatcher worker does; False past
    ``deadline``."""
    slot = limiter.reserve(key, deadline)
    return slot is not None and limiter.wait_until(key, slot)


def test_the_rate_limiter_paces_each_sender_evenly() -> None:
    clock = FakeTime()
    limiter = RateLimiter(10, clock.monotonic, clock.sleep)
    starts = []
    for _ in range(21):
        acquire(limiter, "+1")
        starts.append(clock.now)
    assert starts[-1] - starts[0] == pytest.approx(2.0)
    # Another sender has its own pace.
    before = clock.now
    acquire(limiter, "+2")
    assert clock.now == before


def test_a_send_that_starts_late_pushes_the_next_one_back() -> None:
    # GIVEN two booked slots, 0.0 and 0.1, and a first send that starts late (0.07)
    clock = FakeTime()
    limiter = RateLimiter(10, clock.monotonic, clock.sleep)
    first, second = limiter.reserve("+1"), limiter.reserve("+1")
    assert first == 0.0
    assert second == pytest.approx(0.1)
    clock.now = 0.07
    limiter.wait_until("+1", first)
    started_first = clock.now
    # WHEN the second is due
    assert second is not None
    limiter.wait_until("+1", second)
    # THEN it starts a whole interval after the late first start, not at its slot
    assert clock.now - started_first == pytest.approx(0.1)


def test_the_rate_limiter_refuses_slots_past_the_deadline() -> None:
    clock = FakeTime()
    limiter = RateLimiter(1, clock.monotonic, clock.sleep)
    assert acquire(limiter, "+1", deadline=5)
    assert acquire(limiter, "+1", deadline=5)
    clock.now = 0.5
    assert not acquire(limiter, "+1", deadline=1.5)  # next slot is at 2.0


@given(
    rate=st.floats(min_value=0.5, max_value=50),
    arrivals=st.lists(st.floats(min_value=0, max_value=10), min_size=1, max_size=40),
)
def test_granted_slots_are_never_closer_than_the_interval(
    rate: float, arrivals: list[float]
) -> None:
    # GIVEN callers arriving at any times
    now = [0.0]
    granted: list[float] = []
    limiter = RateLimiter(rate, lambda: now[0], lambda seconds: granted.append(now[0] + seconds))
    for arrival in sorted(arrivals):
        now[0] = arrival
        before = len(granted)
        acquire(limiter, "+1")
        if len(granted) == before:
            granted.append(arrival)  # no wait: the slot was now
    # THEN no two granted slots are closer than 1/rate
    gaps = [b - a for a, b in itertools.pairwise(granted)]
    assert all(gap >= 1 / rate - 1e-9 for gap in gaps)


def test_threads_sharing_the_limiter_hold_the_rate_together() -> None:
    # GIVEN 4 threads taking 5 slots each at 50 per second (real time)
    limiter = RateLimiter(50)
    started = time.monotonic()

    def worker() -> None:
        for _ in range(5):
            acquire(limiter, "+1")

    pool = [threading.Thread(target=worker) for _ in range(4)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    # THEN the 20 slots span at least 19 intervals
    assert time.monotonic() - started >= 19 / 50 - 0.01


# -- no credentials yet, store errors, published changes ---------------------------------


class Credentials:
    """A Plum provider that counts how often the credentials were asked for."""

    def __init__(self, plum: ScriptedPlum | None = None) -> None:
        self.plum = plum
        self.asked = 0

    def __call__(self) -> ScriptedPlum:
        self.asked += 1
        if self.plum is None:
            raise PlumNotConfigured("PLUM_USERNAME and PLUM_PASSWORD must be set")
        return self.plum


class Recorder:
    """A change publisher that keeps what it was given."""

    def __init__(self) -> None:
        self.changes: list[StatusChange] = []
        self.lock = threading.Lock()

    def publish(self, changes: Sequence[StatusChange]) -> int:
        with self.lock:
            self.changes.extend(changes)
        return 0


class FailingOutbox(FakeOutbox):
    """An outbox whose named operation raises the store's error (for some messages)."""

    def __init__(self, operation: str, message_ids: set[str] | None = None) -> None:
        super().__init__()
        self.operation = operation
        self.message_ids = message_ids

    def _fail(self, operation: str, message_id: str | None = None) -> None:
        if operation == self.operation and (
            self.message_ids is None or message_id in self.message_ids
        ):
            raise StoreUnavailable(f"{operation} failed (ProvisionedThroughputExceededException)")

    def claim(
        self, ref: DueRef, token: str, now: datetime, check_after: datetime, result_url: str | None
    ) -> Claim | None:
        self._fail("claim", ref.message_id)
        return super().claim(ref, token, now, check_after, result_url)

    def stale(self, now: datetime, limit: int) -> list[Claim]:
        self._fail("stale")
        return super().stale(now, limit)

    def due(self, now: datetime, limit: int, after: DueCursor | None = None) -> DuePage:
        self._fail("due")
        return super().due(now, limit, after)


def built(
    outbox: FakeOutbox,
    plum: Callable[[], ScriptedPlum],
    publisher: Recorder | None = None,
    clock: Callable[[], datetime] = lambda: NOW,
) -> Dispatcher:
    return Dispatcher(
        outbox=outbox,
        plum=plum,
        result_url=lambda ref: f"https://sms.example.test/plum/status?key=k&ref={ref}",
        config=DispatchConfig(rate_per_second=1000.0, concurrency=4),
        clock=clock,
        draw=lambda: 1.0,
        publisher=publisher,
    )


def test_a_run_with_nothing_due_never_reads_the_credentials() -> None:
    # GIVEN no credentials at all, and nothing due (one message due tomorrow)
    outbox, credentials = FakeOutbox(), Credentials(plum=None)
    outbox.add(message(1).model_copy(update={"send_at": NOW + timedelta(days=1)}))
    # WHEN the dispatcher runs
    report = built(outbox, credentials).run(plenty)
    # THEN it never asked for them, and the run is an ordinary empty one
    assert credentials.asked == 0
    assert report.as_dict() == {"outcome": "done", "counts": {}, "stopped": None}


def test_due_messages_without_credentials_wait_and_nothing_fails() -> None:
    # GIVEN three due messages and a stale claim, but no Plum credentials yet
    outbox, credentials = FakeOutbox(), Credentials(plum=None)
    for i in range(3):
        outbox.add(message(i))
    outbox.add(message(9))
    outbox.rows[message(9).id].update(
        status=Status.SENDING, token="t", claimed_at=NOW, check_after=NOW - timedelta(minutes=1)
    )
    # WHEN the dispatcher runs
    report = built(outbox, credentials).run(plenty)
    # THEN it stops as not configured, without raising, claiming or failing anything
    assert report.stopped == "not_configured"
    assert report.as_dict()["outcome"] == "not_configured"
    assert report["errors"] == report["failed"] == report["claimed"] == 0
    assert outbox.writes == 0
    assert [outbox.status(message(i).id) for i in range(3)] == [Status.SCHEDULED] * 3
    assert outbox.rows[message(9).id]["token"] == "t"  # the stale claim is left for later
    assert credentials.asked == 1


def test_opted_out_recipients_are_suppressed_even_without_credentials() -> None:
    outbox, credentials = FakeOutbox(), Credentials(plum=None)
    outbox.add(message(1))
    outbox.opted.add(message(1).to)
    report = built(outbox, credentials).run(plenty)
    assert report["suppressed"] == 1
    assert credentials.asked == 0


def test_one_messages_store_error_does_not_stop_the_run() -> None:
    # GIVEN the store refuses the claim of one message of five
    outbox = FailingOutbox("claim", {message(2).id})
    for i in range(5):
        outbox.add(message(i))
    plum = ScriptedPlum()
    # WHEN the dispatcher runs
    report = built(outbox, Credentials(plum)).run(plenty)
    # THEN the other four are sent and the one is counted (tried again in the pass the
    # run makes after sending), still due for the next run
    assert (report["sent"], report["errors"]) == (4, 2)
    assert outbox.status(message(2).id) == Status.SCHEDULED


def test_a_store_error_listing_stale_claims_still_sends_the_due_messages() -> None:
    outbox = FailingOutbox("stale")
    for i in range(3):
        outbox.add(message(i))
    report = built(outbox, Credentials(ScriptedPlum())).run(plenty)
    assert (report["sent"], report["errors"]) == (3, 1)


def test_a_store_error_listing_due_messages_is_counted_not_raised() -> None:
    outbox = FailingOutbox("due")
    outbox.add(message(1))
    report = built(outbox, Credentials(ScriptedPlum())).run(plenty)
    assert (report["sent"], report["errors"], report.stopped) == (0, 1, "store")


def test_failed_and_suppressed_messages_are_published() -> None:
    # GIVEN a message Plum refuses, one to a local opt-out, and one to a number Plum
    # says unsubscribed with another message pending to it
    refused, opted, unsubscribed = "+12125550001", "+12125550002", "+12125550003"
    outbox, publisher = FakeOutbox(), Recorder()
    outbox.add(message(1, to=refused))
    outbox.add(message(2, to=opted))
    outbox.opted.add(opted)
    outbox.add(message(3, to=unsubscribed))
    outbox.add(message(4, to=unsubscribed).model_copy(update={"send_at": NOW + timedelta(days=1)}))
    plum = ScriptedPlum(
        {
            refused: InvalidRecipient("Invalid 'to' phone number"),
            unsubscribed: UnsubscribedRecipient("Attempt to send to unsubscribed recipient"),
        }
    )
    # WHEN the dispatcher runs
    built(outbox, Credentials(plum), publisher).run(plenty)
    # THEN each status it wrote went to the publisher, with where it came from
    published = {c.message_id: (c.previous, c.status, c.source, c.final) for c in publisher.changes}
    assert published == {
        message(1).id: (Status.SENDING, Status.FAILED, "dispatcher", True),
        message(2).id: (Status.SCHEDULED, Status.SUPPRESSED, "dispatcher", True),
        message(3).id: (Status.SENDING, Status.FAILED, "dispatcher", True),
        message(4).id: (Status.SCHEDULED, Status.SUPPRESSED, "opt-out", True),
    }
    assert {c.to for c in publisher.changes if c.message_id == message(1).id} == {refused}
