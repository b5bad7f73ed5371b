"""The dispatcher against the embedded DynamoDB server and the Plum DEV simulator over HTTP.

Through the handlers (ScheduledSendFunction with EventBridge's scheduled event, and
MessagesApiFunction for send-now): send-now, scheduled, recurring, opted-out, Plum's
refusals and transient failures. Then the fault cases with the dispatcher built from the
same adapters and a fast-timeout Plum client: latency, 5xx and timeouts at random, lost
answers, a dispatcher killed mid-batch, and two dispatchers at once. Each fault test ends
by counting what the simulator received: every message exactly once.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.exceptions import ClientError
from urllib3.util import Timeout

from plumsms.adapters import dispatch_trigger
from plumsms.adapters.dispatch_trigger import register_in_process
from plumsms.adapters.dynamodb.outbox import DynamoOutbox
from plumsms.adapters.dynamodb.store import DynamoMessageStore
from plumsms.adapters.events import DETAIL_TYPE, RecordingPublisher
from plumsms.adapters.plum.client import PlumClient
from plumsms.domain.models import utc_now
from plumsms.domain.plum import PlumGateway, PlumSmsResource, PlumUnavailable
from plumsms.usecases.dispatch import DispatchConfig, Dispatcher, DispatchReport
from plumsms_local import dynamodb
from plumsms_local.gateway import proxy_event
from plumsms_local.lambda_runtime import LocalContext, LocalFunction
from plumsms_local.simulator import Delays, PlumSimulator, SimulatorConfig
from plumsms_local.simulator.state import Kind
from plumsms_local.simulator.testing import RecordingServer
from plumsms_local.template import PROJECT_ROOT
from tests.factories import outbound_message

SMS_NUMBER = "+12435678910"
RECIPIENT = "+12125551234"
LANDLINE = "+13105550100"
UNSUBSCRIBED = "+13105550199"
USER, PASSWORD = "user", "pass"
FAST = Timeout(connect=0.5, read=0.6)


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def callbacks(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingServer]:
    """Where Plum's status callbacks go (the bundle's public base URL, here)."""
    with RecordingServer() as server:
        monkeypatch.setenv("PUBLIC_BASE_URL", server.url())
        yield server


@pytest.fixture
def sim(
    monkeypatch: pytest.MonkeyPatch, function_env: dict[str, str], callbacks: RecordingServer
) -> Iterator[PlumSimulator]:
    config = SimulatorConfig(
        username=USER,
        password=PASSWORD,
        sms_numbers=(SMS_NUMBER,),
        landlines=frozenset({LANDLINE}),
        unsubscribed=frozenset({UNSUBSCRIBED}),
        delays=Delays(sent_seconds=0.05, final_seconds=0.05),
        seed=7,
        http_timeout_seconds=1.0,
    )
    simulator = PlumSimulator(config)
    simulator.start()
    monkeypatch.setenv("PLUM_API_URL", simulator.api_url)
    yield simulator
    simulator.stop()


@pytest.fixture
def store(table_name: str, dynamo_server: dynamodb.EmbeddedDynamoDB) -> DynamoMessageStore:
    return DynamoMessageStore(table_name, client=dynamo_server.client())


@pytest.fixture
def outbox(store: DynamoMessageStore) -> DynamoOutbox:
    return DynamoOutbox(store)


def scheduled_event() -> dict[str, Any]:
    event: dict[str, Any] = json.loads(
        (PROJECT_ROOT / "events" / "scheduled_send.json").read_text()
    )
    return copy.deepcopy(event)


class Api:
    """MessagesApiFunction called with API Gateway proxy events."""

    def __init__(self, function: LocalFunction) -> None:
        self.function = function

    def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        resource, params = path, None
        if path.count("/") == 2:
            resource, params = "/messages/{id}", {"id": path.rsplit("/", 1)[1]}
        data = json.dumps(body).encode() if body is not None else b""
        event = proxy_event(
            method,
            path,
            {"content-type": "application/json"},
            data,
            resource=resource,
            path_parameters=params,
        )
        result = self.function.invoke(event)
        answer: dict[str, Any] = json.loads(result["body"])
        assert result["statusCode"] < 300, answer
        return answer

    def send(self, **fields: Any) -> dict[str, Any]:
        payload = {"to": RECIPIENT, "from": SMS_NUMBER, "body": "Hello"} | fields
        return self.call("POST", "/messages", payload)


@pytest.fixture
def handlers(
    sim: PlumSimulator,
    load_function: Callable[[str], LocalFunction],
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Api, LocalFunction]:
    """The API (send-now wakes the dispatcher in a thread, as the local stack does) and
    the dispatcher function."""
    name = f"ScheduledSendFunction-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("SCHEDULED_SEND_FUNCTION", name)
    monkeypatch.setenv("SEND_RATE_PER_SECOND", "50")
    dispatcher = load_function("scheduled_send")

    def wake(event: dict[str, Any]) -> None:
        threading.Thread(target=dispatcher.invoke, args=(event,), daemon=True).start()

    monkeypatch.setattr(dispatch_trigger, "_hooks", {})  # this test's hooks only
    register_in_process(name, wake)
    return Api(load_function("messages_api")), dispatcher


def item(ddb: Any, table: str, message_id: str) -> dict[str, Any]:
    found = ddb.get_item(
        TableName=table, Key={"PK": {"S": f"MSG#{message_id}"}, "SK": {"S": "MSG"}}
    ).get("Item")
    assert found is not None
    return dict(found)


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def ref_of(url: str) -> str | None:
    values = parse_qs(urlsplit(url).query).get("ref")
    return values[0] if values else None


def sends_by_ref(sim: PlumSimulator) -> Counter[str | None]:
    """How many times Plum accepted each of our messages (parts of one send count once)."""
    groups = {
        m.group_id: ref_of(m.result_url)
        for m in sim.simulator.state.all_messages()
        if m.kind is Kind.OUTBOUND
    }
    return Counter(groups.values())


def published(function: LocalFunction) -> list[dict[str, Any]]:
    """The change events a function published (no EVENT_BUS_NAME: its in-memory recorder)."""
    publisher = function.module().function.basics.publisher
    assert isinstance(publisher, RecordingPublisher)
    return [e["detail"] for e in publisher.events if e["detail-type"] == DETAIL_TYPE]


def make_due(ddb: Any, table: str, message_id: str) -> None:
    """Time passes: the message's retry (or its scheduled time) is due now."""
    past = "2000-01-01T00:00:00.000000Z"
    ddb.update_item(
        TableName=table,
        Key={"PK": {"S": f"MSG#{message_id}"}, "SK": {"S": "MSG"}},
        UpdateExpression="SET due_sk = :sk",
        ConditionExpression="attribute_exists(due_sk)",
        ExpressionAttributeValues={":sk": {"S": f"{past}#{message_id}"}},
    )


# -- through the handlers ------------------------------------------------------------------


def test_send_now_leaves_within_seconds_with_its_result_url(
    handlers: tuple[Api, LocalFunction],
    sim: PlumSimulator,
    ddb: Any,
    table_name: str,
    callbacks: RecordingServer,
) -> None:
    api, _ = handlers
    # GIVEN a send-now request
    started = time.monotonic()
    message = api.send(body="Your table is ready")
    # WHEN the woken dispatcher has run
    # (one read: two could see "scheduled", then "sending", and pass mid-flight)
    wait_for(
        lambda: item(ddb, table_name, message["id"])["status"]["S"] not in {"sending", "scheduled"}
    )
    # THEN Plum got it once, within seconds, with our result URL carrying key and ref
    assert time.monotonic() - started < 5
    sent = [m for m in sim.simulator.state.all_messages() if m.kind is Kind.OUTBOUND]
    assert len(sent) == 1
    assert (sent[0].to, sent[0].from_, sent[0].body) == (
        RECIPIENT,
        SMS_NUMBER,
        "Your table is ready",
    )
    url = urlsplit(sent[0].result_url)
    assert url.path == "/plum/status"
    assert parse_qs(url.query) == {"key": ["test-webhook-key-0123456789"], "ref": [message["id"]]}
    # AND the log holds Plum's id, status queued (or later) and the whole history
    stored = item(ddb, table_name, message["id"])
    assert stored["sms_message_id"]["S"] == sent[0].sms_message_id
    assert stored["plum_id"]["S"] == sent[0].sms_message_id
    history = [h["M"]["status"]["S"] for h in stored["history"]["L"]]
    assert history[:3] == ["scheduled", "sending", "queued"]
    assert "claim_token" not in stored and "due_sk" not in stored
    # AND Plum's callbacks reach the result URL with our ref
    callbacks.wait_for(1, timeout=5)
    assert ref_of(callbacks.requests[0].path) == message["id"]


def test_a_scheduled_message_waits_for_its_time(
    handlers: tuple[Api, LocalFunction], sim: PlumSimulator, ddb: Any, table_name: str
) -> None:
    api, dispatcher = handlers
    later = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    message = api.send(send_at=later)
    # WHEN the scheduled rule fires before the message is due
    report = dispatcher.invoke(scheduled_event())
    # THEN nothing is sent
    assert sends_by_ref(sim) == Counter()
    assert report["counts"].get("sent", 0) == 0
    # WHEN it comes due and the rule fires again
    make_due(ddb, table_name, message["id"])
    report = dispatcher.invoke(scheduled_event())
    # THEN it is sent once
    assert report["counts"]["sent"] == 1
    assert sends_by_ref(sim) == Counter({message["id"]: 1})
    assert item(ddb, table_name, message["id"])["status"]["S"] in {"queued", "sent", "delivered"}


def test_a_recurring_message_schedules_its_next_occurrence_until_the_count(
    handlers: tuple[Api, LocalFunction], sim: PlumSimulator, ddb: Any, table_name: str
) -> None:
    api, dispatcher = handlers
    # GIVEN a daily message, twice, starting now
    first = api.send(
        body="Daily reminder",
        recurrence={"frequency": "daily", "count": 2, "time_zone": "America/New_York"},
    )
    wait_for(lambda: sends_by_ref(sim)[first["id"]] == 1)
    wait_for(lambda: item(ddb, table_name, first["id"])["status"]["S"] != "sending")
    # THEN the second occurrence exists, scheduled a day later at the same local time
    series = [i for i in ddb.scan(TableName=table_name)["Items"] if i["SK"]["S"] == "MSG"]
    assert len(series) == 2
    second = next(i for i in series if i["id"]["S"] != first["id"])
    assert second["status"]["S"] == "scheduled"
    assert second["body"]["S"] == "Daily reminder"
    first_at = datetime.fromisoformat(first["send_at"])
    second_at = datetime.fromisoformat(second["send_at"]["S"])
    assert timedelta(hours=23) <= second_at - first_at <= timedelta(hours=25)
    assert json.loads(second["schedule"]["S"])["occurrence"] == 2
    # WHEN the second comes due and is sent
    make_due(ddb, table_name, second["id"]["S"])
    dispatcher.invoke(scheduled_event())
    # THEN it went out once and the series ended (no third message)
    assert sends_by_ref(sim) == Counter({first["id"]: 1, second["id"]["S"]: 1})
    assert len([i for i in ddb.scan(TableName=table_name)["Items"] if i["SK"]["S"] == "MSG"]) == 2


def test_plum_refusals_fail_the_message_with_plums_reason(
    handlers: tuple[Api, LocalFunction], sim: PlumSimulator, ddb: Any, table_name: str
) -> None:
    api, dispatcher = handlers
    landline = api.send(to=LANDLINE, send_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat())
    make_due(ddb, table_name, landline["id"])
    dispatcher.invoke(scheduled_event())
    stored = item(ddb, table_name, landline["id"])
    assert stored["status"]["S"] == "failed"
    assert "not a mobile number" in stored["error"]["S"]
    # AND the failure went to the status bus, where the failed-SMS rule matches it
    assert [
        (d["message_id"], d["previous_status"], d["status"], d["source"])
        for d in published(dispatcher)
    ] == [(landline["id"], "sending", "failed", "dispatcher")]


def test_plums_unsubscribed_error_records_an_opt_out_and_suppresses_the_rest(
    handlers: tuple[Api, LocalFunction], sim: PlumSimulator, ddb: Any, table_name: str
) -> None:
    api, dispatcher = handlers
    # GIVEN two messages to a number Plum knows as unsubscribed: one due, one tomorrow
    soon = api.send(to=UNSUBSCRIBED, send_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat())
    tomorrow = api.send(
        to=UNSUBSCRIBED, send_at=(datetime.now(UTC) + timedelta(days=1)).isoformat()
    )
    make_due(ddb, table_name, soon["id"])
    # WHEN the dispatcher runs
    dispatcher.invoke(scheduled_event())
    # THEN the due one failed with Plum's reason, the number is opted out locally,
    # and the pending one is suppressed
    failed = item(ddb, table_name, soon["id"])
    assert failed["status"]["S"] == "failed"
    assert "unsubscribed" in failed["error"]["S"]
    opt_out = ddb.get_item(
        TableName=table_name, Key={"PK": {"S": f"OPTOUT#{UNSUBSCRIBED}"}, "SK": {"S": "OPTOUT"}}
    )["Item"]
    assert opt_out["keyword"]["S"] == "PLUM-UNSUBSCRIBED"
    assert item(ddb, table_name, tomorrow["id"])["status"]["S"] == "suppressed"
    # AND both went to the status bus
    assert sorted((d["message_id"], d["status"]) for d in published(dispatcher)) == sorted(
        [(soon["id"], "failed"), (tomorrow["id"], "suppressed")]
    )


def test_a_local_opt_out_is_skipped_as_suppressed(
    handlers: tuple[Api, LocalFunction], sim: PlumSimulator, ddb: Any, table_name: str
) -> None:
    api, dispatcher = handlers
    message = api.send(send_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat())
    # GIVEN the recipient opted out after it was scheduled (written directly: no STOP flow)
    ddb.put_item(
        TableName=table_name,
        Item={
            "PK": {"S": f"OPTOUT#{RECIPIENT}"},
            "SK": {"S": "OPTOUT"},
            "number": {"S": RECIPIENT},
            "keyword": {"S": "STOP"},
            "at": {"S": "2025-01-01T00:00:00.000000Z"},
            "message_id": {"S": "x"},
        },
    )
    make_due(ddb, table_name, message["id"])
    report = dispatcher.invoke(scheduled_event())
    assert report["counts"]["suppressed"] == 1
    assert item(ddb, table_name, message["id"])["status"]["S"] == "suppressed"
    assert sends_by_ref(sim) == Counter()
    assert [(d["message_id"], d["status"]) for d in published(dispatcher)] == [
        (message["id"], "suppressed")
    ]


def test_a_5xx_from_plum_is_retried_later_then_sent_once(
    handlers: tuple[Api, LocalFunction], sim: PlumSimulator, ddb: Any, table_name: str
) -> None:
    api, dispatcher = handlers
    message = api.send(send_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat())
    make_due(ddb, table_name, message["id"])
    # GIVEN Plum answers 503 to everything
    sim.simulator.set_faults({"api_error_rate": 1.0})
    report = dispatcher.invoke(scheduled_event())
    # THEN the message is scheduled again with a backoff, its attempt and the reason
    stored = item(ddb, table_name, message["id"])
    assert report["counts"]["retried"] == 1
    assert stored["status"]["S"] == "scheduled"
    assert stored["attempts"]["N"] == "1"
    assert "Plum unavailable" in stored["error"]["S"]
    retry_at = datetime.fromisoformat(stored["due_sk"]["S"].split("#")[0])
    assert retry_at > datetime.now(UTC) + timedelta(seconds=10)
    # WHEN Plum recovers and the retry is due
    sim.simulator.set_faults({"api_error_rate": 0.0})
    make_due(ddb, table_name, message["id"])
    dispatcher.invoke(scheduled_event())
    # THEN it is sent exactly once
    assert sends_by_ref(sim) == Counter({message["id"]: 1})


def test_no_claim_is_made_when_the_invocation_has_too_little_time_left(
    handlers: tuple[Api, LocalFunction], sim: PlumSimulator, ddb: Any, table_name: str
) -> None:
    api, _ = handlers
    message = api.send(send_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat())
    make_due(ddb, table_name, message["id"])
    # GIVEN an invocation that is already within its stop margin (a third of 60 s, 20 s)
    short = LocalFunction("scheduled_send", PROJECT_ROOT / "functions/scheduled_send/app.py", 0.05)
    report = short.invoke(scheduled_event())
    # THEN it stops before claiming anything and the message stays due
    assert report["stopped"] == "time"
    assert item(ddb, table_name, message["id"])["status"]["S"] == "scheduled"
    assert sends_by_ref(sim) == Counter()


# -- fault tests with the dispatcher itself ----------------------------------------------------


def schedule_many(outbox: DynamoOutbox, count: int, body: str = "Batch message") -> list[str]:
    from plumsms.domain.sending import Schedule  # noqa: PLC0415

    now = datetime.now(UTC) - timedelta(seconds=1)
    ids = []
    for index in range(count):
        message = outbound_message(
            now, to=f"+1212555{index:04d}", from_=SMS_NUMBER, body=f"{body} {index}"
        )
        outbox.create(message, Schedule())
        ids.append(message.id)
    return ids


def plum_client(sim: PlumSimulator) -> PlumClient:
    return PlumClient(sim.api_url, USER, PASSWORD, timeout=FAST, retries=1, backoff_factor=0.01)


class Timeline:
    """The dispatchers' clock in these tests: real time plus what the test fast-forwarded,
    so backoffs and stale claims come due without sleeping. Steps stay small (seconds):
    a stale claim is looked up at Plum in a window around its claim time, and Plum's
    stand-in records real time."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return utc_now() + self.offset

    def step(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


def dispatcher_for(
    outbox: DynamoOutbox,
    plum: PlumGateway,
    callbacks: RecordingServer,
    clock: Timeline | None = None,
    **config: Any,
) -> Dispatcher:
    settings: dict[str, Any] = {
        "rate_per_second": 500.0,
        "concurrency": 8,
        "backoff_base": timedelta(milliseconds=10),
        "backoff_max": timedelta(milliseconds=50),
        "check_delay": timedelta(milliseconds=50),
        "stop_margin": timedelta(0),
        "max_attempts": 50,
    } | config
    base = callbacks.url("/")
    return Dispatcher(
        outbox=outbox,
        plum=lambda: plum,
        result_url=lambda ref: f"{base}plum/status?key=k&ref={ref}",
        config=DispatchConfig(**settings),
        clock=clock or utc_now,
    )


def plenty_of_time() -> int:
    return 60_000


def statuses(ddb: Any, table: str, ids: Sequence[str]) -> Counter[str]:
    return Counter(item(ddb, table, i)["status"]["S"] for i in ids)


def run_until_all_sent(
    dispatcher: Dispatcher,
    ddb: Any,
    table: str,
    ids: Sequence[str],
    clock: Timeline,
    rounds: int = 40,
) -> list[DispatchReport]:
    """Run the dispatcher as the schedule would, until every message left the outbox;
    between runs its clock moves on a second (backoffs and checks come due)."""
    reports = []
    for _ in range(rounds):
        reports.append(dispatcher.run(plenty_of_time))
        pending = statuses(ddb, table, ids)
        if pending["scheduled"] + pending["sending"] == 0:
            return reports
        clock.step(1)
    raise AssertionError(f"still pending after {rounds} runs: {statuses(ddb, table, ids)}")


def assert_exactly_once(sim: PlumSimulator, ddb: Any, table: str, ids: Sequence[str]) -> None:
    sent = sends_by_ref(sim)
    assert {i: sent[i] for i in ids} == dict.fromkeys(ids, 1)
    assert set(sent) == set(ids)
    # Each message holds the id Plum gave the one send it accepted.
    plum_ids = {
        ref_of(m.result_url): m.sms_message_id
        for m in sim.simulator.state.all_messages()
        if m.kind is Kind.OUTBOUND
    }
    for message_id in ids:
        stored = item(ddb, table, message_id)
        assert stored["sms_message_id"]["S"] == plum_ids[message_id]
        assert "claim_token" not in stored


def test_latency_5xx_and_timeouts_at_random_still_send_each_message_once(
    sim: PlumSimulator,
    outbox: DynamoOutbox,
    callbacks: RecordingServer,
    ddb: Any,
    table_name: str,
) -> None:
    # GIVEN 40 due messages and a Plum that is slow, answers 503 or hangs up at random
    ids = schedule_many(outbox, 40)
    sim.simulator.set_faults(
        {
            "api_latency_rate": 0.3,
            "api_latency_seconds": 0.2,
            "api_error_rate": 0.25,
            "api_timeout_rate": 0.15,
            "api_timeout_seconds": 0.3,
        }
    )
    clock = Timeline()
    dispatcher = dispatcher_for(outbox, plum_client(sim), callbacks, clock)
    # WHEN the dispatcher runs until the outbox is empty
    reports = run_until_all_sent(dispatcher, ddb, table_name, ids, clock)
    # THEN faults happened (retries and checks) and every message went out exactly once
    totals: Counter[str] = sum((r.counts for r in reports), Counter())
    assert totals["retried"] + totals["to_check"] > 0
    assert statuses(ddb, table_name, ids)["failed"] == 0
    assert_exactly_once(sim, ddb, table_name, ids)


class LosesAnswers:
    """Plum accepts every other send but the answer never arrives (maybe_sent)."""

    def __init__(self, plum: PlumGateway) -> None:
        self.plum = plum
        self.calls = 0
        self.lock = threading.Lock()

    def queue(
        self, to: str, from_: str, body: str, result_url: str | None = None
    ) -> list[PlumSmsResource]:
        resources = self.plum.queue(to, from_, body, result_url)
        with self.lock:
            self.calls += 1
            lose = self.calls % 2 == 1
        if lose:
            raise PlumUnavailable("no answer (ReadTimeoutError)", maybe_sent=True)
        return resources

    def __getattr__(self, name: str) -> Any:
        return getattr(self.plum, name)


def test_answers_lost_after_plum_queued_are_reconciled_not_resent(
    sim: PlumSimulator,
    outbox: DynamoOutbox,
    callbacks: RecordingServer,
    ddb: Any,
    table_name: str,
) -> None:
    ids = schedule_many(outbox, 12)
    plum = LosesAnswers(plum_client(sim))
    clock = Timeline()
    dispatcher = dispatcher_for(outbox, plum, callbacks, clock)
    reports = run_until_all_sent(dispatcher, ddb, table_name, ids, clock)
    totals: Counter[str] = sum((r.counts for r in reports), Counter())
    # THEN the lost ones were found in Plum's list (by ref), none was sent twice
    assert totals["reconciled"] == 6
    assert totals["resent"] == 0
    assert (
        statuses(ddb, table_name, ids)["queued"]
        + statuses(ddb, table_name, ids)["sent"]
        + statuses(ddb, table_name, ids)["delivered"]
        == 12
    )
    assert_exactly_once(sim, ddb, table_name, ids)


class Killed(BaseException):
    """The Lambda runtime ending the process: nothing after it runs."""


class DiesMidBatch:
    """Forwards some sends, then dies: once right after Plum accepted, then before."""

    def __init__(self, plum: PlumGateway, after: int) -> None:
        self.plum = plum
        self.after = after
        self.calls = 0
        self.lock = threading.Lock()

    def queue(
        self, to: str, from_: str, body: str, result_url: str | None = None
    ) -> list[PlumSmsResource]:
        with self.lock:
            self.calls += 1
            call = self.calls
        if call > self.after + 3:
            raise Killed  # dead: the request never leaves
        resources = self.plum.queue(to, from_, body, result_url)
        if call > self.after:
            raise Killed  # Plum has it, the answer dies with the process
        return resources

    def __getattr__(self, name: str) -> Any:
        return getattr(self.plum, name)


def test_a_dispatcher_killed_mid_batch_loses_nothing_and_sends_nothing_twice(
    sim: PlumSimulator,
    outbox: DynamoOutbox,
    callbacks: RecordingServer,
    ddb: Any,
    table_name: str,
) -> None:
    # GIVEN 20 due messages and a dispatcher that dies after 5 answered sends
    ids = schedule_many(outbox, 20)
    dying = dispatcher_for(
        outbox,
        DiesMidBatch(plum_client(sim), after=5),
        callbacks,
        stale_after=timedelta(milliseconds=300),
    )
    dying.run(plenty_of_time)
    # THEN the 5 answered sends are recorded; the 15 others are left claimed ("sending"):
    # 3 of them reached Plum before the process died, 12 never left (the calls are
    # numbered under a lock, so this holds whatever order the workers ran in)
    left = statuses(ddb, table_name, ids)
    assert left["sending"] == 15
    assert sum(sends_by_ref(sim).values()) == 8
    # WHEN a new dispatcher runs after the claims went stale (its clock a second on)
    clock = Timeline()
    clock.step(1)
    healthy = dispatcher_for(outbox, plum_client(sim), callbacks, clock)
    reports = run_until_all_sent(healthy, ddb, table_name, ids, clock)
    # THEN the ones Plum had are recorded, the others sent: each exactly once
    totals: Counter[str] = sum((r.counts for r in reports), Counter())
    assert totals["reconciled"] == 3
    assert totals["resent"] == 12
    assert_exactly_once(sim, ddb, table_name, ids)


class WaitsForTheOther:
    """Holds every send until both dispatchers have one in flight.

    A dispatcher claims only in its workers, so with its workers held it cannot claim
    everything before the other one starts: both surely send, whatever the scheduling.
    """

    def __init__(self, plum: PlumGateway, name: str, started: set[str], both: threading.Event):
        self.plum = plum
        self.name = name
        self.started = started
        self.both = both

    def queue(
        self, to: str, from_: str, body: str, result_url: str | None = None
    ) -> list[PlumSmsResource]:
        self.started.add(self.name)  # set.add is atomic
        if len(self.started) == 2:
            self.both.set()
        if not self.both.wait(timeout=30):
            raise AssertionError("the other dispatcher never sent")
        return self.plum.queue(to, from_, body, result_url)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.plum, name)


def test_two_dispatchers_at_once_send_each_message_once(
    sim: PlumSimulator,
    outbox: DynamoOutbox,
    callbacks: RecordingServer,
    ddb: Any,
    table_name: str,
) -> None:
    # GIVEN 120 due messages and two dispatchers running at once: each holds its sends
    # until the other has one in flight too
    ids = schedule_many(outbox, 120)
    started: set[str] = set()
    both = threading.Event()
    first = dispatcher_for(
        outbox, WaitsForTheOther(plum_client(sim), "first", started, both), callbacks
    )
    second = dispatcher_for(
        outbox, WaitsForTheOther(plum_client(sim), "second", started, both), callbacks
    )
    reports: list[DispatchReport] = []
    threads = [
        threading.Thread(target=lambda d=d: reports.append(d.run(plenty_of_time)))
        for d in (first, second)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # THEN both did work, they raced for claims, and every message went out once
    assert both.is_set()
    assert len(reports) == 2
    assert all(r["sent"] > 0 for r in reports)
    assert sum(r["sent"] for r in reports) == 120
    assert_exactly_once(sim, ddb, table_name, ids)


def test_every_log_line_of_a_run_carries_the_runs_id(
    handlers: tuple[Api, LocalFunction], sim: PlumSimulator, outbox: DynamoOutbox, log_lines: Any
) -> None:
    _, dispatcher = handlers
    handler = dispatcher.module().lambda_handler
    # GIVEN messages due now, sent from the dispatcher's worker threads
    schedule_many(outbox, 3)
    # WHEN two runs follow each other
    report = handler(scheduled_event(), LocalContext("scheduled_send", aws_request_id="run-one"))
    first = log_lines.take()
    handler(scheduled_event(), LocalContext("scheduled_send", aws_request_id="run-two"))
    second = log_lines.take()
    # THEN every line of each run, the workers' too, carries that run's id
    assert report["counts"]["sent"] == 3
    assert sum(line["message"] == "Plum queue answered" for line in first) == 3
    assert {line.get("correlation_id") for line in first} == {"run-one"}
    assert second and {line.get("correlation_id") for line in second} == {"run-two"}


def test_store_errors_are_counted_per_message_and_the_run_goes_on(
    handlers: tuple[Api, LocalFunction], sim: PlumSimulator, outbox: DynamoOutbox, ddb: Any
) -> None:
    _, dispatcher = handlers
    ids = schedule_many(outbox, 4)
    throttled_key = {"PK": {"S": f"MSG#{ids[1]}"}, "SK": {"S": "MSG"}}

    def throttle(params: dict[str, Any], **_: Any) -> None:
        # DynamoDB throttles the stale-claims listing and every write to one message.
        if params.get("IndexName") == "ByStatus" or params.get("Key") == throttled_key:
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
                "Request",
            )

    events = dispatcher.module().function.basics.store.client.meta.events
    for operation in ("Query", "UpdateItem"):
        events.register(f"before-parameter-build.dynamodb.{operation}", throttle)
    try:
        # WHEN the schedule fires
        report = dispatcher.invoke(scheduled_event())
    finally:
        for operation in ("Query", "UpdateItem"):
            events.unregister(f"before-parameter-build.dynamodb.{operation}", throttle)
    # THEN the run did not fail: the others were sent, each error counted
    assert report["counts"]["sent"] == 3
    # The listing once, the message once per pass (the run goes round again after sending).
    assert report["counts"]["errors"] == 3
    assert item(ddb, outbox.table_name, ids[1])["status"]["S"] == "scheduled"
    assert sends_by_ref(sim) == Counter({i: 1 for i in ids if i != ids[1]})
