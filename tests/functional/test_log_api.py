"""The message log API (GET /messages, /messages/{id}, /messages/export, /messages/stats,
/opt-outs, the OpenAPI document and the page) against the embedded DynamoDB server.

Requests are API Gateway REST proxy events, as the local gateway and API Gateway build
them; the routes run in a resolver wired like MessagesApiFunction's.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from openapi_spec_validator import validate

from plumsms import bootstrap
from plumsms.adapters.dynamodb import keys, sharding
from plumsms.adapters.dynamodb.store import DynamoMessageStore
from plumsms.config import Settings
from plumsms.domain.models import HistoryEntry, InboundRecord, Message, MessageType, OptOut
from plumsms.domain.paging import MAX_CURSOR_CHARS, CursorCodec, derive_key
from plumsms.domain.queries import MessageQuery
from plumsms.entrypoints import log_api
from plumsms.entrypoints.webhooks import api_resolver
from plumsms.secrets import SecretValues
from plumsms.usecases.log import EXPORT_COLUMNS, messages_scope
from plumsms_local import template
from plumsms_local.gateway import proxy_event
from plumsms_local.lambda_runtime import LocalContext
from tests.factories import put_message

ACCOUNT = "+12435678910"
OTHER_ACCOUNT = "+12435678911"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@dataclass
class Api:
    """The log routes in a resolver, a store to seed, and a record of DynamoDB calls."""

    app: APIGatewayRestResolver
    store: DynamoMessageStore
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def get(
        self, path: str, query: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        raw = path + ("?" + urlencode(query) if query else "")
        resource = (
            "/messages/{id}" if path.count("/") == 2 and path.startswith("/messages/") else path
        )
        event = proxy_event("GET", raw, headers or {}, b"", resource=resource, path_parameters=None)
        return self.app.resolve(event, context())

    def json(self, path: str, query: dict[str, Any] | None = None) -> Any:
        response = self.get(path, query)
        assert response["statusCode"] == 200, response["body"]
        return json.loads(response["body"])

    def operations(self) -> list[str]:
        return [name for name, _ in self.calls]


def context() -> Any:
    """A Lambda context as the local runtime gives it (29 s, the function's timeout)."""
    return LocalContext("MessagesApiFunction", timeout_seconds=29)


def header(response: dict[str, Any], name: str) -> str | None:
    for key, values in (response.get("multiValueHeaders") or {}).items():
        if key.lower() == name.lower():
            return ", ".join(values)
    for key, value in (response.get("headers") or {}).items():
        if key.lower() == name.lower():
            return str(value)
    return None


@pytest.fixture
def api(function_env: dict[str, str], ddb: Any) -> Iterator[Api]:
    settings = Settings.from_env()
    store = bootstrap.message_store(settings)
    recorder = Api(api_resolver(settings, validation=True), store)

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        recorder.calls.append((model.name, params))

    store.client.meta.events.register("provide-client-params.dynamodb.*", record)
    recorder.app.include_router(
        log_api.routes_from_settings(settings, store, SecretValues(settings))
    )
    log_api.enable_api_document(recorder.app)
    yield recorder


def make(
    index: int,
    *,
    kind: MessageType = MessageType.OUTBOUND,
    customer: str = "+19998880000",
    account: str = ACCOUNT,
    status: str = "delivered",
    created: datetime | None = None,
    body: str | None = None,
) -> Message:
    at = created or T0 + timedelta(minutes=index)
    inbound = kind is MessageType.INBOUND
    return Message.model_validate(
        {
            "id": uuid.uuid4().hex,
            "type": kind,
            "to": account if inbound else customer,
            "from": customer if inbound else account,
            "body": body if body is not None else f"message {index}",
            "status": status,
            "created_at": at,
            "updated_at": at,
            "segments": 1,
            "encoding": "GSM-7",
            "history": [HistoryEntry(status=status, at=at, source="test")],
        }
    )


def seed(store: DynamoMessageStore, messages: list[Message]) -> list[Message]:
    for message in messages:
        put_message(store, message)
    return messages


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


def newest_first(messages: list[Message]) -> list[str]:
    return [m.id for m in sorted(messages, key=lambda m: (m.created_at, m.id), reverse=True)]


# -- filters ---------------------------------------------------------------------------


@pytest.fixture
def mixed(api: Api) -> list[Message]:
    """Inbound, outbound and reply messages for two customers and two account numbers."""
    return seed(
        api.store,
        [
            make(0, kind=MessageType.INBOUND, customer="+19998881111", status="received"),
            make(1, kind=MessageType.REPLY, customer="+19998881111", status="sent"),
            make(2, customer="+19998881111", status="failed"),
            make(3, customer="+19998882222", status="delivered"),
            make(4, customer="+19998882222", account=OTHER_ACCOUNT, status="failed"),
            make(
                5,
                kind=MessageType.INBOUND,
                customer="+19998882222",
                account=OTHER_ACCOUNT,
                status="received",
            ),
            make(6, customer="+19998881111", status="scheduled"),
        ],
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, lambda m: True),
        ({"number": "+19998881111"}, lambda m: "+19998881111" in (m.to, m.from_)),
        ({"number": OTHER_ACCOUNT}, lambda m: OTHER_ACCOUNT in (m.to, m.from_)),
        ({"number": "(999) 888-2222"}, lambda m: "+19998882222" in (m.to, m.from_)),
        ({"type": "inbound"}, lambda m: m.type is MessageType.INBOUND),
        ({"type": "reply"}, lambda m: m.type is MessageType.REPLY),
        ({"status": "failed"}, lambda m: m.status == "failed"),
        (
            {"number": "+19998881111", "status": "failed"},
            lambda m: m.id and m.status == "failed" and m.to == "+19998881111",
        ),
        (
            {"number": "+19998882222", "type": "inbound"},
            lambda m: m.type is MessageType.INBOUND and m.from_ == "+19998882222",
        ),
        ({"status": "received", "type": "inbound"}, lambda m: m.status == "received"),
        (
            {
                "start": (T0 + timedelta(minutes=2)).isoformat(),
                "end": (T0 + timedelta(minutes=4)).isoformat(),
            },
            lambda m: T0 + timedelta(minutes=2) <= m.created_at <= T0 + timedelta(minutes=4),
        ),
        (
            {"number": ACCOUNT, "start": (T0 + timedelta(minutes=3)).isoformat()},
            lambda m: m.account_number == ACCOUNT and m.created_at >= T0 + timedelta(minutes=3),
        ),
    ],
    ids=[
        "none",
        "customer-number",
        "account-number",
        "national-format",
        "type-inbound",
        "type-reply",
        "status",
        "number-and-status",
        "number-and-type",
        "status-and-type",
        "time-range",
        "number-and-start",
    ],
)
def test_each_filter_returns_exactly_its_messages_through_index_queries(
    api: Api, mixed: list[Message], query: dict[str, str], expected: Callable[[Message], bool]
) -> None:
    # GIVEN a mixed log
    api.calls.clear()
    # WHEN it is searched with the filter
    data = api.json("/messages", query)
    # THEN exactly the matching messages come back, newest first
    assert ids(data["items"]) == newest_first([m for m in mixed if expected(m)])
    assert data["next_cursor"] is None
    # AND the store answered with Queries on indexes and reads by key, never a Scan
    assert "Query" in api.operations()
    assert set(api.operations()) <= {"Query", "BatchGetItem"}
    assert all("IndexName" in params for name, params in api.calls if name == "Query")


def test_the_items_are_the_documented_message_json(api: Api) -> None:
    # GIVEN one message
    [message] = seed(api.store, [make(1)])
    # WHEN listed
    [item] = api.json("/messages")["items"]
    # THEN it is the contract's Message JSON
    assert item == message.to_json()
    assert set(item) >= {
        "id",
        "sms_message_id",
        "type",
        "to",
        "from",
        "body",
        "status",
        "created_at",
        "updated_at",
        "send_at",
        "result_url",
        "segments",
        "encoding",
        "error",
        "history",
    }


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_sort_orders(api: Api, order: str) -> None:
    # GIVEN messages created at different times
    messages = seed(api.store, [make(i) for i in (3, 1, 4, 0, 2)])
    # WHEN listed in each order
    data = api.json("/messages", {"order": order})
    # THEN they come oldest or newest first
    expected = newest_first(messages)
    assert ids(data["items"]) == (expected[::-1] if order == "asc" else expected)


# -- paging ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "limit"),
    [
        ({}, 3),
        ({"order": "asc"}, 4),
        ({"number": "+19998881111"}, 2),
        ({"status": "failed", "order": "asc"}, 1),
    ],
)
def test_following_next_cursor_gives_every_message_once(
    api: Api, query: dict[str, str], limit: int
) -> None:
    # GIVEN 13 messages, several created in the very same microsecond
    same_instant = T0 + timedelta(minutes=30)
    messages = seed(
        api.store,
        [make(i, customer="+19998881111", status="failed") for i in range(6)]
        + [
            make(i, customer="+19998881111", status="failed", created=same_instant)
            for i in range(7)
        ],
    )
    # WHEN the pages are followed through next_cursor
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        pages += 1
        data = api.json(
            "/messages", {**query, "limit": limit, **({"cursor": cursor} if cursor else {})}
        )
        assert len(data["items"]) <= limit
        seen.extend(ids(data["items"]))
        cursor = data["next_cursor"]
        if cursor is None:
            break
        assert pages < 50
    # THEN no message is missing or repeated, and the order holds across pages
    expected = newest_first(messages)
    assert seen == (expected[::-1] if query.get("order") == "asc" else expected)
    assert pages == -(-13 // limit)


def test_pending_sends_are_listed_by_send_time_across_pages(api: Api) -> None:
    # GIVEN seven scheduled sends created in an order unlike their send times (two due in
    # the same microsecond), and messages in other statuses
    due = [5, 1, 6, 3, 3, 0, 4]
    pending = [
        make(i, status="scheduled").model_copy(
            update={"send_at": T0 + timedelta(days=1, hours=hours)}
        )
        for i, hours in enumerate(due)
    ]
    seed(api.store, [*pending, make(20, status="delivered"), make(21, status="cancelled")])
    expected = [m.id for m in sorted(pending, key=lambda m: (m.send_at, m.id))]
    # WHEN the pending sends are listed by send time, two a page, following next_cursor
    seen: list[str] = []
    cursor: str | None = None
    api.calls.clear()
    for _ in range(10):
        query = {"status": "scheduled", "sort": "send_at", "order": "asc", "limit": 2}
        data = api.json("/messages", {**query, **({"cursor": cursor} if cursor else {})})
        seen.extend(ids(data["items"]))
        cursor = data["next_cursor"]
        if cursor is None:
            break
    # THEN every pending send comes once, soonest first across pages, read from the Due
    # index; newest first is the reverse
    assert seen == expected
    assert {p.get("IndexName") for name, p in api.calls if name == "Query"} == {"Due"}
    latest = api.json("/messages", {"status": "scheduled", "sort": "send_at", "limit": 100})
    assert ids(latest["items"]) == expected[::-1]
    # AND a cursor of the send-time listing is refused by the creation-time listing
    first = api.json("/messages", {**query, "limit": 2})
    other = api.get(
        "/messages",
        {"status": "scheduled", "order": "asc", "limit": 2, "cursor": first["next_cursor"]},
    )
    assert other["statusCode"] == 400


@pytest.mark.parametrize(
    "query",
    [
        {"sort": "send_at"},
        {"sort": "send_at", "status": "delivered"},
        {"sort": "send_at", "status": "scheduled", "number": "+19998880000"},
        {"sort": "send_at", "status": "scheduled", "type": "outbound"},
        {"sort": "due"},
    ],
)
def test_sorting_by_send_time_is_for_pending_sends_only(api: Api, query: dict[str, str]) -> None:
    # GIVEN a send-time listing asked for anything but all pending sends
    # WHEN the log is searched THEN the answer is a 400 naming sort
    response = api.get("/messages", query)
    assert response["statusCode"] == 400, response["body"]
    assert json.loads(response["body"])["field"] == "sort"


def test_messages_arriving_while_paging_do_not_shift_the_pages(api: Api) -> None:
    # GIVEN the first page of a newest-first listing
    old = seed(api.store, [make(i) for i in range(6)])
    first = api.json("/messages", {"limit": 3})
    # WHEN new messages arrive before the second page is read
    seed(api.store, [make(100 + i) for i in range(3)])
    second = api.json("/messages", {"limit": 3, "cursor": first["next_cursor"]})
    # THEN the second page continues exactly where the first stopped
    assert ids(first["items"]) + ids(second["items"]) == newest_first(old)
    assert second["next_cursor"] is None


def test_one_page_reads_about_one_page_from_the_table(api: Api) -> None:
    # GIVEN 60 messages
    seed(api.store, [make(i) for i in range(60)])
    api.calls.clear()
    # WHEN a page of 10 is read, then the next one through its cursor, in both orders
    for order in ("desc", "asc"):
        api.calls.clear()
        first = api.json("/messages", {"limit": 10, "order": order})
        assert_one_page_read(api.calls)
        api.calls.clear()
        api.json("/messages", {"limit": 10, "order": order, "cursor": first["next_cursor"]})
        # THEN each page reads 11 items (the page and a look-ahead): the cursor's bound
        # excludes the row it points at
        assert_one_page_read(api.calls)


def assert_one_page_read(calls: list[tuple[str, dict[str, Any]]]) -> None:
    """One Query per shard of the time index, about a page in all, and 11 items by key."""
    queries = [params for name, params in calls if name == "Query"]
    per_shard = sharding.per_shard_limit(11)
    assert sorted(q["ExpressionAttributeValues"][":pk"]["S"] for q in queries[: keys.SHARDS]) == (
        keys.shard_values(keys.ALL_MESSAGES)
    )
    assert all(q["Limit"] == per_shard for q in queries)
    # a shard holding more than its share of the page needs a second page, rarely a third
    assert len(queries) <= 2 * keys.SHARDS
    gets = [params for name, params in calls if name == "BatchGetItem"]
    assert sum(len(spec["Keys"]) for g in gets for spec in g["RequestItems"].values()) == 11


@pytest.mark.parametrize(
    "tamper",
    [
        lambda c: c[:-2] + ("AA" if not c.endswith("AA") else "BB"),
        lambda c: "x" + c[1:] if c[0] != "x" else "y" + c[1:],
        lambda c: c.split(".")[0],
        lambda c: "not-a-cursor",
        lambda c: c + "." + c,
    ],
    ids=["tag", "payload", "no-tag", "garbage", "doubled"],
)
def test_a_tampered_cursor_is_a_400_naming_the_cursor(
    api: Api, tamper: Callable[[str], str]
) -> None:
    # GIVEN a valid cursor
    seed(api.store, [make(i) for i in range(4)])
    cursor = api.json("/messages", {"limit": 2})["next_cursor"]
    # WHEN it is altered and presented
    response = api.get("/messages", {"limit": 2, "cursor": tamper(cursor)})
    # THEN the answer is 400 with the field named
    assert response["statusCode"] == 400
    body = json.loads(response["body"])
    assert body["field"] == "cursor"
    assert body["message"].startswith("cursor: ")


def test_cursors_are_signed_with_their_own_key_not_the_webhook_key(
    api: Api, function_env: dict[str, str]
) -> None:
    # GIVEN a page whose cursor the API signed
    seed(api.store, [make(i) for i in range(4)])
    issued = api.json("/messages", {"limit": 2})["next_cursor"]
    payload = issued.split(".")[0]
    position = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["p"]
    scope_query = MessageQuery(limit=2)
    # THEN it is what the cursor key signs, and a key derived from the webhook key is refused
    assert (
        CursorCodec(derive_key(function_env["CURSOR_KEY"])).encode(
            position, messages_scope(scope_query)
        )
        == issued
    )
    forged = CursorCodec(derive_key(function_env["WEBHOOK_KEY"])).encode(
        position, messages_scope(scope_query)
    )
    response = api.get("/messages", {"limit": 2, "cursor": forged})
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["field"] == "cursor"


def test_a_cursor_used_with_other_filters_is_a_400(api: Api) -> None:
    # GIVEN a cursor issued for newest-first
    seed(api.store, [make(i) for i in range(4)])
    cursor = api.json("/messages", {"limit": 2})["next_cursor"]
    # WHEN it is presented with another order
    response = api.get("/messages", {"limit": 2, "cursor": cursor, "order": "asc"})
    # THEN it is refused: it would seek in the wrong direction
    assert response["statusCode"] == 400
    assert "different filters" in json.loads(response["body"])["rule"]


# -- bad parameters --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "1001"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"number": "not a number"}, "number"),
        ({"type": "sideways"}, "type"),
        ({"status": "teleported"}, "status"),
        ({"order": "random"}, "order"),
        ({"start": "yesterday"}, "start"),
        ({"start": "2024-05-01T10:00:00"}, "start"),
        ({"start": "2024-05-02T00:00:00Z", "end": "2024-05-01T00:00:00Z"}, "end"),
        ({"after": "2024-05-01T00:00:00.000000Z#abc"}, "after"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_parameters_are_400s_naming_the_parameter(
    api: Api, query: dict[str, str], field: str
) -> None:
    # GIVEN a bad query parameter
    # WHEN the log is searched with it
    response = api.get("/messages", query)
    # THEN the answer is 400 naming that parameter
    assert response["statusCode"] == 400, response["body"]
    body = json.loads(response["body"])
    assert body["field"] == field
    assert body["message"].startswith(f"{field}: ")


def test_a_repeated_parameter_is_a_400(api: Api) -> None:
    # GIVEN a query string with status twice
    event = proxy_event(
        "GET",
        "/messages?status=failed&status=sent",
        {},
        b"",
        resource="/messages",
        path_parameters=None,
    )
    # WHEN it is resolved
    response = api.app.resolve(event, context())
    # THEN it is refused rather than silently using one of them
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["field"] == "status"


# -- one message -----------------------------------------------------------------------


def test_one_message_has_body_result_url_and_history_oldest_first(api: Api) -> None:
    # GIVEN a message with a result URL and history recorded out of order
    at = T0
    message = make(1, status="delivered", body='Hi <b>there</b> & "you"').model_copy(
        update={
            "result_url": "https://sms.example.test/plum/status?key=k&ref=x",
            "sms_message_id": "ab" * 16,
            "history": [
                HistoryEntry(status="delivered", at=at + timedelta(seconds=9), source="plum"),
                HistoryEntry(status="scheduled", at=at, source="api"),
                HistoryEntry(status="queued", at=at + timedelta(seconds=2), source="dispatcher"),
            ],
        }
    )
    seed(api.store, [Message.model_validate(message.model_dump(by_alias=True))])
    # WHEN it is fetched
    data = api.json(f"/messages/{message.id}")
    # THEN body, result URL and the history (oldest first) are there, verbatim
    assert data["body"] == 'Hi <b>there</b> & "you"'
    # The webhook key is masked in every API answer.
    assert data["result_url"] == "https://sms.example.test/plum/status?key=***&ref=x"
    assert data["sms_message_id"] == "ab" * 16
    assert [h["status"] for h in data["history"]] == ["scheduled", "queued", "delivered"]


@pytest.mark.parametrize("message_id", [uuid.uuid4().hex, "NOT-AN-ID", "0" * 33])
def test_an_unknown_message_is_a_404(api: Api, message_id: str) -> None:
    # GIVEN an id that is not in the log
    # WHEN it is fetched
    response = api.get(f"/messages/{message_id}")
    # THEN the answer is 404
    assert response["statusCode"] == 404
    assert json.loads(response["body"]) == {"message": "not found"}


# -- export ----------------------------------------------------------------------------


def export_all(api: Api, query: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    parts: list[str] = []
    answers: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        response = api.get("/messages/export", {**query, **({"cursor": cursor} if cursor else {})})
        assert response["statusCode"] == 200, response["body"]
        answers.append(response)
        parts.append(response["body"])
        cursor = header(response, "X-Next-Cursor")
        if not cursor:
            return "".join(parts), answers
        assert len(answers) < 100


def test_csv_export_follows_cursors_to_the_whole_filtered_set(api: Api) -> None:
    # GIVEN 11 failed and 5 delivered messages, one body with CSV specials
    failed = seed(
        api.store, [make(i, status="failed", body=f'line {i}, "quoted"\nnext') for i in range(11)]
    )
    seed(api.store, [make(50 + i) for i in range(5)])
    # WHEN the failed ones are exported 4 rows per answer
    text, answers = export_all(api, {"status": "failed", "format": "csv", "limit": 4})
    # THEN three answers concatenate into one CSV with one header and every failed message
    assert len(answers) == 3
    assert [header(a, "X-Export-Rows") for a in answers] == ["4", "4", "3"]
    assert header(answers[0], "Content-Type") == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == list(EXPORT_COLUMNS)
    assert [r["id"] for r in rows] == newest_first(failed)
    assert rows[0]["body"].endswith('"quoted"\nnext')


def test_jsonl_export_matches_the_listing(api: Api) -> None:
    # GIVEN messages for two customers
    seed(
        api.store, [make(i, customer="+19998881111" if i % 2 else "+19998882222") for i in range(9)]
    )
    # WHEN one customer's messages are exported as JSON Lines, oldest first, 2 per answer
    query = {"number": "+19998881111", "order": "asc"}
    text, answers = export_all(api, {**query, "format": "jsonl", "limit": 2})
    # THEN each line is the message JSON the listing gives, in the same order
    listed = api.json("/messages", query)["items"]
    assert [json.loads(line) for line in text.splitlines()] == listed
    assert header(answers[0], "Content-Type") == "application/x-ndjson"
    assert len(answers) == 2


def test_an_empty_export_is_a_header_only_csv(api: Api) -> None:
    # GIVEN an empty log
    # WHEN it is exported
    text, answers = export_all(api, {"format": "csv"})
    # THEN the answer is just the header, with no next cursor
    assert text == ",".join(EXPORT_COLUMNS) + "\r\n"
    assert header(answers[0], "X-Export-Rows") == "0"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"format": "xlsx"}, "format"),
        ({"limit": "50001"}, "limit"),
        ({"type": "sms"}, "type"),
        ({"numbr": "+14155550100"}, "numbr"),
    ],
)
def test_bad_export_parameters_are_400s(api: Api, query: dict[str, str], field: str) -> None:
    response = api.get("/messages/export", query)
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["field"] == field


# -- opt-outs and chart ----------------------------------------------------------------


def test_opt_outs_are_listed_newest_first_with_paging(api: Api) -> None:
    # GIVEN three numbers that texted STOP (each recorded with its inbound message)
    numbers = ["+19998883331", "+19998883332", "+19998883333"]
    for offset, number in enumerate(numbers):
        inbound = make(
            offset, kind=MessageType.INBOUND, customer=number, status="received", body="STOP"
        )
        opt_out = OptOut(
            number=number, keyword="STOP", at=inbound.created_at, message_id=inbound.id
        )
        api.store.record_inbound(InboundRecord(inbound, opt_out=opt_out))
    # WHEN listed two at a time
    first = api.json("/opt-outs", {"limit": 2})
    second = api.json("/opt-outs", {"limit": 2, "cursor": first["next_cursor"]})
    # THEN all three come, newest first, with their keyword and message id
    items = first["items"] + second["items"]
    assert [i["number"] for i in items] == numbers[::-1]
    assert items[0]["keyword"] == "STOP"
    assert second["next_cursor"] is None
    # AND a message cursor is not accepted here
    messages_cursor = None
    seed(api.store, [make(i) for i in range(3)])
    messages_cursor = api.json("/messages", {"limit": 1})["next_cursor"]
    assert api.get("/opt-outs", {"cursor": messages_cursor})["statusCode"] == 400


def test_stats_count_messages_per_day_by_status(api: Api) -> None:
    # GIVEN messages today (a few minutes ago, but never before midnight: the test may run
    # just after it) and two days ago
    now = datetime.now(UTC).replace(microsecond=0)
    midnight = now.replace(hour=0, minute=0, second=0)

    def today(minutes_ago: int) -> datetime:
        return max(now - timedelta(minutes=minutes_ago), midnight)

    seed(
        api.store,
        [
            make(1, created=today(5), status="delivered"),
            make(2, created=today(4), status="delivered"),
            make(3, created=today(3), status="failed"),
            make(4, created=now - timedelta(days=2), status="sent"),
            make(5, created=now - timedelta(days=30), status="sent"),
        ],
    )
    # WHEN the last 7 UTC days are counted
    data = api.json("/messages/stats", {"days": 7, "tz": "UTC"})
    # THEN each day has its counts per status and the old message is outside
    assert len(data["days"]) == 7
    last_day = data["days"][-1]
    assert last_day["date"] == now.date().isoformat()
    assert last_day["counts"] == {"delivered": 2, "failed": 1}
    assert data["days"][-3]["counts"] == {"sent": 1}
    assert sum(d["total"] for d in data["days"]) == 4
    assert data["complete"] is True


@pytest.mark.parametrize("path", ["/messages/" + "a" * 32, "/opt-outs", "/messages/stats"])
def test_every_data_route_refuses_a_parameter_it_does_not_take(api: Api, path: str) -> None:
    response = api.get(path, {"colour": "blue"})
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["field"] == "colour"


@pytest.mark.parametrize(
    ("query", "field"), [({"tz": "Mars/Olympus"}, "tz"), ({"days": "91"}, "days")]
)
def test_bad_stats_parameters_are_400s(api: Api, query: dict[str, str], field: str) -> None:
    response = api.get("/messages/stats", query)
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["field"] == field


# -- documentation and page ------------------------------------------------------------


def test_the_openapi_document_describes_the_log_routes(api: Api) -> None:
    # WHEN the OpenAPI document is fetched
    doc = api.json("/openapi.json")
    # THEN it lists the log routes with their query parameters and bearer security
    assert doc["openapi"].startswith("3.1")
    assert {"/messages", "/messages/{message_id}", "/messages/export", "/opt-outs"} <= set(
        doc["paths"]
    )
    params = {p["name"]: p for p in doc["paths"]["/messages"]["get"]["parameters"]}
    assert set(params) == {
        "number", "type", "status", "start", "end", "order", "limit", "cursor", "sort",
    }  # fmt: skip
    assert params["sort"]["schema"]["enum"] == ["created_at", "send_at"]
    assert params["limit"]["schema"]["maximum"] == 1000
    [kind, _] = params["type"]["schema"]["anyOf"]
    assert resolve(doc, kind)["enum"] == ["inbound", "outbound", "reply"]
    assert doc["components"]["securitySchemes"]["apiToken"]["scheme"] == "bearer"
    assert "/ui" not in doc["paths"]
    assert doc["servers"] == [{"url": "."}]


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``schema``, or the component its ``$ref`` names."""
    ref = schema.get("$ref")
    if ref is None:
        return schema
    found: dict[str, Any] = doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return found


def test_the_openapi_document_is_valid_openapi_3_1(api: Api) -> None:
    # GIVEN the document the API serves
    doc = api.json("/openapi.json")
    # WHEN a real OpenAPI validator reads it THEN it raises nothing
    validate(doc)
    # AND the Swagger page embeds the same document
    assert api.json("/api-docs", {"format": "json"}) == doc


def test_every_error_answer_is_documented_with_the_real_error_shape(api: Api) -> None:
    # GIVEN the document
    doc = api.json("/openapi.json")
    error = doc["components"]["schemas"]["ErrorBody"]
    # THEN the error body is {"message", "field", "rule"} and Powertools' 422 is gone
    assert set(error["properties"]) == {"message", "field", "rule"}
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            assert "422" not in operation["responses"], (path, method)
    listing = doc["paths"]["/messages"]["get"]["responses"]
    assert resolve(doc, listing["400"]["content"]["application/json"]["schema"]) == error


def test_the_api_explorer_is_self_contained(api: Api) -> None:
    # WHEN the interactive API page is fetched
    response = api.get("/api-docs")
    html = response["body"]
    # THEN it is Swagger UI with its script and styles inline (no CDN), over our document
    assert response["statusCode"] == 200
    assert "SwaggerUIBundle" in html
    assert "<script src=" not in html
    assert "<link rel='stylesheet'" not in html
    assert log_api.API_TITLE in html
    assert "connect-src 'self'" in (header(response, "Content-Security-Policy") or "")


def test_the_page_is_served_with_a_strict_content_security_policy(api: Api) -> None:
    # WHEN the page is fetched
    response = api.get("/ui")
    # THEN it is HTML whose scripts may only come from the bundle itself
    assert response["statusCode"] == 200
    assert header(response, "Content-Type") == "text/html; charset=utf-8"
    csp = header(response, "Content-Security-Policy") or ""
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert '<script src="ui/app.js"' in response["body"]


def test_page_assets_revalidate_with_etags(api: Api) -> None:
    # GIVEN the script's first answer
    first = api.get("/ui/app.js")
    etag = header(first, "ETag")
    assert first["statusCode"] == 200
    assert header(first, "Content-Type") == "text/javascript; charset=utf-8"
    assert etag
    # WHEN it is asked for again with its ETag
    again = api.get("/ui/app.js", headers={"if-none-match": etag})
    # THEN the answer is 304 without a body
    assert again["statusCode"] == 304
    assert not again["body"]


def test_the_page_script_never_writes_html_from_data(api: Api) -> None:
    # GIVEN the page's script
    script = api.get("/ui/app.js")["body"]
    # THEN it never uses the HTML-parsing sinks
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script


@pytest.mark.parametrize("asset", ["app.py", "..%2Fapp.js", "index.html"])
def test_unknown_assets_are_404s(api: Api, asset: str) -> None:
    assert api.get(f"/ui/{asset}")["statusCode"] == 404


def test_the_page_with_a_trailing_slash_redirects(api: Api) -> None:
    response = api.get("/ui/")
    assert response["statusCode"] == 308
    assert header(response, "Location") == "../ui"


# -- the template ----------------------------------------------------------------------


def test_data_routes_are_iam_authorised_and_page_routes_public() -> None:
    # GIVEN the template's routes of MessagesApiFunction
    routes = {
        (r.method, r.path): r for r in template.routes() if r.function == "MessagesApiFunction"
    }
    # THEN every log data route requires IAM (a bearer token locally)
    for path in ("/messages", "/messages/{id}", "/messages/export", "/messages/stats", "/opt-outs"):
        assert routes[("GET", path)].authorized, path
    # AND the page, its assets and the API description are public (they hold no data)
    for path in ("/ui", "/ui/{asset}", "/openapi.json", "/api-docs"):
        assert not routes[("GET", path)].authorized, path


def test_messages_api_function_serves_the_log(
    load_function: Any, function_env: dict[str, str]
) -> None:
    # GIVEN MessagesApiFunction cold-started like Lambda, and one logged message
    settings = Settings.from_env()
    [message] = seed(bootstrap.message_store(settings), [make(1)])
    fn = load_function("messages_api")
    # WHEN the log and the message are requested through its handler
    listing = fn.invoke(
        proxy_event("GET", "/messages?limit=5", {}, b"", resource="/messages", path_parameters=None)
    )
    one = fn.invoke(
        proxy_event(
            "GET",
            f"/messages/{message.id}",
            {},
            b"",
            resource="/messages/{id}",
            path_parameters={"id": message.id},
        )
    )
    # THEN both answer with the message
    assert listing["statusCode"] == 200
    assert ids(json.loads(listing["body"])["items"]) == [message.id]
    assert json.loads(one["body"])["id"] == message.id
    # AND its OpenAPI document covers both routers (sending and log)
    doc = fn.invoke(
        proxy_event("GET", "/openapi.json", {}, b"", resource="/openapi.json", path_parameters=None)
    )
    assert doc["statusCode"] == 200
    paths = json.loads(doc["body"])["paths"]
    assert {"post", "get"} <= set(paths["/messages"])


def test_the_listing_and_the_export_document_their_shared_filters_in_full(api: Api) -> None:
    # WHEN the OpenAPI document is fetched
    doc = api.json("/openapi.json")

    def parameters(path: str) -> dict[str, Any]:
        return {p["name"]: p for p in doc["paths"][path]["get"]["parameters"]}

    listed, exported = parameters("/messages"), parameters("/messages/export")
    # THEN both routes document the same filters, each with its whole schema (not the
    # bare "string" Powertools gives a query model's fields)
    for name in ("number", "type", "status", "start", "end", "order", "cursor"):
        assert listed[name] == exported[name], name
    [status, _] = exported["status"]["schema"]["anyOf"]
    assert "scheduled" in resolve(doc, status)["enum"]
    assert exported["start"]["schema"]["anyOf"][0]["format"] == "date-time"
    assert exported["cursor"]["schema"]["anyOf"][0]["maxLength"] == MAX_CURSOR_CHARS
    assert exported["order"]["schema"]["enum"] == ["asc", "desc"]
    # AND the model's own name is no parameter: sent, it is refused like any unknown one
    assert "filters" not in listed
    refused = api.get("/messages/export", {"filters": "x"})
    assert refused["statusCode"] == 400
    assert json.loads(refused["body"])["field"] == "filters"
