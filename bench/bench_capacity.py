"""DynamoDB capacity per operation (issue 12, item 4): WCU and RCU by DynamoDB's rules.

Each operation runs through the bundle's own use cases and adapters against the
embedded DynamoDB server, on a table created from ``template.yaml``; ``bench.capacity``
prices every request from the items before and after it (base item plus each index
entry, a key change as a delete and a put). Beside each figure, its floor: the same
requests on a table with no index.

Operations: an inbound SMS with no reply and with one reply; creating a send; the
dispatcher moving it from ``scheduled`` to ``queued`` (one run with one due message);
Plum's three callbacks (``queued``, a duplicate of the dispatcher's, then ``sent`` and
``delivered``) on a 160-character message, the last leaving five history entries; a
list page of 50; an export of 1,000.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.capacity import CapacityMeter, Cost, Table, floor_read, item_size
from bench.harness import Figure, at_most, ratio

ACCOUNT, CUSTOMER = "+12435678910", "+19998881234"
BODY = ("Hi Sam, your order 48213 has shipped and will arrive Thursday. Track it at "
        "acme.example/t/48213 or reply HELP for help, STOP to opt out. Thanks, Acme!!")  # fmt: skip
# An inbound text of the same length that asks nothing of the carrier keywords (a text
# that mentions STOP goes to a person, unanswered: docs/inbound.md).
INBOUND_BODY = (
    "Hi, this is Sam. My order 48213 was meant to arrive on Thursday but the tracking "
    "page has not moved since Monday. Can you check it for me? Thanks"
)
BASE_URL = "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/Prod/"
WEBHOOK_KEY = "k" * 40
CALLBACK_TARGET_WCU = 4
LIFECYCLE_TARGET = 3.0
ALL_NOTE = "the same writes priced as if every index projected ALL (the previous design)"


class _Plum:
    """A Plum that queues every message (no HTTP: only DynamoDB is measured)."""

    def queue(self, to: str, from_: str, body: str, result_url: str | None) -> list[Any]:
        from plumsms.domain.plum import PlumSmsResource  # noqa: PLC0415

        resource = PlumSmsResource.model_validate(
            {
                "sms_message_id": uuid.uuid4().hex,
                "to": to,
                "from": from_,
                "body": body,
                "request_timestamp": int(datetime.now(UTC).timestamp()),
                "result_url": result_url,
                "status": "queued",
            }
        )
        return [resource]

    def messages(self, query: Any) -> list[Any]:
        return []


class _Publisher:
    def publish(self, changes: Sequence[Any]) -> int:
        return 0


def run(quick: bool) -> list[Figure]:
    """Every figure of this module (the same work in quick mode: it is counted, not timed)."""
    from plumsms_local import template  # noqa: PLC0415
    from plumsms_local.dynamodb import EmbeddedDynamoDB, create_table  # noqa: PLC0415

    server = EmbeddedDynamoDB().start()
    try:
        watched, raw = server.client(), server.client()
        table_name = f"capacity-{uuid.uuid4().hex[:12]}"
        create_table(raw, table_name)
        table = Table.from_definition(template.table_definition(table_name))
        meter = CapacityMeter(table, table_name, raw)
        meter.watch(watched)
        return _measure(meter, watched, raw, table_name)
    finally:
        server.stop()


def _measure(meter: CapacityMeter, client: Any, raw: Any, table_name: str) -> list[Figure]:
    from plumsms.adapters.dynamodb.outbox import DynamoOutbox  # noqa: PLC0415
    from plumsms.adapters.dynamodb.pacing import DynamoSlotBook  # noqa: PLC0415
    from plumsms.adapters.dynamodb.statuses import DynamoStatusLog  # noqa: PLC0415
    from plumsms.adapters.dynamodb.store import DynamoMessageStore  # noqa: PLC0415
    from plumsms.domain.callbacks import StatusCallback  # noqa: PLC0415
    from plumsms.domain.guards import ReplyLimits  # noqa: PLC0415
    from plumsms.domain.models import InboundSms  # noqa: PLC0415
    from plumsms.domain.rules import RulesConfig  # noqa: PLC0415
    from plumsms.domain.sending import SendRequest  # noqa: PLC0415
    from plumsms.entrypoints.webhooks import status_url  # noqa: PLC0415
    from plumsms.usecases.dispatch import DispatchConfig, Dispatcher  # noqa: PLC0415
    from plumsms.usecases.dispatch.pacing import RateLimiter, SharedPacer  # noqa: PLC0415
    from plumsms.usecases.inbound import InboundService  # noqa: PLC0415
    from plumsms.usecases.sending import SendingService  # noqa: PLC0415
    from plumsms.usecases.status import StatusService  # noqa: PLC0415

    store = DynamoMessageStore(table_name, client)
    outbox = DynamoOutbox(store)

    def result_url(ref: str) -> str | None:
        return status_url(BASE_URL, WEBHOOK_KEY, ref)

    costs: dict[str, Cost] = {}
    # -- inbound ------------------------------------------------------------------------
    replies = {"no reply": RulesConfig(), "one reply": RulesConfig(default_reply=BODY)}
    # One customer each: the same text twice from one number within minutes is withheld
    # as a repeat (docs/security.md), which would price a reply that is never written.
    senders = {"no reply": "+19998881235", "one reply": CUSTOMER}
    for label, rules in replies.items():
        service = InboundService(
            log=store,
            rules=rules,
            status_url=result_url,
            limits=ReplyLimits(own_numbers=frozenset({ACCOUNT}), countries=frozenset({"+1"})),
        )
        sms = InboundSms.model_validate(
            {
                "sms_message_id": uuid.uuid4().hex,
                "to": ACCOUNT,
                "from": senders[label],
                "body": INBOUND_BODY,
            }
        )
        with meter.measure() as cost:
            result = service.handle(sms)
        assert (b"<sms_message" in result.xml) == (label == "one reply"), (label, result.unanswered)
        costs[f"inbound, {label}"] = cost
    # -- an outbound lifecycle ----------------------------------------------------------
    sending = SendingService(outbox=outbox, sms_numbers=lambda: (ACCOUNT,))
    request = SendRequest.model_validate({"to": CUSTOMER, "from": ACCOUNT, "body": BODY})
    with meter.measure() as cost:
        created = sending.create(request, fingerprint="capacity")
    costs["create send"] = cost
    message_id = str(created.body["id"])
    book = DynamoSlotBook(table_name, client, interval=1 / 50)
    dispatcher = Dispatcher(
        outbox=outbox,
        plum=_Plum,  # type: ignore[arg-type]
        result_url=result_url,
        config=DispatchConfig(rate_per_second=50, concurrency=2),
        pacer=lambda: SharedPacer(RateLimiter(50), book),
    )
    with meter.measure() as cost:
        report = dispatcher.run(lambda: 60_000)
    assert report["sent"] == 1, report.as_dict()
    costs["scheduled -> queued"] = cost
    with meter.measure() as cost:
        dispatcher.run(lambda: 60_000)
    idle_run = cost
    status = StatusService(log=DynamoStatusLog.from_store(store), publisher=_Publisher())
    plum_id = store.get(message_id).sms_message_id or ""
    for reported in ("queued", "sent", "delivered"):
        callback = StatusCallback.model_validate({"sms_message_id": plum_id, "status": reported})
        with meter.measure() as cost:
            status.handle_callback(callback, message_id)
        costs[f"callback {reported}"] = cost
    final = raw.get_item(
        TableName=table_name, Key={"PK": {"S": f"MSG#{message_id}"}, "SK": {"S": "MSG"}}
    )["Item"]
    history = len(final["history"]["L"])
    # -- reads --------------------------------------------------------------------------
    _seed(store, 1100)
    reads: dict[str, tuple[Cost, float]] = {}
    with meter.measure() as cost:
        page = store.list_messages(_query(limit=50))
    reads["list page of 50"] = (cost, floor_read(_raw_items(raw, table_name, page.items)))
    with meter.measure() as cost:
        exported = [m for m, _ in itertools.islice(store.iter_messages(_query(1000)), 1000)]
    reads["export of 1000"] = (cost, floor_read(_raw_items(raw, table_name, exported)))
    return _report(costs, idle_run, reads, item_size(final), history)


def _query(limit: int) -> Any:
    from plumsms.domain.queries import MessageQuery  # noqa: PLC0415

    return MessageQuery(limit=limit, order="desc")


def _seed(store: Any, count: int) -> None:
    """Delivered messages like the lifecycle's, written unmetered (the meter is scoped)."""
    from plumsms.domain.models import HistoryEntry, Message, MessageType  # noqa: PLC0415
    from tests.factories import put_message  # noqa: PLC0415

    start = datetime.now(UTC) - timedelta(days=1)
    for index in range(count):
        at = start + timedelta(seconds=index)
        history = [
            HistoryEntry(status=s, at=at, source=src)
            for s, src in [
                ("scheduled", "api"),
                ("sending", "dispatcher"),
                ("queued", "dispatcher"),
                ("sent", "plum"),
                ("delivered", "plum"),
            ]
        ]
        message_id = uuid.uuid4().hex
        put_message(store,
            Message(
                id=message_id, sms_message_id=uuid.uuid4().hex, type=MessageType.OUTBOUND,
                to=CUSTOMER, from_=ACCOUNT, body=BODY, status="delivered", created_at=at,
                updated_at=at, send_at=at, result_url=f"{BASE_URL}plum/status?key="
                f"{WEBHOOK_KEY}&ref={message_id}", segments=2, encoding="GSM-7", history=history,
            )
        )  # fmt: skip


def _raw_items(raw: Any, table_name: str, messages: Sequence[Any]) -> list[dict[str, Any]]:
    items = []
    for message in messages:
        key = {"PK": {"S": f"MSG#{message.id}"}, "SK": {"S": "MSG"}}
        items.append(raw.get_item(TableName=table_name, Key=key)["Item"])
    return items


def _report(
    costs: dict[str, Cost],
    idle_run: Cost,
    reads: dict[str, tuple[Cost, float]],
    final_size: int,
    history: int,
) -> list[Figure]:
    figures: list[Figure] = []
    for name, cost in costs.items():
        note = cost.describe()
        if name in {"callback sent", "callback delivered"}:
            if name == "callback delivered":
                note = f"{note}; message {final_size} B with {history} history entries after it"
            figures.append(at_most(f"{name} WCU", cost.wcu, "WCU", CALLBACK_TARGET_WCU, note))
        else:
            figures.append(Figure(f"{name} WCU", cost.wcu, "WCU", note=note))
        figures.append(Figure(f"{name} floor", cost.floor_wcu, "WCU"))
        figures.append(Figure(f"{name}, indexes ALL", cost.all_wcu, "WCU", note=ALL_NOTE))
        if cost.rcu:
            figures.append(Figure(f"{name} RCU", cost.rcu, "RCU"))
    lifecycle = Cost()
    for name in ("create send", "scheduled -> queued", "callback queued", "callback sent"):
        lifecycle.add(costs[name])
    lifecycle.add(costs["callback delivered"])
    figures.append(
        Figure("outbound lifecycle WCU", lifecycle.wcu, "WCU", note=lifecycle.describe())
    )
    figures.append(Figure("outbound lifecycle floor", lifecycle.floor_wcu, "WCU"))
    figures.append(
        Figure("outbound lifecycle, indexes ALL", lifecycle.all_wcu, "WCU", note=ALL_NOTE)
    )
    figures.append(
        at_most(
            "outbound lifecycle / floor",
            ratio(lifecycle.wcu, lifecycle.floor_wcu),
            "x",
            LIFECYCLE_TARGET,
            "create, dispatch, three callbacks; floor: the same writes, base table only",
        )
    )
    figures.append(Figure("idle dispatcher run RCU", idle_run.rcu, "RCU", note=idle_run.describe()))
    for name, (cost, floor) in reads.items():
        figures.append(Figure(f"{name} RCU", cost.rcu, "RCU", note=cost.describe()))
        figures.append(Figure(f"{name} floor", floor, "RCU", note="one Query of the base table"))
    return figures


def main() -> None:
    """Print the figures (``python -m bench --only capacity`` is the usual way)."""
    for figure in run(quick=True):
        print(f"{figure.name:<34} {figure.value:>9.1f} {figure.unit:<4} {figure.note}")


if __name__ == "__main__":
    main()
