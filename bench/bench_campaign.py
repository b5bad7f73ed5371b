"""A campaign (issue 12, item 5), scaled to what the embedded DynamoDB server can carry.

Due messages from 20 senders, four dispatchers running at once (each its own client and
thread pool, like four Lambda execution environments, each run lasting 30 s and
started again until the campaign is out), the shared slot book, a Plum stand-in
answering in 50 ms and recording when each request arrives.

The issue asks for 100,000 messages at 10 msg/s per sender (200 msg/s in all); the
embedded server (moto, one process) carries about 60 conditional writes' worth of
messages a second on this machine, so the campaign keeps the shape and scales the
rate: 1 msg/s per sender, 100 messages each (2,000; ``--quick``: 20 each, 400). The
figures: for every sender, the worst 10-second window against its rate (target within
5 %), the slowest sender's rate (no one starved), duplicates and lost messages at Plum
(target 0), messages per second, and WCU and RCU per message by DynamoDB's rules
(``bench.capacity`` on every dispatcher's client: its reads before and after each write
slow the dispatchers, so the rate figures and the capacity ones come from the same,
slowed, run).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from bench.bench_dispatch import PlumStandIn, Server, seed
from bench.capacity import CapacityMeter, Cost, Table
from bench.harness import Figure, at_most, wait_for_port

SENDERS = tuple(f"+124356789{n:02d}" for n in range(10, 30))
RATE = 1.0
DISPATCHERS = 4
CONCURRENCY = 8
LATENCY = 0.050
RUN_SECONDS = 30
WINDOW = 10.0


def run(quick: bool) -> list[Figure]:
    """Every figure of this module."""
    from plumsms_local import dynamodb, template  # noqa: PLC0415

    per_sender = 20 if quick else 100
    total = per_sender * len(SENDERS)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    stand_in = PlumStandIn(LATENCY)
    try:
        with serialized_dynamodb() as server:
            raw = dynamodb.client_for(server.endpoint)
            table_name = f"bench-campaign-{uuid.uuid4().hex[:8]}"
            dynamodb.create_table(raw, table_name)
            seed(raw, table_name, total, SENDERS)
            meter = CapacityMeter(
                Table.from_definition(template.table_definition(table_name)), table_name, raw
            )
            began = time.monotonic()
            sampled = _campaign(server.endpoint, table_name, stand_in, total, meter)
            elapsed = time.monotonic() - began
            return _report(stand_in, total, elapsed, sampled)
    finally:
        stand_in.stop()


@contextmanager
def serialized_dynamodb() -> Iterator[Server]:
    """The embedded server (one request at a time, so conditional writes are atomic as on
    DynamoDB) in a child process: ``moto_server`` itself lets two concurrent conditional
    writes both succeed, which shows up as a message claimed twice."""
    from plumsms_local import dynamodb  # noqa: PLC0415

    port = dynamodb.free_port()
    code = (
        "import threading; from plumsms_local.dynamodb import EmbeddedDynamoDB; "
        f"EmbeddedDynamoDB(port={port}).start(); threading.Event().wait()"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, child, 30, "the embedded DynamoDB server")
        yield Server(f"http://127.0.0.1:{port}", child.pid)
    finally:
        child.terminate()
        child.wait(timeout=10)


def _campaign(
    endpoint: str, table_name: str, stand_in: PlumStandIn, total: int, meter: CapacityMeter
) -> tuple[Cost, int]:
    """Four dispatchers until Plum has every message (or 3x the ideal time passed)."""
    from plumsms.adapters.dynamodb.outbox import DynamoOutbox  # noqa: PLC0415
    from plumsms.adapters.dynamodb.pacing import DynamoSlotBook  # noqa: PLC0415
    from plumsms.adapters.dynamodb.store import DynamoMessageStore  # noqa: PLC0415
    from plumsms.adapters.plum.client import PlumClient  # noqa: PLC0415
    from plumsms.usecases.dispatch import (  # noqa: PLC0415
        DispatchConfig,
        Dispatcher,
        RateLimiter,
        SharedPacer,
    )
    from plumsms.usecases.ports import Pacer  # noqa: PLC0415
    from plumsms_local import dynamodb  # noqa: PLC0415

    give_up = time.monotonic() + 3 * total / (RATE * len(SENDERS)) + 60
    sent = [0]
    lock = threading.Lock()

    def received() -> int:
        with stand_in.lock:
            return sum(len(times) for times in stand_in.arrivals.values())

    def environment(index: int) -> None:
        client = dynamodb.client_for(endpoint)
        meter.watch(client)
        store = DynamoMessageStore(table_name, client=client)
        book = DynamoSlotBook(table_name, client, interval=1 / RATE)

        def pacer() -> Pacer:
            return SharedPacer(RateLimiter(RATE), book)

        plum = PlumClient(stand_in.url, "bench", "bench", retries=0)
        dispatcher = Dispatcher(
            outbox=DynamoOutbox(store),
            plum=lambda: plum,
            result_url=lambda ref: f"https://sms.example.test/plum/status?key=k&ref={ref}",
            config=DispatchConfig(rate_per_second=RATE, concurrency=CONCURRENCY),
            pacer=pacer,
        )
        while received() < total and time.monotonic() < give_up:
            report = dispatcher.run(_remaining_ms(time.monotonic() + RUN_SECONDS))
            with lock:
                sent[0] += report["sent"]
            if not report["sent"]:
                time.sleep(1)  # the next tick

    with meter.measure() as cost:
        threads = [threading.Thread(target=environment, args=(i,)) for i in range(DISPATCHERS)]
        for thread in threads:
            thread.start()
            time.sleep(0.2)
        for thread in threads:
            thread.join()
    return cost, sent[0]


def _remaining_ms(ends: float) -> Callable[[], int]:
    """A Lambda context's clock for a run ending at ``ends`` (monotonic)."""
    return lambda: max(0, int((ends - time.monotonic()) * 1000))


def _windows(times: list[float]) -> list[int]:
    """Sends in each full ``WINDOW`` from the sender's first send."""
    start, end = times[0], times[-1]
    count = int((end - start) // WINDOW)
    return [sum(1 for t in times if start + i * WINDOW <= t < start + (i + 1) * WINDOW)
            for i in range(count)]  # fmt: skip


def _busiest(times: list[float], window: float) -> int:
    """The most sends in any window of ``window`` seconds starting at a send."""
    return max(sum(1 for t in times[i:] if t < start + window) for i, start in enumerate(times))


def _report(
    stand_in: PlumStandIn, total: int, elapsed: float, sampled: tuple[Cost, int]
) -> list[Figure]:
    with stand_in.lock:
        arrivals = {sender: sorted(times) for sender, times in stand_in.arrivals.items()}
        bodies = list(stand_in.bodies)
    received = sum(len(t) for t in arrivals.values())
    expected = RATE * WINDOW
    worst = 0.0
    busiest = 0.0
    for times in arrivals.values():
        for count in _windows(times):
            worst = max(worst, abs(count - expected) / expected)
        busiest = max(busiest, _busiest(times, WINDOW) / expected)
    rates = [(len(t) - 1) / (t[-1] - t[0]) for t in arrivals.values() if len(t) > 1]
    slowest = min(rates) if rates else math.nan
    first = min(t[0] for t in arrivals.values())
    last = max(t[-1] for t in arrivals.values())
    cost, sent = sampled
    duplicates = len(bodies) - len(set(bodies))
    return [
        Figure(
            "messages at Plum", received, "msg", note=f"of {total} due, {len(arrivals)} senders"
        ),
        at_most("lost", total - min(received, total), "msg", 0),
        at_most("duplicates", duplicates, "msg", 0, "the same body at Plum twice"),
        at_most(
            "worst 10-s window vs rate",
            worst,
            "x",
            0.05,
            f"every sender, every full 10 s window, against {RATE:g} msg/s",
        ),
        at_most(
            "busiest 10-s window / rate",
            busiest,
            "x",
            1.05,
            "any 10 s window (sliding), any sender: the carrier's side of the limit",
        ),
        Figure(
            "slowest sender / rate",
            slowest / RATE,
            "x",
            ">= 0.95",
            slowest / RATE >= 0.95 if math.isfinite(slowest) else None,
            "no sender starved",
        ),
        Figure("messages per second", received / (last - first), "/s", note=f"{elapsed:.0f} s"),
        Figure(
            "WCU per message",
            cost.wcu / sent if sent else math.nan,
            "WCU",
            note=f"all four dispatchers, {sent} sent, lost races included; {cost.describe()}",
        ),
        Figure("RCU per message", cost.rcu / sent if sent else math.nan, "RCU"),
    ]


if __name__ == "__main__":
    for figure in run(quick=True):
        print(figure)
