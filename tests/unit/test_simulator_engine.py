"""The simulated platform without HTTP: a fake poster stands for every outside server."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence

import pytest

from plumsms_local.simulator.config import Delays, Faults, SimulatorConfig
from plumsms_local.simulator.engine import (
    INVALID_TO,
    UNSUBSCRIBED,
    PlumFailure,
    ReplyRejected,
    SimRequestError,
    Simulator,
    carrier_keyword,
    parse_reply_document,
)
from plumsms_local.simulator.state import Kind
from plumsms_local.simulator.transport import HttpAnswer, PostFailed

ACCOUNT = "+12435678910"
PHONE = "+19998881234"
APP_URL = "http://app.test/inbound"
RESULT_URL = "http://app.test/status"
REPLY_OK = b'<?xml version="1.0"?><reply><sms_message>thanks</sms_message></reply>'


class FakePoster:
    """Records POSTs; answers with whatever ``answer`` returns (or raises)."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, str]]] = []
        self.answer: Callable[[str], HttpAnswer] = lambda url: HttpAnswer(200, "text/xml", REPLY_OK)
        self._lock = threading.Lock()

    def post_form(self, url: str, fields: Sequence[tuple[str, str]], timeout: float) -> HttpAnswer:
        with self._lock:
            self.posts.append((url, dict(fields)))
        return self.answer(url)

    def to(self, url: str) -> list[dict[str, str]]:
        with self._lock:
            return [fields for posted, fields in self.posts if posted == url]


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.002)


def _stable(count: Callable[[], int], quiet: float = 0.03) -> Callable[[], bool]:
    """A condition true once ``count()`` has not changed for ``quiet`` seconds."""
    last = [count(), time.monotonic()]

    def check() -> bool:
        now = count()
        if now != last[0]:
            last[:] = [now, time.monotonic()]
        return time.monotonic() - last[1] >= quiet

    return check


def make(poster: FakePoster, **overrides: object) -> Simulator:
    settings: dict[str, object] = {
        "sms_numbers": (ACCOUNT,),
        "delays": Delays(sent_seconds=0.002, final_seconds=0.002),
        "seed": 3,
        "application_urls": {ACCOUNT: APP_URL},
    }
    settings.update(overrides)
    return Simulator(SimulatorConfig.model_validate(settings), poster=poster)


@pytest.fixture
def poster() -> FakePoster:
    return FakePoster()


@pytest.fixture
def sim(poster: FakePoster) -> Iterator[Simulator]:
    simulator = make(poster)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("STOP", "opt_out"),
        (" stop ", "opt_out"),
        ("Unsubscribe", "opt_out"),
        ("stopall", "opt_out"),
        ("start", "opt_in"),
        ("YES", "opt_in"),
        ("help", "help"),
        ("stop it", None),
        ("hello", None),
    ],
)
def test_carrier_keywords(body: str, expected: str | None) -> None:
    assert carrier_keyword(body) == expected


def test_queue_refuses_a_bad_to_with_plums_string(sim: Simulator) -> None:
    with pytest.raises(PlumFailure) as caught:
        sim.queue("12", ACCOUNT, "hi", None)
    assert caught.value.message == INVALID_TO


def test_status_progresses_and_posts_each_status(sim: Simulator, poster: FakePoster) -> None:
    # GIVEN a queued message with a result URL
    [message] = sim.queue("19998881234", "2435678910", "hello", RESULT_URL)
    # WHEN the background worker runs THEN queued, sent, delivered reach the result URL
    wait_until(lambda: len(poster.to(RESULT_URL)) == 3)
    posted = poster.to(RESULT_URL)
    assert [p["status"] for p in posted] == ["queued", "sent", "delivered"]
    assert set(posted[0]) == {
        "sms_message_id",
        "status",
        "to",
        "from",
        "body",
        "request_timestamp",
        "result_url",
    }
    assert posted[0]["sms_message_id"] == message.sms_message_id
    stored = sim.status(message.sms_message_id)
    assert [status for status, _ in stored.history] == ["queued", "sent", "delivered"]
    wait_until(lambda: len(sim.state.inbox(PHONE)) == 1)


def test_failing_and_undeliverable_numbers(poster: FakePoster) -> None:
    simulator = make(
        poster, failing_numbers={"+12025550101"}, undeliverable_numbers={"+12025550102"}
    )
    simulator.start()
    try:
        [failing] = simulator.queue("12025550101", ACCOUNT, "a", None)
        [lost] = simulator.queue("12025550102", ACCOUNT, "b", None)
        wait_until(lambda: simulator.status(lost.sms_message_id).status == "undelivered")
        wait_until(lambda: simulator.status(failing.sms_message_id).status == "failed")
        lost_history = [s for s, _ in simulator.status(lost.sms_message_id).history]
        failing_history = [s for s, _ in simulator.status(failing.sms_message_id).history]
        assert lost_history == ["queued", "sent", "undelivered"]
        assert failing_history == ["queued", "failed"]
        assert simulator.state.inbox("+12025550102") == []
    finally:
        simulator.stop()


def _callback_pattern(seed: int) -> Counter[tuple[int, str, str, bool, bool]]:
    poster = FakePoster()
    faults = Faults(callback_drop_rate=0.3, callback_duplicate_rate=0.3, callback_reorder_rate=0.3)
    simulator = make(poster, seed=seed, faults=faults)
    simulator.start()
    try:
        ids = [simulator.queue(PHONE, ACCOUNT, f"m{i}", RESULT_URL)[0] for i in range(8)]
        wait_until(
            lambda: all(simulator.status(m.sms_message_id).status == "delivered" for m in ids)
        )
        index = {m.sms_message_id: n for n, m in enumerate(ids)}

        def settled() -> bool:
            records = simulator.state.callbacks()
            per_message = Counter(index[r.sms_message_id] for r in records if not r.duplicate)
            return all(per_message[n] == 3 for n in range(len(ids)))

        wait_until(settled)
        wait_until(_stable(lambda: len(simulator.state.callbacks())))  # trailing duplicates
        return Counter(
            (index[r.sms_message_id], r.status, r.outcome, r.duplicate, r.reordered)
            for r in simulator.state.callbacks()
        )
    finally:
        simulator.stop()


def test_callback_faults_replay_with_the_same_seed() -> None:
    first, again, other = _callback_pattern(11), _callback_pattern(11), _callback_pattern(12)
    assert first == again
    assert first != other
    outcomes = {(outcome, duplicate, reordered) for _, _, outcome, duplicate, reordered in first}
    # the rates are high enough that each fault shows in a run of 24 callbacks
    assert ("dropped", False, False) in outcomes
    assert any(duplicate for _, duplicate, _ in outcomes)
    assert any(reordered for _, _, reordered in outcomes)


def test_api_faults_replay_with_the_same_seed(poster: FakePoster) -> None:
    def draws(seed: int) -> list[tuple[float, bool, float | None]]:
        simulator = make(poster, seed=seed, faults=Faults(api_error_rate=0.5, api_latency_rate=0.5))
        return [
            (f.latency_seconds, f.server_error, f.hang_seconds)
            for f in (simulator.draw_api_fault() for _ in range(20))
        ]

    assert draws(5) == draws(5)
    assert draws(5) != draws(6)
    assert {error for _, error, _ in draws(5)} == {True, False}


def test_inbound_is_posted_like_plum_and_reply_goes_to_the_sender(
    sim: Simulator, poster: FakePoster
) -> None:
    outcome = sim.phone_sends(PHONE, "2435678910", "hi there")
    assert outcome["forwarded"] is True
    assert outcome["reply"]["accepted"] is True
    [posted] = poster.to(APP_URL)
    assert posted == {
        "sms_message_id": outcome["sms_message_id"],
        "to": "2435678910",
        "from": "19998881234",
        "body": "hi there",
    }
    inbound = sim.status(outcome["sms_message_id"])
    assert (inbound.kind, inbound.status) == (Kind.INBOUND, "received")
    [reply_id] = outcome["reply"]["sms_message_ids"]
    reply = sim.status(reply_id)
    assert (reply.kind, reply.to, reply.from_, reply.in_reply_to) == (
        Kind.REPLY,
        PHONE,
        ACCOUNT,
        inbound.sms_message_id,
    )
    wait_until(lambda: [e.body for e in sim.state.inbox(PHONE)] == ["thanks"])


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (HttpAnswer(500, "text/xml", REPLY_OK), "HTTP 500"),
        (HttpAnswer(200, "text/xml", b"<reply><sms_message>x</sms_message></reply>"), "prologue"),
        (HttpAnswer(200, "text/xml", b'<?xml version="1.0"?><reply>'), "not well-formed"),
        (HttpAnswer(200, "text/xml", b'<?xml version="1.0"?><answer/>'), "reply schema"),
        (
            HttpAnswer(
                200, "text/xml", b'<?xml version="1.0"?><reply><sms_message bcc="1"/></reply>'
            ),
            "reply schema",
        ),
        (
            HttpAnswer(
                200,
                "text/xml",
                b'<?xml version="1.0"?><!DOCTYPE reply [<!ENTITY x "y">]><reply/>',
            ),
            "DTD",
        ),
    ],
)
def test_invalid_answers_are_rejected(answer: HttpAnswer, error: str) -> None:
    with pytest.raises(ReplyRejected, match=error):
        parse_reply_document(answer)


def test_an_invalid_reply_is_recorded_and_not_sent(sim: Simulator, poster: FakePoster) -> None:
    poster.answer = lambda url: HttpAnswer(200, "text/xml", b"not xml")
    outcome = sim.phone_sends(PHONE, ACCOUNT, "hi")
    assert outcome["reply"]["accepted"] is False
    assert "prologue" in outcome["reply"]["error"]
    assert [m.kind for m in sim.state.all_messages()] == [Kind.INBOUND]
    assert sim.status(outcome["sms_message_id"]).reply_error == outcome["reply"]["error"]


def test_a_reply_from_a_foreign_number_is_rejected(sim: Simulator, poster: FakePoster) -> None:
    document = b'<?xml version="1.0"?><reply><sms_message from="2025550199">x</sms_message></reply>'
    poster.answer = lambda url: HttpAnswer(200, "text/xml", document)
    outcome = sim.phone_sends(PHONE, ACCOUNT, "hi")
    assert outcome["reply"]["accepted"] is False
    assert "account's SMS numbers" in outcome["reply"]["error"]


def test_an_unreachable_application_url_is_reported(sim: Simulator, poster: FakePoster) -> None:
    def refuse(url: str) -> HttpAnswer:
        raise PostFailed("connection refused")

    poster.answer = refuse
    outcome = sim.phone_sends(PHONE, ACCOUNT, "hi")
    assert outcome["reply"]["accepted"] is False
    assert outcome["reply"]["error"] == "connection refused"


def test_stop_blacklists_but_lets_one_confirmation_through(
    sim: Simulator, poster: FakePoster
) -> None:
    # GIVEN the application confirms an opt-out
    sim.phone_sends(PHONE, ACCOUNT, " Stop ")
    # THEN the STOP was forwarded, the phone is blacklisted, the confirmation arrives
    assert poster.to(APP_URL)[0]["body"] == " Stop "
    assert sim.state.unsubscribed() == [PHONE]
    wait_until(lambda: len(sim.state.inbox(PHONE)) == 1)
    with pytest.raises(PlumFailure) as caught:
        sim.queue(PHONE, ACCOUNT, "promo", None)
    assert caught.value.message == UNSUBSCRIBED
    # WHEN the phone texts START THEN sends work again
    sim.phone_sends(PHONE, ACCOUNT, "start")
    assert sim.state.unsubscribed() == []
    assert sim.queue(PHONE, ACCOUNT, "welcome back", None)


def test_a_reply_to_an_unsubscribed_phone_ends_undelivered(
    sim: Simulator, poster: FakePoster
) -> None:
    sim.state.unsubscribe("+12025550150")
    document = b'<?xml version="1.0"?><reply><sms_message to="12025550150">x</sms_message></reply>'
    poster.answer = lambda url: HttpAnswer(200, "text/xml", document)
    [reply_id] = sim.phone_sends(PHONE, ACCOUNT, "hi")["reply"]["sms_message_ids"]
    wait_until(lambda: sim.status(reply_id).status == "undelivered")


def test_help_is_answered_by_the_carrier(sim: Simulator, poster: FakePoster) -> None:
    outcome = sim.phone_sends(PHONE, ACCOUNT, "help")
    assert outcome["forwarded"] is False
    assert outcome["sms_message_id"] is None
    assert poster.posts == []
    assert sim.state.all_messages() == []
    [entry] = sim.state.inbox(PHONE)
    assert (entry.from_, entry.source) == (ACCOUNT, "carrier")


def test_phone_must_text_an_sms_number(sim: Simulator) -> None:
    with pytest.raises(SimRequestError) as caught:
        sim.phone_sends(PHONE, "+12025550100", "hi")
    assert caught.value.status == 400


def test_reset_forgets_traffic_and_keeps_application_urls(sim: Simulator) -> None:
    sim.queue(PHONE, ACCOUNT, "x", None)
    sim.set_faults({"callback_drop_rate": 1.0})
    sim.state.unsubscribe("+12025550150")
    sim.set_application_url(ACCOUNT, "http://app.test/other")
    sim.reset()
    assert sim.state.all_messages() == []
    assert sim.faults == Faults()
    assert sim.state.unsubscribed() == []
    assert sim.state.application_url(ACCOUNT) == "http://app.test/other"
