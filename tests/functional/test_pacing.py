"""The per-sender rate across concurrent dispatchers, read from a Plum stand-in's clock.

Four dispatcher instances (as four Lambda execution environments: each its own client
and thread pool) run at once against the embedded DynamoDB server over HTTP and a Plum
stand-in that records when each ``sms/queue`` request arrives. As deployed, one of them
holds the run lease and the others coalesce into it; without the lease (as when a lease
lapses while its holder still sends) the shared slot book alone keeps every sender at
its rate. With per-run limiters only (the control) the same set-up sends each number
about four times too fast.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from botocore.exceptions import ClientError

from plumsms.adapters.dynamodb.lease import DynamoRunLease
from plumsms.adapters.dynamodb.outbox import DynamoOutbox
from plumsms.adapters.dynamodb.pacing import DynamoSlotBook, pace_key
from plumsms.adapters.dynamodb.store import DynamoMessageStore
from plumsms.adapters.plum.client import PlumClient
from plumsms.domain.sending import Schedule
from plumsms.usecases.dispatch import (
    DispatchConfig,
    Dispatcher,
    DispatchReport,
    RateLimiter,
    SharedPacer,
)
from plumsms.usecases.ports import Pacer
from plumsms_local import dynamodb
from plumsms_local.simulator.testing import queued_answer
from tests.factories import outbound_message

SENDERS = ("+12435678910", "+12435678911", "+12435678912")
RATE = 1.0
PER_SENDER = 5
DISPATCHERS = 4


class PlumStandIn:
    """Answers ``sms/queue`` at once; records each arrival's time (wall clock) per sender."""

    def __init__(self) -> None:
        self.arrivals: dict[str, list[float]] = defaultdict(list)
        self.bodies: list[str] = []
        lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                arrived = time.time()
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                with lock:
                    # Plum's ``from`` is the 10 national digits of a NANP number.
                    stand_in.arrivals["+1" + form["from"]].append(arrived)
                    stand_in.bodies.append(form["body"])
                body = queued_answer(form, arrived)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/ws/"


@pytest.fixture
def plum() -> Iterator[PlumStandIn]:
    stand_in = PlumStandIn()
    yield stand_in
    stand_in.server.shutdown()
    stand_in.server.server_close()


def schedule_due(outbox: DynamoOutbox) -> set[str]:
    """``PER_SENDER`` due messages from each sender; their bodies."""
    now = datetime.now(UTC) - timedelta(seconds=1)
    bodies = set()
    for index in range(PER_SENDER * len(SENDERS)):
        body = f"paced {index} {uuid.uuid4().hex[:6]}"
        message = outbound_message(
            now, to=f"+1212555{index:04d}", from_=SENDERS[index % len(SENDERS)], body=body
        )
        outbox.create(message, Schedule())
        bodies.add(body)
    return bodies


def run_dispatchers(
    server: dynamodb.EmbeddedDynamoDB,
    table_name: str,
    plum_url: str,
    shared: bool,
    leased: bool = False,
) -> list[DispatchReport]:
    """``DISPATCHERS`` dispatchers started together, each with its own client (environment)."""
    reports: list[DispatchReport] = []

    def one() -> None:
        store = DynamoMessageStore(table_name, client=server.client())
        pacer = None
        if shared:
            book = DynamoSlotBook(table_name, store.client, interval=1 / RATE)

            def make_pacer() -> Pacer:
                return SharedPacer(RateLimiter(RATE), book)

            pacer = make_pacer
        client = PlumClient(plum_url, "user", "pass", retries=0)
        dispatcher = Dispatcher(
            outbox=DynamoOutbox(store),
            plum=lambda: client,
            result_url=lambda ref: f"https://sms.example.test/plum/status?key=k&ref={ref}",
            config=DispatchConfig(
                rate_per_second=RATE, concurrency=4, stop_margin=timedelta(0), page_size=20
            ),
            pacer=pacer,
            lease=DynamoRunLease(table_name, store.client) if leased else None,
        )
        reports.append(dispatcher.run(lambda: 60_000))

    threads = [threading.Thread(target=one) for _ in range(DISPATCHERS)]
    for thread in threads:
        thread.start()
        time.sleep(0.05)  # a burst of send-now invokes, as Lambda starts them
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    return reports


def busiest(times: list[float], window: float) -> int:
    """The most sends in any window of ``window`` seconds."""
    times = sorted(times)
    return max(sum(1 for t in times[i:] if t < start + window) for i, start in enumerate(times))


@pytest.mark.parametrize("leased", [True, False], ids=["lease and book", "book alone"])
def test_concurrent_dispatchers_keep_every_sender_within_its_rate(
    dynamo_server: dynamodb.EmbeddedDynamoDB, table_name: str, plum: PlumStandIn, leased: bool
) -> None:
    # GIVEN 5 due messages from each of three senders, 1 msg/s per sender
    outbox = DynamoOutbox(DynamoMessageStore(table_name, client=dynamo_server.client()))
    bodies = schedule_due(outbox)
    # WHEN four dispatchers run at once, sharing the slot book (and, as deployed, the lease)
    reports = run_dispatchers(dynamo_server, table_name, plum.url, shared=True, leased=leased)
    # THEN with the lease one run sent everything and the others coalesced into it
    if leased:
        assert sorted(r.stopped or "worked" for r in reports) == ["coalesced"] * 3 + ["worked"]
        assert sum(r["lost_race"] for r in reports) == 0
    # AND every message reached Plum exactly once
    assert sorted(plum.bodies) == sorted(bodies)
    for sender in SENDERS:
        arrivals = sorted(plum.arrivals[sender])
        gaps = [b - a for a, b in itertools.pairwise(arrivals)]
        # AND no sender had more than its rate's sends in any second (a window opening on
        # a send also holds the one a full interval later, so rate + 1 at most)
        assert busiest(arrivals, 1.0) <= RATE + 1, (sender, gaps)
        # AND no two of its sends came much closer than one interval (the local server
        # shares one interpreter with four dispatchers: arrivals jitter by up to 0.3 s)
        assert min(gaps) >= 0.5 / RATE, (sender, gaps)
        # AND no longer window held more either
        assert busiest(arrivals, 3.0) <= 3 * RATE + 1, (sender, gaps)


@pytest.mark.parametrize("shared", [True, False], ids=["shared book", "per-run only"])
def test_runs_pace_together_only_through_the_shared_book(
    dynamo_server: dynamodb.EmbeddedDynamoDB, table_name: str, shared: bool
) -> None:
    # GIVEN four runs, each with its own pacer, sending from one number at 2 msg/s
    rate, sends = 2.0, 3
    book = DynamoSlotBook(table_name, dynamo_server.client(), interval=1 / rate)
    started: list[float] = []
    lock = threading.Lock()

    def run() -> None:
        local = RateLimiter(rate)
        pacer: Pacer = SharedPacer(local, book) if shared else local
        for _ in range(sends):
            slot = pacer.reserve(SENDERS[0], deadline=time.monotonic() + 30)
            assert slot is not None
            assert pacer.wait_until(SENDERS[0], slot)
            with lock:
                started.append(time.time())

    # WHEN they run at once
    threads = [threading.Thread(target=run) for _ in range(DISPATCHERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN with the shared book the number keeps its rate across the runs; each run's
    # own limiter alone lets the four runs start together (what the book prevents)
    if shared:
        assert busiest(started, 1.0) <= rate + 1
        assert max(started) - min(started) >= (DISPATCHERS * sends - 1) / rate - 0.05
    else:
        assert busiest(started, 1.0) >= DISPATCHERS


def test_the_slot_book_gives_every_booking_its_own_slot_one_interval_apart(
    dynamo_server: dynamodb.EmbeddedDynamoDB, table_name: str
) -> None:
    # GIVEN one sender's book at 4 slots a second, and a fixed clock
    now = 1_000_000.0
    book = DynamoSlotBook(table_name, dynamo_server.client(), interval=0.25, clock=lambda: now)
    # WHEN 12 threads book at once, with a deadline 2 s ahead
    slots: list[float | None] = []
    lock = threading.Lock()

    def take() -> None:
        slot, _ = book.book(SENDERS[0], deadline=now + 2.0)
        with lock:
            slots.append(slot)

    threads = [threading.Thread(target=take) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN the first nine get the slots now, +0.25, ... +2.0, each once; the rest none
    booked = sorted(s for s in slots if s is not None)
    assert booked == [now + 0.25 * i for i in range(9)]
    assert slots.count(None) == 3
    # AND a refused booking moved nothing: the next free slot is still now + 2.25
    assert book.book(SENDERS[0], deadline=now + 10) == (now + 2.25, now + 2.5)
    # AND another sender's book is its own
    assert book.book(SENDERS[1], deadline=now) == (now, now + 0.25)


def test_a_booking_asked_for_after_its_deadline_books_nothing(
    dynamo_server: dynamodb.EmbeddedDynamoDB, table_name: str
) -> None:
    # GIVEN a worker that reaches the book after its run's deadline (a slow claim)
    now = 1_000_000.0
    client = dynamo_server.client()
    book = DynamoSlotBook(table_name, client, interval=0.5, clock=lambda: now)
    # THEN it gets no slot, learns nothing is free before now, and writes nothing (on
    # DynamoDB the busy path's BETWEEN with reversed bounds is a ValidationException)
    assert book.book(SENDERS[0], deadline=now - 0.1) == (None, now)
    assert "Item" not in client.get_item(TableName=table_name, Key=pace_key(SENDERS[0]))
    # AND a booking in time still takes the slot now
    assert book.book(SENDERS[0], deadline=now + 1) == (now, now + 0.5)


def test_an_idle_senders_slot_starts_at_the_earliest_asked_and_a_busy_ones_keeps_its_pace(
    dynamo_server: dynamodb.EmbeddedDynamoDB, table_name: str
) -> None:
    # GIVEN a book at 1 slot a second, on a clock the test moves
    clock = [1_000_000.0]
    book = DynamoSlotBook(table_name, dynamo_server.client(), interval=1.0, clock=lambda: clock[0])
    now = clock[0]
    # WHEN an idle sender's slot is booked 0.2 s ahead
    # THEN it starts then (the caller has its answer before the slot begins)
    assert book.book(SENDERS[0], deadline=now + 60, earliest=now + 0.2) == (now + 0.2, now + 1.2)
    # AND when the next booking comes late (its caller woke 0.1 s late: it asks at
    # now + 1.1 for a slot from now + 1.3), the sender's next slot is still the one at
    # now + 1.2: the book keeps its pace instead of moving on by the delay
    clock[0] = now + 1.1
    assert book.book(SENDERS[0], deadline=now + 60, earliest=now + 1.3) == (now + 1.2, now + 2.2)
    # AND a sender whose next slot has passed is idle again: its slot starts at earliest
    clock[0] = now + 5.0
    assert book.book(SENDERS[0], deadline=now + 60, earliest=now + 5.2) == (now + 5.2, now + 6.2)
    # AND an idle sender whose earliest is past the deadline gets no slot and writes nothing
    assert book.book(SENDERS[1], deadline=now + 5.1, earliest=now + 5.2) == (None, now + 5.2)
    assert book.book(SENDERS[1], deadline=now + 60) == (now + 5.0, now + 6.0)


class WithoutRefusedItems:
    """A DynamoDB client whose refusals hand back no item (as dynalite's do)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def update_item(self, **kwargs: Any) -> Any:
        try:
            return self.client.update_item(**kwargs)
        except ClientError as exc:
            exc.response.pop("Item", None)
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_the_book_works_on_a_server_that_hands_back_no_refused_item(
    dynamo_server: dynamodb.EmbeddedDynamoDB, table_name: str
) -> None:
    # GIVEN a sender booked up to 10 s ahead, on a server whose refusals carry no item
    now = 1_000_000.0
    client = dynamo_server.client()
    full = DynamoSlotBook(table_name, client, interval=1.0, clock=lambda: now)
    for _ in range(10):
        full.book(SENDERS[0], deadline=now + 60)
    book = DynamoSlotBook(table_name, WithoutRefusedItems(client), interval=1.0, clock=lambda: now)  # type: ignore[arg-type]
    # THEN a booking with a 5 s deadline gets no slot and learns where the book stands
    # (without the fallback it found nothing out and gave up with an error)
    assert book.book(SENDERS[0], deadline=now + 5) == (None, now + 10)
    # AND a later deadline still books the next slot, and an idle sender books now
    assert book.book(SENDERS[0], deadline=now + 60) == (now + 10, now + 11)
    assert book.book(SENDERS[1], deadline=now + 60) == (now, now + 1)


def test_a_hand_over_keeps_every_senders_pace_across_the_two_runs(
    dynamo_server: dynamodb.EmbeddedDynamoDB, table_name: str, plum: PlumStandIn
) -> None:
    # GIVEN 10 due messages from each of three senders at 2 msg/s (5 s of sending), and
    # a first run with 2.5 s to claim (4.5 s left, 2 s margin): its lead is 1.25 s
    rate, per_sender = 2.0, 10
    outbox = DynamoOutbox(DynamoMessageStore(table_name, client=dynamo_server.client()))
    due = datetime.now(UTC) - timedelta(seconds=1)
    for index in range(per_sender * len(SENDERS)):
        message = outbound_message(
            due,
            to=f"+1212555{index:04d}",
            from_=SENDERS[index % len(SENDERS)],
            body=f"relay {index}",
        )
        outbox.create(message, Schedule())
    reports: dict[str, DispatchReport] = {}
    lease_held_at_start: list[bool] = []
    next_run = threading.Thread(target=lambda: reports.update(second=environment().run(
        lambda: 60_000, hand_over=True)))  # fmt: skip

    def environment(successor: Any = None) -> Dispatcher:
        store = DynamoMessageStore(table_name, client=dynamo_server.client())
        book = DynamoSlotBook(table_name, store.client, interval=1 / rate)
        client = PlumClient(plum.url, "user", "pass", retries=0)
        return Dispatcher(
            outbox=DynamoOutbox(store),
            plum=lambda: client,
            result_url=lambda ref: f"https://sms.example.test/plum/status?key=k&ref={ref}",
            config=DispatchConfig(
                rate_per_second=rate, concurrency=6, stop_margin=timedelta(seconds=2)
            ),
            pacer=lambda: SharedPacer(RateLimiter(rate), book),
            lease=DynamoRunLease(table_name, store.client),
            successor=successor,
        )

    def start_next_run() -> None:
        item = dynamo_server.client().get_item(
            TableName=table_name, Key=DynamoRunLease(table_name, dynamo_server.client()).key
        )
        lease_held_at_start.append("lease_holder" in item.get("Item", {}))
        next_run.start()  # Lambda's asynchronous invoke

    # WHEN the first run works, starting the next one within its lead
    ends = time.monotonic() + 4.5
    reports["first"] = environment(start_next_run).run(
        lambda: max(0, int((ends - time.monotonic()) * 1000))
    )
    next_run.join(timeout=60)
    # THEN the next run was started while the first still held the lease, waited for
    # it (no coalescing) and sent the rest; the first made no extra pass for it
    assert lease_held_at_start == [True]
    assert reports["first"]["continued"] == 1
    assert reports["first"]["requested_passes"] == 0
    assert reports["second"].stopped is None
    assert reports["first"]["sent"] + reports["second"]["sent"] == per_sender * len(SENDERS)
    assert reports["first"]["sent"] >= 3 and reports["second"]["sent"] >= 3
    assert sorted(plum.bodies) == sorted(f"relay {i}" for i in range(per_sender * len(SENDERS)))
    for sender in SENDERS:
        gaps = [b - a for a, b in itertools.pairwise(sorted(plum.arrivals[sender]))]
        # AND every sender kept its pace across the hand-over: no two sends closer than
        # half an interval, and no pause longer than an interval and a half (arrivals
        # jitter by up to 0.3 s on the shared local server)
        assert min(gaps) >= 0.5 / rate, (sender, gaps)
        assert max(gaps) <= 1.5 / rate, (sender, gaps)


def test_a_slot_booked_by_a_stalled_store_is_left_unused_and_the_message_sent_later(
    dynamo_server: dynamodb.EmbeddedDynamoDB, table_name: str, plum: PlumStandIn
) -> None:
    # GIVEN 8 due messages from one sender at 2 msg/s, and a store whose answer to one of
    # the sender's slot bookings comes back a second after it booked the slot (a stall
    # like a garbage collection in the store: the slot has passed when the answer comes)
    rate, count, stall = 2.0, 8, 1.0
    store = DynamoMessageStore(table_name, client=dynamo_server.client())
    outbox = DynamoOutbox(store)
    due = datetime.now(UTC) - timedelta(seconds=1)
    for index in range(count):
        message = outbound_message(
            due, to=f"+1212555{index:04d}", from_=SENDERS[0], body=f"stalled {index}"
        )
        outbox.create(message, Schedule())
    bookings = itertools.count(1)
    stalled: list[float] = []

    def mark(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        body = params.get("body") or b""
        text = body.decode() if isinstance(body, bytes) else str(body)
        context["slot_booking"] = "PACE#" in text

    def answer_late(http_response: Any, context: dict[str, Any], **_: Any) -> None:
        # The third booking the store granted: the others answer at once.
        granted = context.get("slot_booking") and http_response.status_code == 200
        if granted and next(bookings) == 3:
            stalled.append(time.time())
            time.sleep(stall)

    store.client.meta.events.register("before-call.dynamodb.UpdateItem", mark)
    store.client.meta.events.register("after-call.dynamodb.UpdateItem", answer_late)
    client = PlumClient(plum.url, "user", "pass", retries=0)
    dispatcher = Dispatcher(
        outbox=outbox,
        plum=lambda: client,
        result_url=lambda ref: f"https://sms.example.test/plum/status?key=k&ref={ref}",
        config=DispatchConfig(rate_per_second=rate, concurrency=4, stop_margin=timedelta(0)),
        pacer=lambda: SharedPacer(
            RateLimiter(rate), DynamoSlotBook(table_name, store.client, interval=1 / rate)
        ),
        lease=DynamoRunLease(table_name, store.client),
    )
    # WHEN the dispatcher runs
    report = dispatcher.run(lambda: 60_000)
    # THEN the store did stall once, and the slot it answered for was left unused
    assert len(stalled) == 1
    assert report["slots_missed"] >= 1
    # AND every message still reached Plum exactly once
    assert report["sent"] == count
    assert sorted(plum.bodies) == sorted(f"stalled {i}" for i in range(count))
    # AND the late answer's message did not leave on arrival, a quarter of a second or
    # less from the send booked in a slot after it (what it did before the slot rule):
    # one dispatcher alone sends on its slots, so every gap stays near an interval
    gaps = [b - a for a, b in itertools.pairwise(sorted(plum.arrivals[SENDERS[0]]))]
    assert min(gaps) >= 0.7 / rate, gaps
