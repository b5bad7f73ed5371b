"""Result-URL callbacks over real HTTP: progression, final statuses and injected faults."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlencode

import pytest
import urllib3

from plumsms_local.simulator import (
    Delays,
    Faults,
    PlumSimulator,
    SimulatorClient,
    SimulatorConfig,
)
from plumsms_local.simulator.testing import RecordedRequest, RecordingServer

USER, PASSWORD = "acme", "s3cret"
ACCOUNT = "2435678910"
PHONE = "19998881234"
FAILING, UNDELIVERABLE = "+12025550101", "+12025550102"
http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(total=10))
T = TypeVar("T")


def poll(fetch: Callable[[], T], until: Callable[[T], bool], timeout: float = 5.0) -> T:
    """Fetch until ``until`` holds; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if until(value):
            return value
        assert time.monotonic() < deadline, f"gave up waiting; last value: {value!r}"
        time.sleep(0.01)


def settled_callbacks(client: SimulatorClient, originals: int) -> list[dict[str, Any]]:
    """The callback log once ``originals`` non-duplicates are in and nothing moved for 50 ms."""
    poll(client.callbacks, lambda log: sum(not c["duplicate"] for c in log) >= originals)
    seen: list[int] = []

    def quiet(log: list[dict[str, Any]]) -> bool:
        seen.append(len(log))
        return len(seen) >= 6 and len(set(seen[-6:])) == 1

    return poll(client.callbacks, quiet)


@pytest.fixture
def receiver() -> Iterator[RecordingServer]:
    with RecordingServer() as server:
        yield server


def start_sim(faults: Faults | None = None, seed: int = 1) -> PlumSimulator:
    config = SimulatorConfig(
        username=USER,
        password=PASSWORD,
        sms_numbers=(ACCOUNT,),
        failing_numbers=frozenset({FAILING}),
        undeliverable_numbers=frozenset({UNDELIVERABLE}),
        delays=Delays(sent_seconds=0.005, final_seconds=0.005),
        faults=faults or Faults(),
        seed=seed,
    )
    server = PlumSimulator(config)
    server.start()
    return server


@pytest.fixture
def sim() -> Iterator[PlumSimulator]:
    server = start_sim()
    yield server
    server.stop()


def queue(sim: PlumSimulator, result_url: str, to: str = PHONE, body: str = "hi") -> list[str]:
    response = http.request(
        "POST",
        f"{sim.api_url}sms/queue.json",
        body=urlencode({"to": to, "from": ACCOUNT, "body": body, "result_url": result_url}),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            **urllib3.make_headers(basic_auth=f"{USER}:{PASSWORD}"),
        },
    )
    assert response.status == 200, response.data
    return [m["sms_message_id"] for m in json.loads(response.data)["result"]["sms_messages"]]


def statuses(requests: list[RecordedRequest]) -> list[str]:
    return [r.form["status"] for r in requests]


def test_each_status_is_posted_form_encoded(sim: PlumSimulator, receiver: RecordingServer) -> None:
    [sms_id] = queue(sim, receiver.url("/status?ref=abc"), body="fish & chips")
    received = receiver.wait_for(3)
    assert statuses(received) == ["queued", "sent", "delivered"]
    first = received[0]
    assert first.method == "POST"
    assert first.path == "/status?ref=abc"
    assert first.content_type == "application/x-www-form-urlencoded"
    assert first.form == {
        "sms_message_id": sms_id,
        "status": "queued",
        "to": PHONE,
        "from": ACCOUNT,
        "body": "fish & chips",
        "request_timestamp": first.form["request_timestamp"],
        "result_url": receiver.url("/status?ref=abc"),
    }
    assert first.form["request_timestamp"].isdigit()
    # the phone got the message once it was delivered
    [entry] = SimulatorClient(sim.base_url).wait_for_inbox("+19998881234")
    assert (entry["from"], entry["body"], entry["sms_message_id"]) == (
        "+12435678910",
        "fish & chips",
        sms_id,
    )


def test_every_part_gets_its_own_callbacks(sim: PlumSimulator, receiver: RecordingServer) -> None:
    ids = queue(sim, receiver.url(), body="x" * 200)
    received = receiver.wait_for(6)
    for sms_id in ids:
        mine = [r for r in received if r.form["sms_message_id"] == sms_id]
        assert statuses(mine) == ["queued", "sent", "delivered"]
    [entry] = SimulatorClient(sim.base_url).wait_for_inbox("+19998881234")
    assert (entry["parts"], entry["body"], entry["sms_message_ids"]) == (2, "x" * 200, ids)


@pytest.mark.parametrize(
    ("to", "expected"),
    [(FAILING, ["queued", "failed"]), (UNDELIVERABLE, ["queued", "sent", "undelivered"])],
)
def test_configured_numbers_end_failed_or_undelivered(
    sim: PlumSimulator, receiver: RecordingServer, to: str, expected: list[str]
) -> None:
    [sms_id] = queue(sim, receiver.url(), to=to)
    SimulatorClient(sim.base_url).wait_for_status(sms_id, {expected[-1]})
    assert statuses(receiver.wait_for(len(expected))) == expected
    assert SimulatorClient(sim.base_url).inbox(to) == []


def test_no_result_url_no_callbacks(sim: PlumSimulator, receiver: RecordingServer) -> None:
    [sms_id] = queue(sim, "")
    SimulatorClient(sim.base_url).wait_for_status(sms_id, {"delivered"})
    assert SimulatorClient(sim.base_url).callbacks() == []


def test_duplicates_are_sent_twice(receiver: RecordingServer) -> None:
    sim = start_sim(Faults(callback_duplicate_rate=1.0))
    try:
        queue(sim, receiver.url())
        received = receiver.wait_for(6)
        assert statuses(received) == ["queued", "queued", "sent", "sent", "delivered", "delivered"]
        log = poll(SimulatorClient(sim.base_url).callbacks, lambda log: len(log) == 6)
        assert [c["duplicate"] for c in log] == [False, True] * 3
    finally:
        sim.stop()


def test_drops_send_nothing_and_are_logged(receiver: RecordingServer) -> None:
    sim = start_sim()
    client = SimulatorClient(sim.base_url)
    try:
        client.set_faults(callback_drop_rate=1.0)  # at runtime, through the admin route
        [sms_id] = queue(sim, receiver.url())
        client.wait_for_status(sms_id, {"delivered"})
        log = poll(client.callbacks, lambda log: len(log) == 3)
        assert [(c["status"], c["outcome"]) for c in log] == [
            ("queued", "dropped"),
            ("sent", "dropped"),
            ("delivered", "dropped"),
        ]
        assert receiver.requests == []
    finally:
        sim.stop()


def test_reordering_delivers_a_status_after_its_successor(receiver: RecordingServer) -> None:
    sim = start_sim(Faults(callback_reorder_rate=1.0))
    try:
        queue(sim, receiver.url())
        received = receiver.wait_for(3)
        # queued is held back until sent has gone; the final status is never held
        assert statuses(received) == ["sent", "queued", "delivered"]
        log = poll(SimulatorClient(sim.base_url).callbacks, lambda log: len(log) == 3)
        assert [(c["status"], c["reordered"]) for c in log] == [
            ("sent", False),
            ("queued", True),
            ("delivered", False),
        ]
    finally:
        sim.stop()


def test_a_failing_result_url_is_logged(sim: PlumSimulator) -> None:
    [sms_id] = queue(sim, "http://127.0.0.1:9/closed")
    client = SimulatorClient(sim.base_url)
    log = poll(client.callbacks, lambda log: len(log) == 3)
    assert {c["outcome"] for c in log} == {"error"}
    assert all(c["error"] for c in log)
    client.wait_for_status(sms_id, {"delivered"})  # a failing callback changes nothing


def test_the_same_seed_replays_the_same_faults(receiver: RecordingServer) -> None:
    faults = Faults(callback_drop_rate=0.4, callback_duplicate_rate=0.4)

    def run(seed: int) -> list[tuple[int, str, str, bool]]:
        sim = start_sim(faults, seed=seed)
        client = SimulatorClient(sim.base_url)
        try:
            ids = [queue(sim, receiver.url(), body=f"m{n}")[0] for n in range(4)]
            for sms_id in ids:
                client.wait_for_status(sms_id, {"delivered"})
            index = {sms_id: n for n, sms_id in enumerate(ids)}
            return sorted(
                (index[c["sms_message_id"]], c["status"], c["outcome"], c["duplicate"])
                for c in settled_callbacks(client, originals=12)
            )
        finally:
            sim.stop()

    first = run(21)
    assert first == run(21)
    assert first != run(22)
    assert {outcome for _, _, outcome, _ in first} == {"sent", "dropped"}
