"""A campaign (issue 12, item 5): due messages from 20 senders, four dispatchers at once.

Four dispatcher environments (each its own client and thread pool, as four Lambda
execution environments) invoke the dispatcher over and over, each run lasting
``RUN_SECONDS``, until Plum has the whole campaign: an invocation finds the run lease
held and coalesces, or holds it and sends; a run out of time hands over to the next
(its successor wakes one waiting environment at once, as Lambda's asynchronous invoke
starts one), and otherwise an environment invokes again a second after its run ended
(the minute tick and send-now bursts, compressed). The wiring is the deployed one
(lease, hand-over, shared slot book, per-run limiter), against a Plum stand-in that
answers in 50 ms and records when each request arrives.

Full run: the issue's campaign, 100,000 messages, 10 msg/s per sender (200 msg/s in
all), 32 workers (``SEND_CONCURRENCY``), against dynalite (a DynamoDB implementation in
Node.js, installed with npm into ``.tools/dynalite`` on first use): the embedded moto
server carries about 60 conditional writes a second here, far below 200 messages a
second. ``--quick``: the same shape scaled to moto, 400 messages at 1 msg/s per sender.

Figures: for every sender, the worst full 10-second window against its rate (target
within 5 %), the busiest sliding window (the carrier's side of the limit), the slowest
sender's rate (no one starved), duplicates and lost messages at Plum (target 0), runs
coalesced and claims lost, messages per second; then WCU and RCU per message by
DynamoDB's rules (``bench.capacity``), priced on a separate 400-message campaign with
the same wiring, since pricing reads every item before and after each write and would
slow the rate run.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.bench_dispatch import ChildStandIn, Server, child_server, child_stand_in, seed
from bench.capacity import CapacityMeter, Cost, Table
from bench.harness import Figure, at_most

SENDER_COUNT = 20
DISPATCHERS = 4
LATENCY = 0.050
RUN_SECONDS = 30
WINDOW = 10.0
PRICED_PER_SENDER = 20
DYNALITE = "dynalite@4.0.0"
NODE_GYP = "node-gyp@12.4.0"
TOOLS = Path(__file__).resolve().parent.parent / ".tools" / "dynalite"


@dataclass(frozen=True, slots=True)
class Scale:
    """How big a campaign, how fast, against which server."""

    per_sender: int
    rate: float
    concurrency: int
    store: str  # "dynalite" or "moto"
    sender_count: int = SENDER_COUNT

    @property
    def senders(self) -> tuple[str, ...]:
        return tuple(f"+1243567{n:04d}" for n in range(8910, 8910 + self.sender_count))

    @property
    def total(self) -> int:
        return self.per_sender * self.sender_count


FULL = Scale(per_sender=150, rate=2.0, concurrency=64, store="dynalite")
QUICK = Scale(per_sender=20, rate=1.0, concurrency=32, store="moto")


def _scale(quick: bool) -> Scale:
    """The campaign's size, with ``BENCH_CAMPAIGN_PER_SENDER``, ``_RATE``, ``_SENDERS``
    and ``_CONCURRENCY`` overriding the defaults (to find what a machine carries, or to
    hold the issue's 10 msg/s per sender with fewer senders on a small machine)."""
    base = QUICK if quick else FULL
    return Scale(
        per_sender=int(os.environ.get("BENCH_CAMPAIGN_PER_SENDER", base.per_sender)),
        rate=float(os.environ.get("BENCH_CAMPAIGN_RATE", base.rate)),
        concurrency=int(os.environ.get("BENCH_CAMPAIGN_CONCURRENCY", base.concurrency)),
        store=base.store,
        sender_count=int(os.environ.get("BENCH_CAMPAIGN_SENDERS", base.sender_count)),
    )


def run(quick: bool) -> list[Figure]:
    """Every figure of this module."""
    scale = _scale(quick)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    with server_for(scale.store) as server:
        with child_stand_in(LATENCY) as stand_in:
            table_name = _table(server, scale)
            began = time.monotonic()
            counts = _campaign(server.endpoint, table_name, stand_in, scale, None)
            arrivals, bodies = stand_in.snapshot()
            _dump(arrivals)
            figures = _report(arrivals, bodies, scale, time.monotonic() - began, counts)
        # The bill, priced on a smaller campaign of the same shape and wiring.
        priced = Scale(
            PRICED_PER_SENDER, scale.rate, scale.concurrency, scale.store, scale.sender_count
        )
        with child_stand_in(LATENCY) as stand_in:
            table_name = _table(server, priced)
            meter = _meter(server, table_name)
            with meter.measure() as cost:
                counts = _campaign(server.endpoint, table_name, stand_in, priced, meter)
    return figures + _bill(cost, counts["sent"], priced.total)


@contextmanager
def server_for(store: str) -> Iterator[Server]:
    """The DynamoDB-compatible server a campaign runs against."""
    external = os.environ.get("BENCH_DYNAMODB_ENDPOINT")
    if external:
        yield Server(external, 0)
    elif store == "dynalite":
        with dynalite() as server:
            yield server
    else:
        with serialized_dynamodb() as server:
            yield server


def _table(server: Server, scale: Scale) -> str:
    from plumsms_local import dynamodb, template  # noqa: PLC0415

    raw = dynamodb.client_for(server.endpoint)
    table_name = f"bench-campaign-{uuid.uuid4().hex[:8]}"
    # The table as template.yaml declares it; time to live plays no part in a campaign
    # (and dynalite does not have it).
    raw.create_table(**template.table_definition(table_name))
    raw.get_waiter("table_exists").wait(TableName=table_name)
    seed(raw, table_name, scale.total, scale.senders)
    return table_name


def _meter(server: Server, table_name: str) -> CapacityMeter:
    from plumsms_local import dynamodb, template  # noqa: PLC0415

    table = Table.from_definition(template.table_definition(table_name))
    return CapacityMeter(table, table_name, dynamodb.client_for(server.endpoint))


@contextmanager
def serialized_dynamodb() -> Iterator[Server]:
    """The embedded server (one request at a time, so conditional writes are atomic as on
    DynamoDB) in a child process: ``moto_server`` itself lets two concurrent conditional
    writes both succeed, which shows up as a message claimed twice."""
    code = (
        "import sys, threading; from plumsms_local.dynamodb import EmbeddedDynamoDB; "
        "EmbeddedDynamoDB(port=int(sys.argv[1])).start(); threading.Event().wait()"
    )
    with child_server(
        lambda port: [sys.executable, "-c", code, str(port)], "the embedded DynamoDB server"
    ) as server:
        yield server


@contextmanager
def dynalite() -> Iterator[Server]:
    """dynalite in a child process, its tables in LevelDB on a temporary directory
    (installed with npm, and its LevelDB binding compiled, on first use).

    In memory, dynalite's default, 100,000 messages and their index entries live in
    Node's heap: its major collections then took both cores for most of a second about
    every 100 s, and every sender paused with them (2026-12-05: ``node --trace-gc``
    against the campaign's arrivals, docs/benchmarks.md). In LevelDB the data live
    outside the heap, as DynamoDB's live outside its request path."""
    executable = TOOLS / "node_modules" / ".bin" / "dynalite"
    if not executable.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("the full campaign needs Node.js and npm (for dynalite)")
        TOOLS.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--prefix", str(TOOLS), "--no-audit", "--no-fund", DYNALITE],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    _build_leveldb()
    shared_memory = Path("/dev/shm")
    where = shared_memory if shared_memory.is_dir() else None
    with tempfile.TemporaryDirectory(prefix="bench-dynalite-", dir=where) as path:

        def command(port: int) -> list[str]:
            return [str(executable), "--port", str(port), "--createTableMs", "0", "--path", path]

        with child_server(command, "dynalite") as server:
            yield server


def _build_leveldb() -> None:
    """Compile the LevelDB binding dynalite's ``--path`` needs (npm 11 runs no install
    scripts by itself), against the headers that came with Node.js: node-gyp would
    otherwise download them, and nodejs.org may be out of reach."""
    package = TOOLS / "node_modules" / "classic-level"
    if (package / "build" / "Release" / "classic_level.node").exists():
        return
    npx, node = shutil.which("npx"), shutil.which("node")
    if npx is None or node is None:
        raise RuntimeError("the full campaign needs Node.js and npx (for dynalite's LevelDB)")
    node_dir = Path(node).resolve().parent.parent
    if not (node_dir / "include" / "node" / "node_api.h").exists():
        raise RuntimeError(f"no Node.js headers under {node_dir}/include/node (for LevelDB)")
    subprocess.run(
        [npx, "--yes", NODE_GYP, "rebuild", f"--nodedir={node_dir}"],
        cwd=package,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _campaign(
    endpoint: str,
    table_name: str,
    stand_in: ChildStandIn,
    scale: Scale,
    meter: CapacityMeter | None,
) -> Counter[str]:
    """Four environments invoking the dispatcher until Plum has every message (or three
    times the ideal time passed); the runs' counts added up."""
    from plumsms.adapters.dynamodb.lease import DynamoRunLease  # noqa: PLC0415
    from plumsms.adapters.dynamodb.outbox import DynamoOutbox  # noqa: PLC0415
    from plumsms.adapters.dynamodb.pacing import DynamoSlotBook  # noqa: PLC0415
    from plumsms.adapters.dynamodb.store import DynamoMessageStore  # noqa: PLC0415
    from plumsms.adapters.plum.client import PlumClient  # noqa: PLC0415
    from plumsms.usecases.dispatch import (  # noqa: PLC0415
        COALESCED,
        BookingLead,
        DispatchConfig,
        Dispatcher,
        RateLimiter,
        SharedPacer,
    )
    from plumsms.usecases.ports import Pacer  # noqa: PLC0415
    from plumsms_local import dynamodb  # noqa: PLC0415

    total, rate = scale.total, scale.rate
    give_up = time.monotonic() + 3 * total / (rate * scale.sender_count) + 60
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    handed_over = threading.Semaphore(0)

    def environment() -> None:
        client = dynamodb.client_for(endpoint)
        if meter is not None:
            meter.watch(client)
        store = DynamoMessageStore(table_name, client=client)
        book = DynamoSlotBook(table_name, client, interval=1 / rate)
        lead = BookingLead()

        def pacer() -> Pacer:
            return SharedPacer(RateLimiter(rate), book, lead=lead)

        plum = PlumClient(stand_in.url, "bench", "bench", retries=0)
        dispatcher = Dispatcher(
            outbox=DynamoOutbox(store),
            plum=lambda: plum,
            result_url=lambda ref: f"https://sms.example.test/plum/status?key=k&ref={ref}",
            config=DispatchConfig(rate_per_second=rate, concurrency=scale.concurrency),
            pacer=pacer,
            lease=DynamoRunLease(table_name, client),
            successor=handed_over.release,  # Lambda's asynchronous invoke, in-process
        )
        woken = False
        while stand_in.received() < total and time.monotonic() < give_up:
            ends = time.monotonic() + RUN_SECONDS
            report = dispatcher.run(_remaining_ms(ends), hand_over=woken)
            with lock:
                counts.update(report.counts)
                counts["runs"] += 1
                counts["coalesced"] += report.stopped == COALESCED
            # The next invocation: at once for a hand-over (which waits for the lease),
            # else a second later (the tick and send-now bursts, compressed).
            woken = handed_over.acquire(timeout=1)

    threads = [threading.Thread(target=environment) for _ in range(DISPATCHERS)]
    for thread in threads:
        thread.start()
        time.sleep(0.2)
    for thread in threads:
        thread.join()
    return counts


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
    arrivals: dict[str, list[float]],
    bodies: list[str],
    scale: Scale,
    elapsed: float,
    counts: Counter[str],
) -> list[Figure]:
    total, rate = scale.total, scale.rate
    received = sum(len(t) for t in arrivals.values())
    expected = rate * WINDOW
    start = min((t[0] for t in arrivals.values() if t), default=0.0)
    worst, worst_at = 0.0, ""
    busiest = 0.0
    pause, pause_at = 0.0, ""
    for sender, times in arrivals.items():
        for index, count in enumerate(_windows(times)):
            if abs(count - expected) / expected > worst:
                worst = abs(count - expected) / expected
                opens = times[0] + index * WINDOW - start
                worst_at = f"{count} sends from ...{sender[-2:]} in the window at {opens:.0f} s"
        busiest = max(busiest, _busiest(times, WINDOW) / expected)
        for before, after in itertools.pairwise(times):
            if after - before > pause:
                pause = after - before
                pause_at = f"...{sender[-2:]} at {before - start:.0f} s"
    rates = [(len(t) - 1) / (t[-1] - t[0]) for t in arrivals.values() if len(t) > 1]
    slowest = min(rates) if rates else math.nan
    first = min(t[0] for t in arrivals.values())
    last = max(t[-1] for t in arrivals.values())
    duplicates = len(bodies) - len(set(bodies))
    where = f"{scale.store}, {scale.concurrency} workers"
    return [
        Figure(
            "messages at Plum",
            received,
            "msg",
            note=f"of {total} due, {len(arrivals)} senders at {rate:g} msg/s, {where}",
        ),
        at_most("lost", total - min(received, total), "msg", 0),
        at_most("duplicates", duplicates, "msg", 0, "the same body at Plum twice"),
        at_most(
            "worst 10-s window vs rate",
            worst,
            "x",
            max(0.05, 1 / expected),
            f"every sender, every full 10 s window, against {rate:g} msg/s (5 %, or one send "
            f"where that is more: a window's count moves by one with any jitter); "
            f"worst: {worst_at}",
        ),
        Figure(
            "longest pause of a sender",
            pause,
            "s",
            note=f"{pause_at}; one interval is {1 / rate:g} s",
        ),
        at_most(
            "busiest 10-s window / rate",
            busiest,
            "x",
            (expected + 1) / expected,
            "any 10 s window (sliding, opening on a send), any sender: rate x 10 s + 1 at most",
        ),
        Figure(
            "slowest sender / rate",
            slowest / rate,
            "x",
            ">= 0.95",
            slowest / rate >= 0.95 if math.isfinite(slowest) else None,
            "no sender starved",
        ),
        Figure(
            "runs: worked / coalesced",
            counts["runs"] - counts["coalesced"],
            "runs",
            note=(
                f"{counts['coalesced']} coalesced, {counts['requested_passes']} passes "
                f"requested, {counts['pages_for_dry_senders']} pages read for dry senders"
            ),
        ),
        at_most("claims lost", counts["lost_race"], "claims", 0, "runs racing for a message"),
        Figure(
            "claims handed back / retried / checked",
            counts["claimed"] - counts["sent"],
            "claims",
            note=(
                f"{counts['retried']} retried, {counts['to_check']} to check with Plum, "
                f"{counts['reconciled']} reconciled, {counts['resent']} resent, "
                f"{counts['continued']} hand-overs, {counts['slots_missed']} slots missed, "
                f"{counts['errors']} errors"
            ),
        ),
        Figure("messages per second", received / (last - first), "/s", note=f"{elapsed:.0f} s"),
    ]


def _dump(arrivals: dict[str, list[float]]) -> None:
    """Write every sender's arrival times (``time.monotonic`` of the stand-in, the same
    clock in every process on one host) to ``BENCH_CAMPAIGN_DUMP``, when set: to set a
    pause against what else happened then (the store's log, a load reading)."""
    path = os.environ.get("BENCH_CAMPAIGN_DUMP")
    if path:
        Path(path).write_text(json.dumps({"clock": "monotonic", "arrivals": arrivals}))


def _bill(cost: Cost, sent: int, total: int) -> list[Figure]:
    note = f"priced on a {total}-message campaign, {sent} sent; {cost.describe()}"
    return [
        Figure("WCU per message", cost.wcu / sent if sent else math.nan, "WCU", note=note),
        Figure("RCU per message", cost.rcu / sent if sent else math.nan, "RCU"),
    ]


if __name__ == "__main__":
    for figure in run(quick=True):
        print(figure)
