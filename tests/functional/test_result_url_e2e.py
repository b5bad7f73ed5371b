"""End to end: the Plum simulator calls the Result URL through the local gateway while it
duplicates, reorders and drops callbacks; the reconciler fills in what was dropped.

Done when every message ends in the simulator's final status with a complete history:
every status a callback brought, each once, plus the final one.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from plumsms.adapters.dynamodb import codec, keys
from plumsms.adapters.dynamodb.statuses import DynamoStatusLog
from plumsms.adapters.dynamodb.store import DynamoMessageStore
from plumsms.adapters.events import RecordingPublisher
from plumsms.adapters.plum import PlumClient
from plumsms.domain import segments
from plumsms.domain.models import HistoryEntry, Message, MessageType, Status
from plumsms.entrypoints.webhooks import status_url
from plumsms.usecases.status import StatusService
from plumsms_local.gateway import LocalGateway
from plumsms_local.lambda_runtime import LocalFunction
from plumsms_local.simulator import Delays, Faults, PlumSimulator, SimulatorClient, SimulatorConfig
from plumsms_local.template import PROJECT_ROOT
from tests.factories import put_message

ACCOUNT = "+12435678910"
FAILING, UNDELIVERABLE = "+12025550101", "+12025550102"
FINALS = {"delivered", "undelivered", "failed"}
SETTLED = FINALS | {"received"}
T = TypeVar("T")


def poll(fetch: Callable[[], T], until: Callable[[T], bool], timeout: float = 20.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if until(value):
            return value
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.02)


@dataclass
class Bundle:
    """The simulator, the gateway serving the template's routes, and the message store."""

    sim: PlumSimulator
    admin: SimulatorClient
    gateway: LocalGateway
    store: DynamoMessageStore
    webhook_key: str

    def send(self, to: str, body: str) -> Message:
        """What the dispatcher does: claim, queue with the Result URL, record Plum's id."""
        now = datetime.now(UTC)
        info = segments.analyze(body)
        message = Message(
            id=uuid.uuid4().hex,
            type=MessageType.OUTBOUND,
            to=to,
            from_=ACCOUNT,
            body=body,
            status=Status.SENDING,
            created_at=now,
            updated_at=now,
            segments=info.segments,
            encoding=info.encoding,
            history=[
                HistoryEntry(status="scheduled", at=now, source="api"),
                HistoryEntry(status="sending", at=now, source="dispatcher"),
            ],
        )
        put_message(self.store, message)
        url = status_url(self.gateway.url, self.webhook_key, message.id)
        plum = PlumClient(self.sim.api_url, *self.login, backoff_factor=0)
        resources = plum.queue(to, ACCOUNT, body, result_url=url)
        self._record_queued(message, resources[0].sms_message_id)
        service = StatusService(
            log=DynamoStatusLog.from_store(self.store), publisher=RecordingPublisher()
        )
        service.attach_orphans(message.id, resources[0].sms_message_id)
        return message

    @property
    def login(self) -> tuple[str, str]:
        return self.sim.simulator.config.username, self.sim.simulator.config.password

    def _record_queued(self, message: Message, plum_id: str) -> None:
        # sending -> queued with Plum's id, unless a callback overtook us: then only the id.
        queued = HistoryEntry(status="queued", at=datetime.now(UTC), source="dispatcher")
        entry = codec.serialize({"e": [queued.model_dump(mode="json")]})["e"]
        names = {"#st": "status", "#sid": "sms_message_id", "#pid": keys.PLUM_ID_ATTR}
        ids = {":pid": {"S": plum_id}}
        key: dict[str, Any] = {
            "TableName": self.store.table_name,
            "Key": codec.message_key(message.id),
        }
        client = self.store.client
        try:
            client.update_item(
                **key,
                UpdateExpression=(
                    "SET #st = :q, status_pk = :qpk, history = list_append(history, :e), "
                    "#sid = :pid, #pid = :pid"
                ),
                ConditionExpression="#st = :sending",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=ids
                | {":q": {"S": "queued"}, ":e": entry, ":sending": {"S": "sending"}}
                | {":qpk": {"S": keys.sharded("queued", message.id)}},
            )
        except client.exceptions.ConditionalCheckFailedException:
            del names["#st"]
            client.update_item(
                **key,
                UpdateExpression="SET #sid = :pid, #pid = :pid",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=ids,
            )

    def settle(self, count: int) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
        """Wait until the simulator's ``count`` messages are final and its callbacks went out."""
        messages = poll(
            self.admin.messages,
            lambda ms: len(ms) >= count and all(m["status"] in SETTLED for m in ms),
        )
        sizes: list[int] = []

        def quiet(log: list[dict[str, Any]]) -> bool:
            sizes.append(len(log))
            return len(sizes) >= 15 and len(set(sizes[-15:])) == 1

        callbacks = poll(self.admin.callbacks, quiet)
        return {m["sms_message_id"]: m for m in messages}, callbacks

    def function(self, name: str) -> LocalFunction:
        return self.gateway.functions[name]


@pytest.fixture
def bundle(
    monkeypatch: pytest.MonkeyPatch, function_env: dict[str, str], table_name: str, ddb: Any
) -> Iterator[Bundle]:
    faults = Faults(
        callback_duplicate_rate=0.35, callback_reorder_rate=0.35, callback_drop_rate=0.3
    )
    config = SimulatorConfig(
        username=function_env["PLUM_USERNAME"],
        password=function_env["PLUM_PASSWORD"],
        sms_numbers=(ACCOUNT,),
        failing_numbers=frozenset({FAILING}),
        undeliverable_numbers=frozenset({UNDELIVERABLE}),
        delays=Delays(sent_seconds=0.01, final_seconds=0.01),
        faults=faults,
        seed=11,
    )
    gateway = LocalGateway("test-api-token", port=0)
    monkeypatch.setenv("PUBLIC_BASE_URL", gateway.url)
    with PlumSimulator(config) as sim:
        monkeypatch.setenv("PLUM_API_URL", sim.api_url)
        gateway.start()
        try:
            yield Bundle(
                sim,
                SimulatorClient(sim.base_url),
                gateway,
                DynamoMessageStore(table_name, client=ddb),
                function_env["WEBHOOK_KEY"],
            )
        finally:
            gateway.stop()


def run_reconciler(monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], RecordingPublisher]:
    monkeypatch.setenv("RECONCILE_AFTER_MINUTES", "0")
    function = LocalFunction(
        "reconciler", PROJECT_ROOT / "functions" / "reconciler" / "app.py", timeout_seconds=120
    )
    event = json.loads((PROJECT_ROOT / "events" / "reconciler.json").read_text())
    return function.invoke(event), function.module().function.basics.publisher


def callback_statuses(callbacks: list[dict[str, Any]], plum_ids: set[str]) -> set[str]:
    """Statuses that reached the Result URL (answered 200) for these Plum ids."""
    return {
        c["status"] for c in callbacks if c["sms_message_id"] in plum_ids and c["outcome"] == "sent"
    }


def test_faulty_callbacks_and_the_reconciler_end_every_message_right(
    bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN twenty-four sends (one split in two parts), to good, failing and undeliverable phones,
    # while the simulator duplicates, reorders and drops callbacks
    recipients = [f"+1999888{n:04d}" for n in range(18)] + [FAILING] * 3 + [UNDELIVERABLE] * 3
    sent = [
        bundle.send(to, f"Message {i}: your order has shipped") for i, to in enumerate(recipients)
    ]
    sent.append(bundle.send("+19998887777", "Long notice " + "x" * 170))
    by_plum, callbacks = bundle.settle(count=len(sent) + 1)
    # THEN every callback that went out was accepted, and faults really happened
    assert {c["http_status"] for c in callbacks if c["outcome"] == "sent"} == {200}
    assert any(c["duplicate"] for c in callbacks) and any(c["reordered"] for c in callbacks)
    assert any(c["outcome"] == "dropped" for c in callbacks)
    # WHEN the reconciler asks Plum about what is still in flight
    result, reconciler_events = run_reconciler(monkeypatch)
    assert result["errors"] == 0 and result["stopped_early"] is False
    # THEN every message has the simulator's final status and a complete history
    callback_events: RecordingPublisher = (
        bundle.function("ResultUrlFunction").module().function.basics.publisher
    )
    events = [e["detail"] for e in [*callback_events.events, *reconciler_events.events]]
    for message in sent:
        stored = bundle.store.get(message.id)
        assert stored.sms_message_id is not None
        parts = {
            i
            for i, m in by_plum.items()
            if m["group_id"] == by_plum[stored.sms_message_id]["group_id"]
        }
        final = by_plum[stored.sms_message_id]["status"]
        assert stored.status == final, (message.to, [e.status for e in stored.history])
        statuses = [e.status for e in stored.history]
        assert len(statuses) == len(set(statuses)), statuses
        assert set(statuses) == {"scheduled", "sending", "queued", final} | callback_statuses(
            callbacks, parts
        )
        # AND exactly one change event announced its final status
        finals = [e for e in events if e["message_id"] == message.id and e["final"]]
        assert [e["status"] for e in finals] == [final]
    # AND reconciled statuses say where they came from
    reconciled = {e["message_id"] for e in events if e["source"] == "plum-status"}
    assert reconciled, "the drop rate should have left something to reconcile"
    assert result["changed"] == len([e for e in reconciler_events.events]) >= len(reconciled)


def test_replies_sent_from_reply_xml_get_their_status_by_ref(
    bundle: Bundle, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    # GIVEN an auto-reply rule, and a simulator that duplicates and reorders (not drops) callbacks
    rules = tmp_path / "rules.yaml"
    rules.write_text("keywords:\n  - keywords: [hours]\n    reply: 'We are open 9-5'\n")
    monkeypatch.setenv("RULES_FILE", str(rules))
    bundle.admin.set_faults(callback_drop_rate=0.0)
    bundle.admin.set_application_url(
        ACCOUNT, f"{bundle.gateway.url}plum/inbound?key={bundle.webhook_key}"
    )
    # WHEN phones text the keyword
    phones = [f"+1999777{n:04d}" for n in range(6)]
    for phone in phones:
        report = bundle.admin.send_text(phone, ACCOUNT, "hours")
        assert report["reply"]["accepted"], report
    by_plum, _ = bundle.settle(count=2 * len(phones))
    # THEN each reply record learned its Plum id from its callbacks and ended delivered
    replies = [m for m in by_plum.values() if m["type"] == "reply"]
    assert len(replies) == len(phones)
    for reply in replies:
        stored = bundle.store.get_by_plum_id(reply["sms_message_id"])
        assert stored is not None and stored.type is MessageType.REPLY
        assert stored.status == reply["status"] == "delivered"
        assert [e.status for e in stored.history] == ["queued", "sent", "delivered"]


def test_a_reply_whose_callbacks_were_all_dropped_is_found_in_the_conversation(
    bundle: Bundle, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("default_reply: 'Thanks, we got your message'\n")
    monkeypatch.setenv("RULES_FILE", str(rules))
    bundle.admin.set_faults(callback_drop_rate=1.0)
    bundle.admin.set_application_url(
        ACCOUNT, f"{bundle.gateway.url}plum/inbound?key={bundle.webhook_key}"
    )
    bundle.admin.send_text("+19997770099", ACCOUNT, "hello?")
    by_plum, _ = bundle.settle(count=2)
    [reply] = [m for m in by_plum.values() if m["type"] == "reply"]
    result, _ = run_reconciler(monkeypatch)
    assert result["errors"] == 0
    stored = bundle.store.get_by_plum_id(reply["sms_message_id"])
    assert stored is not None and stored.status == "delivered"
    assert (stored.history[-1].status, stored.history[-1].source) == ("delivered", "plum-status")
    assert stored.created_at > datetime.now(UTC) - timedelta(minutes=5)
