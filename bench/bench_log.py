"""The message log's figures (issue 6, item 5).

(a) Items read for one page of 50 with 1,000 versus 100,000 messages in the table
    (target ratio <= 1.1), for every kind of filter the API serves, read as DynamoDB
    reports it (``ScannedCount`` summed over the page's Query calls) from the embedded
    DynamoDB server ``make run`` uses. Both tables hold the same mix of numbers,
    statuses and types, so only their size differs. A page deep in the log (reached by
    a cursor) is measured too: a cursor seeks, it does not skip.
(b) The time to export 100,000 messages through ``GET /messages/export``, following
    ``X-Next-Cursor`` to the end, as CSV and as JSON Lines, against a baseline measured
    in the same run: reading the same messages through the store without formatting.
    moto answers every Query by sorting its whole table (seconds per call at 100,000
    items, where DynamoDB reads only the requested range), so the 100,000-row export
    reads from an in-memory stand-in that answers the store's Query requests with
    DynamoDB's rules (key range, order, Limit, 1 MB pages, ExclusiveStartKey, filters):
    the figure is the bundle's own cost. A smaller export through moto end to end gives
    the ``make run`` experience.

``--quick``: 1,000 versus 10,000 messages, exports of 10,000 and 2,000.
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import io
import json
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from bench.harness import Figure, at_most, environ, ratio

WEBHOOK_KEY = "bench-webhook-key-0123456789"
CURSOR_KEY = "bench-cursor-key-0123456789"
ACCOUNT = "+12435678910"
HOT_CUSTOMER = "+19998880000"
PAGE = 50
RATIO_TARGET = 1.1
FUNCTION_ENV = {
    "WEBHOOK_KEY": WEBHOOK_KEY,
    "CURSOR_KEY": CURSOR_KEY,
    "SMS_NUMBERS": ACCOUNT,
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "POWERTOOLS_SERVICE_NAME": "plumsms",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}
T0 = datetime(2024, 1, 1, tzinfo=UTC)
SHAPES: dict[str, dict[str, Any]] = {
    "no filter (time index)": {},
    "number, either side (2 indexes merged)": {"number": HOT_CUSTOMER},
    "status (status index)": {"status": "failed"},
    "type (type index)": {"type": "inbound"},
    "number + status (filter in the index)": {"number": HOT_CUSTOMER, "status": "failed"},
    "time range, oldest first": {"order": "asc", "start": "MIDDLE"},
}
DEEP_PAGE = "page at the middle of the log (cursor)"


# -- data ------------------------------------------------------------------------------


def synthetic_rows(count: int) -> list[dict[str, Any]]:
    """``count`` stored rows with the same mix whatever the count.

    30% of messages go to one busy customer, the rest to 70 others; every 7th is inbound
    (``received``); outbound statuses cycle delivered / failed / sent in blocks of ten,
    so no filter correlates with another by accident. One message per minute.
    """
    from plumsms.adapters.dynamodb import codec  # noqa: PLC0415
    from plumsms.domain.models import HistoryEntry, Message, MessageType  # noqa: PLC0415

    rows: list[dict[str, Any]] = []
    for index in range(count):
        at = T0 + timedelta(minutes=index)
        customer = HOT_CUSTOMER if index % 10 < 3 else f"+1999888{1 + index % 70:04d}"
        inbound = index % 7 == 0
        status = "received" if inbound else ("delivered", "failed", "sent")[(index // 10) % 3]
        message = Message.model_construct(
            id=uuid.UUID(int=index + 1).hex,
            sms_message_id=uuid.UUID(int=10**12 + index).hex,
            type=MessageType.INBOUND if inbound else MessageType.OUTBOUND,
            to=ACCOUNT if inbound else customer,
            from_=customer if inbound else ACCOUNT,
            body=f"Your appointment #{index} is confirmed for 10:00 tomorrow. Reply STOP to end.",
            status=status,
            created_at=at,
            updated_at=at + timedelta(seconds=5),
            send_at=None,
            result_url=None,
            segments=1,
            encoding="GSM-7",
            error=None,
            history=[HistoryEntry(status=status, at=at + timedelta(seconds=5), source="plum")],
        )
        rows.append(codec.serialize(codec.message_item(message)))
    return rows


def load(client: Any, table: str, rows: list[dict[str, Any]], threads: int = 4) -> float:
    """BatchWriteItem ``rows`` into ``table`` (25 per request, unprocessed retried); seconds."""

    def write(start: int) -> None:
        request = {table: [{"PutRequest": {"Item": r}} for r in rows[start : start + 25]]}
        while request:
            answer = client.batch_write_item(RequestItems=request)
            request = answer.get("UnprocessedItems") or {}

    began = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(write, range(0, len(rows), 25)))
    return time.perf_counter() - began


# -- what a page costs -----------------------------------------------------------------


@dataclass
class QueryMeter:
    """Counts Query calls and the items DynamoDB says they read (``ScannedCount``)."""

    calls: int = 0
    scanned: int = 0
    seconds: float = 0.0

    def attach(self, client: Any) -> None:
        client.meta.events.register("after-call.dynamodb.Query", self._after)

    def _after(self, parsed: dict[str, Any], **_: Any) -> None:
        self.calls += 1
        self.scanned += int(parsed.get("ScannedCount", 0))

    @contextlib.contextmanager
    def measure(self) -> Iterator[QueryMeter]:
        self.calls = self.scanned = 0
        began = time.perf_counter()
        yield self
        self.seconds = time.perf_counter() - began


def page_costs(service: Any, meter: QueryMeter, rows: int) -> dict[str, tuple[int, int, float]]:
    """Items read, Query calls and seconds for one page of each shape."""
    from plumsms.adapters.dynamodb import keys  # noqa: PLC0415
    from plumsms.domain.paging import CursorCodec, derive_key  # noqa: PLC0415
    from plumsms.domain.queries import MessageQuery  # noqa: PLC0415
    from plumsms.usecases.log import messages_scope  # noqa: PLC0415

    middle = T0 + timedelta(minutes=rows // 2)
    results: dict[str, tuple[int, int, float]] = {}
    for name, filters in SHAPES.items():
        values = {k: (middle if v == "MIDDLE" else v) for k, v in filters.items()}
        query = MessageQuery(limit=PAGE, **values)
        with meter.measure():
            page = service.page(query)
        assert len(page.items) == PAGE, (name, len(page.items))
        results[name] = (meter.scanned, meter.calls, meter.seconds)
    # A cursor at the middle of the log, as the 1,000th page of 50 would carry at 100,000.
    query = MessageQuery(limit=PAGE)
    position = keys.time_sort_key(middle, uuid.UUID(int=rows // 2 + 1).hex)
    cursor = CursorCodec(derive_key(CURSOR_KEY)).encode(position, messages_scope(query))
    with meter.measure():
        page = service.page(query, cursor)
    assert len(page.items) == PAGE
    results[DEEP_PAGE] = (meter.scanned, meter.calls, meter.seconds)
    return results


# -- an in-memory stand-in for DynamoDB's Query ----------------------------------------


@dataclass
class IndexedTable:
    """Answers the store's Query requests from sorted in-memory indexes, DynamoDB's way.

    Only what ``DynamoMessageStore`` sends: equality on the partition key, an optional
    ``>=`` / ``<=`` / ``BETWEEN`` on the sort key, ``ScanIndexForward``, ``Limit``, 1 MB
    pages, ``ExclusiveStartKey`` and equality filters. Not a general DynamoDB.
    """

    rows: list[dict[str, Any]]
    indexes: dict[str, dict[str, tuple[list[str], list[dict[str, Any]]]]] = field(
        default_factory=dict
    )
    sizes: dict[int, int] = field(default_factory=dict)
    by_key: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from plumsms.adapters.dynamodb import keys  # noqa: PLC0415

        for index, (pk_attr, sk_attr) in keys.INDEX_KEYS.items():
            if sk_attr is None:
                continue
            partitions: dict[str, list[tuple[str, dict[str, Any]]]] = {}
            for row in self.rows:
                if pk_attr in row and sk_attr in row:
                    partitions.setdefault(row[pk_attr]["S"], []).append((row[sk_attr]["S"], row))
            self.indexes[index] = {}
            for value, entries in partitions.items():
                entries.sort(key=lambda entry: entry[0])
                self.indexes[index][value] = ([e[0] for e in entries], [e[1] for e in entries])
        self.sizes = {id(r): len(json.dumps(r)) for r in self.rows}
        self.by_key = {(r["PK"]["S"], r["SK"]["S"]): r for r in self.rows}

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        """The rows with the requested keys (whole rows: a projection changes nothing here)."""
        [(table, spec)] = RequestItems.items()
        wanted = [(k["PK"]["S"], k["SK"]["S"]) for k in spec["Keys"]]
        found = [self.by_key[key] for key in wanted if key in self.by_key]
        return {"Responses": {table: found}, "UnprocessedKeys": {}}

    def query(self, **request: Any) -> dict[str, Any]:
        from plumsms.adapters.dynamodb import keys  # noqa: PLC0415

        names, values = request["ExpressionAttributeNames"], request["ExpressionAttributeValues"]
        pk_attr, sk_attr = keys.INDEX_KEYS[request["IndexName"]]
        assert sk_attr is not None, "the store queries only indexes with a sort key"
        sort_keys, rows = self.indexes[request["IndexName"]].get(values[":pk"]["S"], ([], []))
        low = values.get(":lo", {}).get("S")
        high = values.get(":hi", {}).get("S")
        start = bisect.bisect_left(sort_keys, low) if low else 0
        stop = bisect.bisect_right(sort_keys, high) if high else len(sort_keys)
        forward = request.get("ScanIndexForward", True)
        resume = request.get("ExclusiveStartKey")
        if resume:
            mark = resume[sk_attr]["S"]
            if forward:
                start = max(start, bisect.bisect_right(sort_keys, mark))
            else:
                stop = min(stop, bisect.bisect_left(sort_keys, mark))
        window = range(start, stop) if forward else range(stop - 1, start - 1, -1)
        wanted = {
            names[name]: values[value]["S"]
            for name, value in (
                part.split(" = ")
                for part in request.get("FilterExpression", "").split(" AND ")
                if part
            )
        }
        items: list[dict[str, Any]] = []
        scanned = size = 0
        limit = request.get("Limit", len(window))
        last: dict[str, Any] = {}
        for position in window:
            row = rows[position]
            if scanned == limit or size + self.sizes[id(row)] > 1 << 20:
                break
            scanned += 1
            size += self.sizes[id(row)]
            if all(row.get(attr, {}).get("S") == value for attr, value in wanted.items()):
                items.append(row)
            last = {
                sk_attr: {"S": sort_keys[position]},
                pk_attr: row[pk_attr],
                "PK": row["PK"],
                "SK": row["SK"],
            }
        answer: dict[str, Any] = {"Items": items, "Count": len(items), "ScannedCount": scanned}
        if scanned < len(window):
            answer["LastEvaluatedKey"] = last
        return answer


# -- exports ---------------------------------------------------------------------------


def export_all(
    resolve: Callable[[dict[str, Any]], dict[str, Any]], fmt: str
) -> tuple[int, int, int]:
    """Follow ``X-Next-Cursor`` to the end: rows, answers and bytes."""
    from plumsms_local.gateway import proxy_event  # noqa: PLC0415

    cursor: str | None = None
    rows = answers = size = 0
    while True:
        query = {"format": fmt, **({"cursor": cursor} if cursor else {})}
        event = proxy_event(
            "GET", "/messages/export?" + urlencode(query), {}, b"",
            resource="/messages/export", path_parameters=None,
        )  # fmt: skip
        response = resolve(event)
        assert response["statusCode"] == 200, response["body"][:300]
        headers = {k.lower(): v[0] for k, v in (response.get("multiValueHeaders") or {}).items()}
        answers += 1
        rows += int(headers["x-export-rows"])
        size += len(response["body"].encode())
        cursor = headers.get("x-next-cursor")
        if not cursor:
            return rows, answers, size


def api_resolver(store: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The log routes in a resolver wired like MessagesApiFunction's."""
    from plumsms.config import Settings  # noqa: PLC0415
    from plumsms.entrypoints import log_api  # noqa: PLC0415
    from plumsms.entrypoints.webhooks import api_resolver as resolver  # noqa: PLC0415
    from plumsms.secrets import SecretValues  # noqa: PLC0415
    from plumsms_local.lambda_runtime import LocalContext  # noqa: PLC0415

    settings = Settings.from_env()
    app = resolver(settings, validation=True)
    app.include_router(log_api.routes_from_settings(settings, store, SecretValues(settings)))

    def resolve(event: dict[str, Any]) -> dict[str, Any]:
        # A fresh 29 s context per answer, as each Lambda invocation gets.
        context: Any = LocalContext("MessagesApiFunction", timeout_seconds=29)
        return app.resolve(event, context)

    return resolve


def read_all(store: Any) -> int:
    """Baseline: every message through the store's Query paging and decoding, unformatted."""
    from plumsms.domain.queries import MessageQuery  # noqa: PLC0415

    return sum(1 for _ in store.iter_messages(MessageQuery(limit=1000)))


# -- the run ---------------------------------------------------------------------------


def run(quick: bool) -> list[Figure]:
    """Every figure of this module."""
    from plumsms_local.dynamodb import EmbeddedDynamoDB, create_table  # noqa: PLC0415

    small, large = (1_000, 10_000) if quick else (1_000, 100_000)
    export_rows, moto_export_rows = (10_000, 2_000) if quick else (100_000, 10_000)
    server = EmbeddedDynamoDB().start()
    try:
        client = server.client()
        env = FUNCTION_ENV | {"AWS_ENDPOINT_URL_DYNAMODB": server.endpoint, "TABLE_NAME": "unused"}
        with environ(env), contextlib.redirect_stdout(io.StringIO()):
            return _measure(client, create_table, small, large, export_rows, moto_export_rows)
    finally:
        server.stop()


def _measure(
    client: Any,
    create_table: Callable[[Any, str], None],
    small: int,
    large: int,
    export_rows: int,
    moto_export_rows: int,
) -> list[Figure]:
    from plumsms.adapters.dynamodb.store import DynamoMessageStore  # noqa: PLC0415
    from plumsms.domain.paging import derive_key  # noqa: PLC0415
    from plumsms.usecases.log import LogService  # noqa: PLC0415

    meter = QueryMeter()
    meter.attach(client)
    figures: list[Figure] = []
    built = time.perf_counter()
    rows = synthetic_rows(max(large, export_rows, moto_export_rows))
    build_seconds = time.perf_counter() - built
    costs: dict[int, dict[str, tuple[int, int, float]]] = {}
    load_seconds: dict[int, float] = {}
    tables: dict[int, str] = {}
    for size in sorted({small, large, moto_export_rows}):
        table = f"bench-log-{size}-{uuid.uuid4().hex[:6]}"
        create_table(client, table)
        load_seconds[size] = load(client, table, rows[:size])
        tables[size] = table
    for size in (small, large):
        service = LogService(
            DynamoMessageStore(tables[size], client=client), lambda: derive_key(WEBHOOK_KEY)
        )
        costs[size] = page_costs(service, meter, size)

    for shape in [*SHAPES, DEEP_PAGE]:
        (small_read, small_calls, _), (large_read, large_calls, _) = (
            costs[small][shape],
            costs[large][shape],
        )
        figures.append(
            at_most(
                f"items read, page of {PAGE}, {shape}: {large:,} vs {small:,} msgs",
                ratio(large_read, small_read),
                "ratio",
                RATIO_TARGET,
                f"{large_read} vs {small_read} items (ScannedCount), "
                f"{large_calls} vs {small_calls} Query calls",
            )
        )
    headline_small, headline_large = (
        costs[small]["no filter (time index)"][0],
        costs[large]["no filter (time index)"][0],
    )
    figures.append(Figure(f"items read, page of {PAGE}, {small:,} msgs", headline_small, "items"))
    figures.append(Figure(f"items read, page of {PAGE}, {large:,} msgs", headline_large, "items"))
    slowest = max(costs[large].values(), key=lambda c: c[2])[2]
    figures.append(
        Figure(
            f"page latency on moto, {large:,} msgs (slowest shape)",
            slowest * 1000,
            "ms",
            note="moto sorts its whole table on every Query; DynamoDB reads only the page's range",
        )
    )
    figures.append(
        Figure(
            f"load {large:,} msgs into moto (BatchWriteItem x4 threads)",
            load_seconds[large],
            "s",
            note=f"{large / load_seconds[large]:,.0f} items/s; rows built in {build_seconds:.1f} s",
        )
    )

    # Exports of `export_rows` from the in-memory stand-in: the bundle's own cost.
    standin = IndexedTable(rows[:export_rows])
    # The test data (and moto's copy, in this process) are millions of long-lived objects
    # a Lambda process would not hold; keep the garbage collector from re-walking them.
    gc.collect()
    gc.freeze()
    store = DynamoMessageStore("standin", client=standin)  # type: ignore[arg-type]
    resolve = api_resolver(store)
    began = time.perf_counter()
    baseline_rows = read_all(store)
    baseline = time.perf_counter() - began
    assert baseline_rows == export_rows
    for fmt in ("csv", "jsonl"):
        began = time.perf_counter()
        exported, answers, size = export_all(resolve, fmt)
        seconds = time.perf_counter() - began
        assert exported == export_rows, (fmt, exported)
        figures.append(
            Figure(
                f"export {export_rows:,} msgs as {fmt.upper()} (bundle time)",
                seconds,
                "s",
                note=(
                    f"{export_rows / seconds:,.0f} rows/s, {answers} answers, {size / 1e6:.1f} MB; "
                    f"{ratio(seconds, baseline):.2f}x reading them unformatted ({baseline:.1f} s)"
                ),
            )
        )

    # The same export end to end through moto, as `make run` serves it.
    moto_store = DynamoMessageStore(tables[moto_export_rows], client=client)
    resolve = api_resolver(moto_store)
    with meter.measure():
        exported, answers, _ = export_all(resolve, "csv")
    assert exported == moto_export_rows
    figures.append(
        Figure(
            f"export {moto_export_rows:,} msgs as CSV through moto (make run)",
            meter.seconds,
            "s",
            note=f"{answers} answers, {meter.calls} Query calls of <= 1,000 items",
        )
    )
    return figures


def main() -> None:
    """Print the figures (the harness normally runs ``run``)."""
    import sys  # noqa: PLC0415

    for figure in run("--quick" in sys.argv):
        print(figure)


if __name__ == "__main__":
    main()
