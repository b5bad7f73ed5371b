"""The dispatcher's figures (issue 4, item 7).

5,000 due messages (500 with ``--quick``) dispatched against a Plum stand-in that answers
every ``sms/queue`` in 50 ms, through the real adapters: DynamoDB (the embedded server,
in its own process so it does not share this one's interpreter lock) and the urllib3
Plum client.

(a) Throughput: messages per second, and its ratio to the ideal (concurrency / latency;
    target >= 0.8) and to a baseline measured in the same run: the same number of bare
    Plum calls from the same number of threads, without DynamoDB. What holds it back is
    measured in the same run: the DynamoDB server's CPU time per sent message (from
    ``/proc``; the server is one process, so it serves at most one core's worth), the
    ceiling that sets (one core / CPU per message), the ratio to the ideal capped by that
    ceiling, and the mean UpdateItem latency the dispatcher's workers saw.
(b) DynamoDB write requests per sent message, counted with a botocore event hook on the
    client (target <= 3), for one-off messages and for recurring ones.
(c) A 10 messages/s per-sender limit with two senders: the rate each sender's messages
    arrived at Plum, and its deviation from 10/s (target within 5%).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import urllib3

from bench.harness import PROJECT_ROOT, Figure, ratio, wait_for_port
from plumsms.adapters.dynamodb import codec
from plumsms.adapters.dynamodb.outbox import SCHEDULE_ATTR, DynamoOutbox
from plumsms.adapters.dynamodb.store import DynamoMessageStore
from plumsms.adapters.plum.client import PlumClient
from plumsms.domain.models import MessageType, Status, new_message
from plumsms.domain.scheduling import Recurrence
from plumsms.domain.sending import Schedule
from plumsms.usecases.dispatch import DispatchConfig, Dispatcher
from plumsms_local import dynamodb
from plumsms_local.simulator.testing import queued_answer

LATENCY = 0.050
CONCURRENCY = 8
SENDERS = ("+12435678910", "+12435678911")
RATE_LIMIT = 10.0
WRITE_OPERATIONS = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)
UNLIMITED = 1_000_000.0


# -- the Plum stand-in ---------------------------------------------------------------------


class PlumStandIn:
    """Answers ``sms/queue`` after ``latency`` seconds; records each arrival per sender.

    ``GET /_bench/arrivals`` answers what was recorded (for a stand-in in its own
    process: ``python -m bench.bench_dispatch --stand-in PORT LATENCY``)."""

    def __init__(self, latency: float, port: int = 0) -> None:
        self.latency = latency
        self.arrivals: dict[str, list[float]] = defaultdict(list)
        self.bodies: list[str] = []
        self.queued: dict[str, list[dict[str, Any]]] = {}
        self.lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes: without this, Nagle's algorithm
                # and delayed ACKs add 40 ms to every keep-alive answer.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self) -> None:
                arrived = time.monotonic()
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                with stand_in.lock:
                    stand_in.arrivals[form["from"]].append(arrived)
                    stand_in.bodies.append(form["body"])
                time.sleep(stand_in.latency)
                body = queued_answer(form, time.time())
                with stand_in.lock:
                    stand_in.queued.setdefault(form["to"], []).append(
                        json.loads(body)["result"]["sms_messages"][0]
                    )
                self._answer(body)

            def do_GET(self) -> None:
                if self.path == ARRIVALS_PATH:
                    arrivals, bodies = stand_in.snapshot()
                    self._answer(json.dumps({"arrivals": arrivals, "bodies": bodies}).encode())
                    return
                if self.path == RECEIVED_PATH:
                    self._answer(json.dumps(stand_in.received()).encode())
                    return
                # ``sms/messages``, for the recovery of claims whose answer was lost: what
                # was queued to the number asked about (every other filter is left out).
                query = parse_qs(urlsplit(self.path).query)
                with stand_in.lock:
                    found = [r for v in query.values() for r in stand_in.queued.get(v[0], [])]
                envelope = {"status": "success", "error": "", "result": {"sms_messages": found}}
                self._answer(json.dumps(envelope).encode())

            def _answer(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/ws/"

    def snapshot(self) -> tuple[dict[str, list[float]], list[str]]:
        """Each sender's arrival times (sorted), and every body received."""
        with self.lock:
            arrivals = {sender: sorted(times) for sender, times in self.arrivals.items()}
            return arrivals, list(self.bodies)

    def received(self) -> int:
        """How many sends arrived."""
        with self.lock:
            return len(self.bodies)

    def reset(self) -> None:
        with self.lock:
            self.arrivals.clear()
            self.bodies.clear()
            self.queued.clear()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


ARRIVALS_PATH = "/_bench/arrivals"
RECEIVED_PATH = "/_bench/received"


class ChildStandIn:
    """A ``PlumStandIn`` in its own process: its arrival times are taken by an
    interpreter that the dispatcher's threads do not hold up."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.url = f"{server.endpoint}/ws/"
        self._pool = urllib3.PoolManager()

    def snapshot(self) -> tuple[dict[str, list[float]], list[str]]:
        """Each sender's arrival times (sorted), and every body received."""
        answer = self._pool.request("GET", f"{self.server.endpoint}{ARRIVALS_PATH}").json()
        return answer["arrivals"], answer["bodies"]

    def received(self) -> int:
        """How many sends arrived."""
        return int(self._pool.request("GET", f"{self.server.endpoint}{RECEIVED_PATH}").json())


@contextmanager
def child_stand_in(latency: float) -> Iterator[ChildStandIn]:
    """A Plum stand-in answering in ``latency`` seconds, in a child process."""

    def command(port: int) -> list[str]:
        return [sys.executable, "-m", "bench.bench_dispatch", "--stand-in", str(port), str(latency)]

    with child_server(command, "the Plum stand-in") as server:
        yield ChildStandIn(server)


# -- DynamoDB in its own process -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Server:
    """The DynamoDB server child process."""

    endpoint: str
    pid: int

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server has used so far; NaN without ``/proc``."""
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return math.nan
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def dynamodb_server() -> Iterator[Server]:
    """``moto_server`` in a child process (its own interpreter lock)."""
    executable = Path(sys.executable).with_name("moto_server")
    with child_server(lambda port: [str(executable), "-H", "127.0.0.1", "-p", str(port)],
                      "moto_server") as server:  # fmt: skip
        yield server


@contextmanager
def child_server(command: Callable[[int], list[str]], what: str) -> Iterator[Server]:
    """A DynamoDB-compatible server started by ``command(port)`` in a child process,
    on a free port; stopped on exit."""
    port = dynamodb.free_port()
    child = subprocess.Popen(
        command(port), cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, child, 30, what)
        yield Server(f"http://127.0.0.1:{port}", child.pid)
    finally:
        child.terminate()
        child.wait(timeout=10)


class StoreMeter:
    """Counts DynamoDB write requests and times UpdateItem calls through one client.

    Botocore event hooks on the client: ``before-call`` counts and starts a clock,
    ``after-call`` stops it (per thread, as the dispatcher's workers share the client).
    """

    def __init__(self, client: Any) -> None:
        self.writes = 0
        self.update_seconds = 0.0
        self.updates = 0
        self.lock = threading.Lock()
        self.local = threading.local()
        client.meta.events.register("before-call.dynamodb", self._before)
        client.meta.events.register("after-call.dynamodb", self._after)

    def _before(self, model: Any, **_: Any) -> None:
        self.local.started = time.perf_counter()
        if model.name in WRITE_OPERATIONS:
            with self.lock:
                self.writes += 1

    def _after(self, model: Any, **_: Any) -> None:
        if model.name == "UpdateItem":
            elapsed = time.perf_counter() - self.local.started
            with self.lock:
                self.update_seconds += elapsed
                self.updates += 1

    def take(self) -> tuple[int, float]:
        """Write requests, and the mean UpdateItem latency (s), since the last take."""
        with self.lock:
            writes, mean = self.writes, self.update_seconds / max(self.updates, 1)
            self.writes, self.update_seconds, self.updates = 0, 0.0, 0
            return writes, mean


def seed(
    client: Any, table: str, count: int, senders: tuple[str, ...], recurring: bool = False
) -> None:
    """``count`` due messages, written in batches (not counted: the hook is reset after)."""
    now = datetime.now(UTC) - timedelta(seconds=1)
    schedule = Schedule()
    if recurring:
        rule = Recurrence(frequency="daily", count=3, time_zone="UTC")
        schedule = Schedule(recurrence=rule, anchor=now.replace(tzinfo=None))
    rows = []
    for index in range(count):
        message = new_message(
            uuid.uuid4().hex,
            MessageType.OUTBOUND,
            to=f"+1212{index % 10_000_000:07d}",
            from_=senders[index % len(senders)],
            body=f"Reminder {index}",
            status=Status.SCHEDULED,
            at=now,
            source="bench",
            send_at=now,
            segments=1,
            encoding="GSM-7",
        )
        row = codec.message_item(message)
        row[SCHEDULE_ATTR] = schedule.model_copy(update={"series_id": message.id}).to_json()
        rows.append({"PutRequest": {"Item": codec.serialize(row)}})
    for start in range(0, len(rows), 25):
        request: dict[str, Any] = {table: rows[start : start + 25]}
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}


def dispatcher(store: DynamoMessageStore, plum: PlumClient, rate: float) -> Dispatcher:
    return Dispatcher(
        outbox=DynamoOutbox(store),
        plum=lambda: plum,
        result_url=lambda ref: f"https://sms.example.test/plum/status?key=k&ref={ref}",
        config=DispatchConfig(
            rate_per_second=rate, concurrency=CONCURRENCY, stop_margin=timedelta(0)
        ),
    )


def forever() -> int:
    return 3_600_000


def bare_plum_rate(plum: PlumClient, count: int) -> float:
    """Messages per second of the same Plum calls without the dispatcher or DynamoDB."""

    def call(index: int) -> None:
        plum.queue(f"+1212{index:07d}", SENDERS[0], "baseline")

    started = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(call, range(count)))
    return count / (time.perf_counter() - started)


def sender_rates(arrivals: dict[str, list[float]]) -> dict[str, float]:
    return {
        sender: (len(times) - 1) / (max(times) - min(times))
        for sender, times in arrivals.items()
        if len(times) > 1
    }


# -- the figures ------------------------------------------------------------------------------


def run(quick: bool) -> list[Figure]:
    """Dispatch throughput, writes per message and the per-sender limit."""
    total = 500 if quick else 5000
    recurring_total = 100 if quick else 200
    limited_per_sender = 40 if quick else 100
    ideal = CONCURRENCY / LATENCY
    figures: list[Figure] = []
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    stand_in = PlumStandIn(LATENCY)
    plum = PlumClient(stand_in.url, "bench", "bench", retries=0)
    try:
        with dynamodb_server() as server:
            client = dynamodb.client_for(server.endpoint)
            meter = StoreMeter(client)

            def fresh_store() -> DynamoMessageStore:
                name = f"bench-dispatch-{uuid.uuid4().hex[:8]}"
                dynamodb.create_table(client, name)
                return DynamoMessageStore(name, client=client)

            baseline = bare_plum_rate(plum, min(total, 400))
            stand_in.reset()

            # (a) and (b): one-off messages, no rate limit
            store = fresh_store()
            seed(client, store.table_name, total, SENDERS)
            meter.take()
            server_cpu = server.cpu_seconds()
            started = time.perf_counter()
            report = dispatcher(store, plum, UNLIMITED).run(forever)
            elapsed = time.perf_counter() - started
            server_cpu = server.cpu_seconds() - server_cpu
            sent = report["sent"]
            one_off_writes, update_latency = meter.take()
            rate = sent / elapsed
            # The server is one process: it serves at most one core's worth of requests.
            server_per_message = server_cpu / max(sent, 1)
            store_ceiling = 1 / server_per_message if server_per_message > 0 else math.inf
            capped_ideal = min(ideal, store_ceiling)
            # Each worker waits for Plum and for its two updates (claim, record) in turn.
            with_store = CONCURRENCY / (LATENCY + 2 * update_latency)
            figures += [
                Figure(
                    "dispatch throughput", rate, "msg/s", note=f"{sent} sent in {elapsed:.1f} s"
                ),
                Figure(
                    "throughput / ideal (concurrency / latency)",
                    ratio(rate, ideal),
                    "ratio",
                    ">= 0.8",
                    ratio(rate, ideal) >= 0.8,
                    f"ideal {ideal:.0f} msg/s = {CONCURRENCY} workers / {LATENCY * 1000:.0f} ms",
                ),
                Figure(
                    "DynamoDB server CPU per sent message",
                    server_per_message * 1000,
                    "ms",
                    note=(
                        f"moto_server (own process) busy {ratio(server_cpu, elapsed):.0%} of "
                        f"one core during the run: at most {store_ceiling:.0f} msg/s"
                    ),
                ),
                Figure(
                    "throughput / ideal capped by the server's CPU",
                    ratio(rate, capped_ideal),
                    "ratio",
                    note=(
                        f"{capped_ideal:.0f} msg/s = min({ideal:.0f}, 1 core / "
                        f"{server_per_message * 1000:.1f} ms); the target stays on the ideal"
                    ),
                ),
                Figure(
                    "mean UpdateItem latency under load",
                    update_latency * 1000,
                    "ms",
                    note="claim and record, as the dispatcher's workers saw them",
                ),
                Figure(
                    "throughput / ideal counting the store's latency",
                    ratio(rate, with_store),
                    "ratio",
                    note=(
                        f"{with_store:.0f} msg/s = {CONCURRENCY} / "
                        f"({LATENCY * 1000:.0f} ms + 2 x {update_latency * 1000:.1f} ms)"
                    ),
                ),
                Figure(
                    "throughput / bare Plum calls (same run)",
                    ratio(rate, baseline),
                    "ratio",
                    note=f"baseline {baseline:.0f} msg/s: {CONCURRENCY} threads, no DynamoDB",
                ),
                Figure(
                    "DynamoDB writes per sent message (one-off)",
                    one_off_writes / max(sent, 1),
                    "writes",
                    "<= 3",
                    one_off_writes / max(sent, 1) <= 3,
                    f"{one_off_writes} write requests for {sent} messages",
                ),
            ]
            if sent != total:
                figures.append(Figure("messages not sent", total - sent, "msg", note="see logs"))

            # (b) recurring messages: claim, next occurrence, record
            store = fresh_store()
            seed(client, store.table_name, recurring_total, SENDERS, recurring=True)
            meter.take()
            report = dispatcher(store, plum, UNLIMITED).run(forever)
            recurring_writes = meter.take()[0] / max(report["sent"], 1)
            figures.append(
                Figure(
                    "DynamoDB writes per sent message (recurring)",
                    recurring_writes,
                    "writes",
                    "<= 3",
                    recurring_writes <= 3,
                    f"{report['sent']} recurring messages, each creating its next occurrence",
                )
            )

            # (c) the per-sender limit
            store = fresh_store()
            seed(client, store.table_name, limited_per_sender * len(SENDERS), SENDERS)
            stand_in.reset()
            dispatcher(store, plum, RATE_LIMIT).run(forever)
            rates = sender_rates(stand_in.arrivals)
            worst = max(abs(r - RATE_LIMIT) / RATE_LIMIT for r in rates.values())
            shown = ", ".join(f"{r:.2f}" for r in rates.values())
            figures += [
                Figure(
                    "per-sender rate at a 10 msg/s limit",
                    sum(rates.values()) / len(rates),
                    "msg/s",
                    note=f"{len(rates)} senders: {shown}",
                ),
                Figure(
                    "per-sender rate deviation from the limit",
                    worst * 100,
                    "%",
                    "<= 5",
                    worst <= 0.05,
                    f"{limited_per_sender} messages per sender",
                ),
            ]
    finally:
        stand_in.stop()
    return figures


def main() -> None:
    """Print the figures (``python -m bench.bench_dispatch [--quick]``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--stand-in", nargs=2, metavar=("PORT", "LATENCY"), help="serve the Plum stand-in only"
    )
    args = parser.parse_args()
    if args.stand_in:
        PlumStandIn(float(args.stand_in[1]), int(args.stand_in[0]))
        threading.Event().wait()
    for figure in run(args.quick):
        target = (
            f"  target {figure.target}: {'met' if figure.ok else 'missed'}" if figure.target else ""
        )
        print(f"{figure.name:<48} {figure.value:10.2f} {figure.unit:<8}{target}  {figure.note}")


if __name__ == "__main__":
    main()
