"""Delivery status figures (issue 5, item 8).

Callbacks per second through ResultUrlFunction against the embedded DynamoDB server,
and the DynamoDB requests each callback costs (target: one write), against a bare
handler doing a single UpdateItem on the same server, interleaved in blocks:

- ``new status``: a callback with ``ref`` that moves the message (GetItem + UpdateItem);
- ``duplicate``: Plum repeating a status already in the history (GetItem, no write);
- ``by Plum id``: a callback without ``ref`` (Query on ``ByPlumId`` + UpdateItem):
  requests counted, not timed (the embedded server answers a GSI Query by scanning the
  whole table, so its time says nothing about DynamoDB);
- ``new status + EventBridge``: as the first, publishing the change event to a bus on
  the same embedded server (one PutEvents more, not a DynamoDB request);
- ``status write alone``: the adapter's UpdateItem for a new status called directly, no
  handler around it, to tell the handler's own cost from the cost of the request.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode

from bench.harness import (
    PROJECT_ROOT,
    Figure,
    Summary,
    at_most,
    environ,
    interleaved,
    ms,
    ratio,
)

WEBHOOK_KEY = "bench-webhook-key-0123456789"
ACCOUNT, CUSTOMER = "+12435678910", "+19998881234"
FUNCTION_ENV = {
    "WEBHOOK_KEY": WEBHOOK_KEY,
    "SMS_NUMBERS": ACCOUNT,
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "POWERTOOLS_SERVICE_NAME": "plumsms",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}
UNTIMED = frozenset({"by Plum id"})
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
Handler = Callable[[dict[str, Any], Any], Any]


def run(quick: bool) -> list[Figure]:
    """Every figure of this module."""
    from plumsms_local.dynamodb import EmbeddedDynamoDB, create_table  # noqa: PLC0415

    count, warmup = (200, 20) if quick else (1000, 50)
    server = EmbeddedDynamoDB().start()
    try:
        client = server.client()
        table = f"bench-{uuid.uuid4().hex[:12]}"
        create_table(client, table)
        env = FUNCTION_ENV | {"AWS_ENDPOINT_URL_DYNAMODB": server.endpoint, "TABLE_NAME": table}
        with environ(env), contextlib.redirect_stdout(io.StringIO()):
            return _measure(server, client, table, count, warmup)
    finally:
        server.stop()


def _measure(server: Any, client: Any, table: str, count: int, warmup: int) -> list[Figure]:
    import boto3  # noqa: PLC0415

    from plumsms.adapters.dynamodb.store import DynamoMessageStore  # noqa: PLC0415

    bus = f"bench-status-{uuid.uuid4().hex[:8]}"
    events_client = boto3.client("events", endpoint_url=server.endpoint)
    events_client.create_event_bus(Name=bus)
    plain = _load_function()
    with environ({"EVENT_BUS_NAME": bus, "AWS_ENDPOINT_URL_EVENTS": server.endpoint}):
        with_bus = _load_function()
    store = DynamoMessageStore(table, client=client)
    sample = min(50, warmup)
    total = count + warmup + sample
    calls = {
        "new status": Callbacks(store, total, "sent", with_ref=True),
        "duplicate": Callbacks(store, total, "queued", with_ref=True),
        "by Plum id": Callbacks(store, sample, "sent", with_ref=False),
        "new status + EventBridge": Callbacks(store, total, "sent", with_ref=True),
        "bare UpdateItem": Callbacks(store, total, "sent", with_ref=True),
        "status write alone": Callbacks(store, total, "sent", with_ref=True),
    }
    bare = bare_handler(client, table)
    write_alone = adapter_only(client, table)
    invoke: dict[str, Callable[[dict[str, Any]], Any]] = {
        "new status": plain.invoke,
        "duplicate": plain.invoke,
        "by Plum id": plain.invoke,
        "new status + EventBridge": with_bus.invoke,
        "bare UpdateItem": lambda event: bare(event, None),
        "status write alone": write_alone,
    }
    counters = {"plum": Counter[str](), "bus": Counter[str](), "bare": Counter[str]()}
    _count_requests(plain.module().function.basics.store.client, counters["plum"])
    _count_requests(with_bus.module().function.basics.store.client, counters["bus"])
    _count_requests(client, counters["bare"])
    requests = _requests_per_callback(calls, invoke, counters, sample)
    timed = [name for name in calls if name not in UNTIMED]
    series = {name: _series(invoke[name], calls[name]) for name in timed}
    timings = interleaved(series, count, block=50, warmup=warmup)
    summaries = {name: Summary.of(t) for name, t in timings.items()}
    return _report(summaries, {n: sum(t) for n, t in timings.items()}, requests, count)


def _load_function() -> Any:
    from plumsms_local.lambda_runtime import LocalFunction  # noqa: PLC0415

    function = LocalFunction("result_url", PROJECT_ROOT / "functions" / "result_url" / "app.py")
    function.module()
    return function


class Callbacks:
    """Queued messages in the table and one Result URL event per message (built untimed)."""

    def __init__(self, store: Any, count: int, status: str, *, with_ref: bool) -> None:
        from plumsms.domain.models import MessageType, new_message  # noqa: PLC0415
        from tests.factories import put_message  # noqa: PLC0415

        template = json.loads((PROJECT_ROOT / "events" / "result_url.json").read_text())
        now = datetime.now(UTC) - timedelta(minutes=1)
        self.events: list[dict[str, Any]] = []
        for _ in range(count):
            message_id, plum_id = uuid.uuid4().hex, uuid.uuid4().hex
            put_message(store,
                new_message(
                    message_id, MessageType.OUTBOUND, sms_message_id=plum_id,
                    to=CUSTOMER, from_=ACCOUNT, body="Your order has shipped", status="queued",
                    at=now, source="dispatcher", segments=1, encoding="GSM-7",
                )
            )  # fmt: skip
            event = copy.deepcopy(template)
            query = {"key": WEBHOOK_KEY} | ({"ref": message_id} if with_ref else {})
            event["queryStringParameters"] = query
            event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()}
            event["body"] = urlencode(
                {
                    "sms_message_id": plum_id,
                    "status": status,
                    "to": "19998881234",
                    "from": "2435678910",
                }
            )
            self.events.append(event)


def bare_handler(client: Any, table_name: str) -> Handler:
    """A hand-written Result URL: check the key, parse the form, one UpdateItem by ref."""

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        query = event.get("queryStringParameters") or {}
        if query.get("key") != WEBHOOK_KEY:
            return {"statusCode": 403, "body": ""}
        fields = {name: values[0] for name, values in parse_qs(event.get("body") or "").items()}
        client.update_item(
            TableName=table_name,
            Key={"PK": {"S": f"MSG#{query['ref']}"}, "SK": {"S": "MSG"}},
            UpdateExpression="SET #s = :s, status_pk = :s, updated_at = :now",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":s": {"S": fields["status"]},
                ":now": {"S": datetime.now(UTC).isoformat()},
            },
        )
        return {"statusCode": 200, "body": '{"result": "changed"}'}

    return handler


def adapter_only(client: Any, table_name: str) -> Callable[[dict[str, Any]], Any]:
    """The status adapter's one-request write for the event's ref, without the handler."""
    from plumsms.adapters.dynamodb.statuses import DynamoStatusLog  # noqa: PLC0415
    from plumsms.domain.models import HistoryEntry  # noqa: PLC0415

    log = DynamoStatusLog(table_name, client)

    def write(event: dict[str, Any]) -> dict[str, Any]:
        entry = HistoryEntry(status="sent", at=datetime.now(UTC), source="plum-callback")
        advanced = log.advance(event["queryStringParameters"]["ref"], entry, None)
        return {"statusCode": 200 if advanced.applied else 409, "body": ""}

    return write


def _count_requests(client: Any, counter: Counter[str]) -> None:
    def count(model: Any, **_: Any) -> None:
        counter[model.name] += 1

    client.meta.events.register("before-call.dynamodb.*", count)


def _series(invoke: Callable[[dict[str, Any]], Any], calls: Callbacks) -> Callable[[int], object]:
    def call(index: int) -> object:
        response = invoke(calls.events[index])
        if response["statusCode"] != 200:
            raise RuntimeError(f"handler answered {response['statusCode']}: {response['body']}")
        return response

    return call


def _requests_per_callback(
    calls: dict[str, Callbacks],
    invoke: dict[str, Callable[[dict[str, Any]], Any]],
    counters: dict[str, Counter[str]],
    sample: int,
) -> dict[str, tuple[float, float]]:
    """(reads, writes) per callback of each series, from its first ``sample`` events.

    Those events are used up: the timed run gets the rest, each message's first callback.
    """
    found: dict[str, tuple[float, float]] = {}
    which = {
        "new status + EventBridge": "bus",
        "bare UpdateItem": "bare",
        "status write alone": "bare",
    }
    for name, batch in calls.items():
        counter = counters[which.get(name, "plum")]
        counter.clear()
        for event in batch.events[:sample]:
            invoke[name](event)
        batch.events = batch.events[sample:]
        writes = sum(n for op, n in counter.items() if op in WRITES)
        reads = sum(counter.values()) - writes
        found[name] = (reads / sample, writes / sample)
    return found


def _report(
    summaries: dict[str, Summary],
    seconds: dict[str, float],
    requests: dict[str, tuple[float, float]],
    count: int,
) -> list[Figure]:
    bare_rate = count / seconds["bare UpdateItem"]
    how = f"{count} sequential invocations, interleaved in blocks with the bare handler"
    figures = [
        Figure("bare UpdateItem handler callbacks/s", bare_rate, "/s", None, None, how),
        Figure(
            "bare UpdateItem handler p50",
            ms(summaries["bare UpdateItem"].p50),
            "ms",
            None,
            None,
            "urllib parse + 1 UpdateItem",
        ),
    ]
    alone = summaries["status write alone"]
    figures += [
        Figure(
            "status write alone p50",
            ms(alone.p50),
            "ms",
            None,
            None,
            "the adapter's conditional UpdateItem (ALL_OLD) without a handler",
        ),
        Figure(
            "handler overhead over its own write p50",
            ms(summaries["new status"].p50 - alone.p50),
            "ms",
            None,
            None,
            "Powertools resolver, key check, form parsing, model, metrics, logs, event",
        ),
    ]
    for name in ("new status", "duplicate", "by Plum id", "new status + EventBridge"):
        reads, writes = requests[name]
        if name not in UNTIMED:
            rate = count / seconds[name]
            figures += [
                Figure(f"{name}: callbacks/s", rate, "/s", None, None, how),
                Figure(f"{name}: p50", ms(summaries[name].p50), "ms"),
                Figure(f"{name}: p99", ms(summaries[name].p99), "ms"),
                Figure(
                    f"{name}: throughput vs bare",
                    ratio(rate, bare_rate),
                    "x",
                    None,
                    None,
                    "handler callbacks/s / bare callbacks/s",
                ),
            ]
        figures += [
            Figure(f"{name}: DynamoDB reads per callback", reads, "req"),
            at_most(
                f"{name}: DynamoDB writes per callback",
                writes,
                "req",
                1.0,
                "a failed conditional write counts" if name == "duplicate" else "",
            ),
        ]
    return figures


def main() -> int:
    """Run this module alone: ``python -m bench.bench_callbacks [--quick]``."""
    import sys  # noqa: PLC0415

    for figure in run(quick="--quick" in sys.argv[1:]):
        print(f"{figure.name:50} {figure.value:10.3f} {figure.unit:3} {figure.target or ''}")
        if figure.note:
            print(f"    {figure.note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
