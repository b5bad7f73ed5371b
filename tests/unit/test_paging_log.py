"""The log use case over an in-memory log: cursor chains, export pages, the daily chart."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plumsms.domain.errors import NotFound, ValidationFailed
from plumsms.domain.models import HistoryEntry, Message, MessageType, OptOut
from plumsms.domain.paging import LogPosition, derive_key
from plumsms.domain.queries import MessageQuery, Page
from plumsms.usecases import log as log_module
from plumsms.usecases.log import EXPORT_COLUMNS, ExportBudget, ExportFormat, LogService, export_line

ACCOUNT = "+12435678910"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
KEY = derive_key("unit-test-secret-0123456789")


def position(message: Message) -> LogPosition:
    return LogPosition(message.created_at, message.id)


class MemoryLog:
    """The store's contract in memory: seek after a position, in time order."""

    def __init__(self, messages: list[Message], opt_outs: list[OptOut] | None = None) -> None:
        self.messages = sorted(messages, key=position)
        self.opt_out_rows = sorted(opt_outs or [], key=lambda o: (o.at, o.number))
        self.reads = 0

    def _matching(self, query: MessageQuery) -> list[Message]:
        rows = [
            m
            for m in self.messages
            if (query.number is None or query.number in (m.to, m.from_))
            and (query.type is None or m.type == query.type)
            and (query.status is None or m.status == query.status)
            and (query.start is None or m.created_at >= query.start)
            and (query.end is None or m.created_at <= query.end)
        ]
        if query.order == "desc":
            rows.reverse()
        if query.after is not None:
            after = query.after
            rows = [
                m
                for m in rows
                if (position(m) < after if query.order == "desc" else position(m) > after)
            ]
        return rows

    def get(self, message_id: str) -> Message:
        for message in self.messages:
            if message.id == message_id:
                return message
        raise NotFound(message_id)

    def list_messages(self, query: MessageQuery) -> Page:
        rows = self._matching(query)
        page = rows[: query.limit]
        more = len(rows) > query.limit
        return Page(page, position(page[-1]) if more and page else None, len(page) + int(more))

    def iter_messages(self, query: MessageQuery) -> Iterator[tuple[Message, LogPosition]]:
        for message in self._matching(query):
            self.reads += 1
            yield message, position(message)

    def iter_statuses(
        self, start: datetime, end: datetime, page_size: int = 1000
    ) -> Iterator[tuple[datetime, str]]:
        for message in reversed(self.messages):
            if start <= message.created_at <= end:
                yield message.created_at, message.status

    def list_opt_outs(
        self, limit: int, order: str = "desc", after: LogPosition | None = None
    ) -> tuple[list[OptOut], LogPosition | None]:
        rows = list(reversed(self.opt_out_rows)) if order == "desc" else list(self.opt_out_rows)
        keyed = [(LogPosition(o.at, o.number), o) for o in rows]
        if after is not None:
            keyed = [(k, o) for k, o in keyed if (k < after if order == "desc" else k > after)]
        page = keyed[:limit]
        return [o for _, o in page], page[-1][0] if len(keyed) > limit and page else None


def message(index: int, **changes: object) -> Message:
    data: dict[str, object] = {
        "id": f"{index:032x}",
        "type": MessageType.OUTBOUND,
        "to": f"+1999888{index % 7:04d}",
        "from": ACCOUNT,
        "body": f"message {index}",
        "status": "delivered",
        "created_at": T0 + timedelta(minutes=index),
        "updated_at": T0 + timedelta(minutes=index),
        "segments": 1,
        "encoding": "GSM-7",
        "history": [
            HistoryEntry(status="delivered", at=T0 + timedelta(minutes=index), source="plum")
        ],
    }
    data.update(changes)
    return Message.model_validate(data)


def service(log: MemoryLog, **kwargs: Any) -> LogService:
    return LogService(log=log, cursor_key=lambda: KEY, **kwargs)


@settings(max_examples=40, deadline=None)
@given(
    count=st.integers(min_value=0, max_value=40),
    limit=st.integers(min_value=1, max_value=12),
    order=st.sampled_from(["asc", "desc"]),
)
def test_following_cursors_visits_every_message_once_in_order(
    count: int, limit: int, order: str
) -> None:
    # GIVEN a log of `count` messages
    log = MemoryLog([message(i) for i in range(count)])
    svc = service(log)
    query = MessageQuery(order=order, limit=limit)
    # WHEN the pages are followed cursor by cursor
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(count + 2):
        page = svc.page(query, cursor)
        assert len(page.items) <= limit
        seen.extend(m.id for m in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    # THEN every message came exactly once, in the requested order
    expected = [m.id for m in sorted(log.messages, key=position, reverse=order == "desc")]
    assert seen == expected


def test_a_cursor_cannot_be_replayed_with_other_filters() -> None:
    # GIVEN the first page of a status filter
    svc = service(MemoryLog([message(i, status="failed") for i in range(5)]))
    first = svc.page(MessageQuery(status="failed", limit=2))
    assert first.next_cursor
    # WHEN its cursor is used for another status
    # THEN it is a 400 on cursor
    with pytest.raises(ValidationFailed) as failure:
        svc.page(MessageQuery(status="sent", limit=2), first.next_cursor)
    assert failure.value.field == "cursor"


def _export_all(
    svc: LogService, fmt: ExportFormat, budget: ExportBudget, query: MessageQuery
) -> tuple[str, int]:
    parts: list[str] = []
    cursor: str | None = None
    answers = 0
    while True:
        answers += 1
        page = svc.export(query, fmt, cursor, budget)
        parts.append(page.body)
        cursor = page.next_cursor
        if cursor is None:
            return "".join(parts), answers
        assert answers < 1000


@pytest.mark.parametrize("rows_per_answer", [1, 3, 10, 1000])
def test_csv_answers_concatenate_into_one_file_with_one_header(rows_per_answer: int) -> None:
    # GIVEN 10 messages and an export limited to `rows_per_answer` rows per answer
    log = MemoryLog([message(i) for i in range(10)])
    # WHEN the cursor chain is followed and the answers are concatenated
    text, answers = _export_all(
        service(log),
        ExportFormat.CSV,
        ExportBudget(max_rows=rows_per_answer),
        MessageQuery(order="asc"),
    )
    # THEN it is one CSV: a header, then every message once, oldest first
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(EXPORT_COLUMNS)
    assert [r[0] for r in rows[1:]] == [m.id for m in log.messages]
    assert answers == -(-10 // rows_per_answer)


def test_jsonl_export_carries_the_whole_message_with_history() -> None:
    # GIVEN messages with history
    log = MemoryLog([message(i) for i in range(4)])
    # WHEN exported as JSON Lines two at a time
    text, _ = _export_all(
        service(log), ExportFormat.JSONL, ExportBudget(max_rows=2), MessageQuery()
    )
    # THEN each line is the message JSON, newest first
    lines = [json.loads(line) for line in text.splitlines()]
    assert [m["id"] for m in lines] == [m.id for m in reversed(log.messages)]
    assert lines[0]["history"][0]["status"] == "delivered"
    assert lines[0]["from"] == ACCOUNT


def test_the_byte_budget_splits_answers_without_losing_rows() -> None:
    # GIVEN large bodies (1,600 non-ASCII characters: 6 escaped bytes each)
    log = MemoryLog([message(i, body="é" * 1600, encoding="UCS-2", segments=24) for i in range(9)])
    line_size = len(json.dumps(export_line(log.messages[0], ExportFormat.JSONL)))
    budget = ExportBudget(max_rows=1000, max_bytes=int(line_size * 3.5))
    # WHEN exported under a budget of three and a half escaped lines
    svc = service(log)
    first = svc.export(MessageQuery(), ExportFormat.JSONL, None, budget)
    text, answers = _export_all(svc, ExportFormat.JSONL, budget, MessageQuery())
    # THEN each answer holds three rows, stays under the budget, and none is lost
    assert line_size > 6 * 1600
    assert first.rows == 3
    assert len(json.dumps(first.body)) <= budget.max_bytes
    assert answers == 3
    assert len(text.splitlines()) == 9


def test_the_time_budget_stops_an_answer_after_at_least_one_row() -> None:
    # GIVEN a clock that advances 5 seconds per reading and a 12-second budget
    ticks = iter(range(0, 10_000, 5))
    log = MemoryLog([message(i) for i in range(6)])
    svc = service(log, monotonic=lambda: float(next(ticks)))
    # WHEN one answer is produced
    page = svc.export(MessageQuery(), ExportFormat.JSONL, None, ExportBudget(max_seconds=12))
    # THEN it stops early with a cursor to continue
    assert 1 <= page.rows < 6
    assert page.next_cursor is not None


def test_export_reads_only_one_item_beyond_the_answer() -> None:
    # GIVEN 100 messages
    log = MemoryLog([message(i) for i in range(100)])
    # WHEN an answer of 10 rows is produced
    page = service(log).export(MessageQuery(), ExportFormat.CSV, None, ExportBudget(max_rows=10))
    # THEN the store was read for those rows plus one look-ahead, not the whole set
    assert page.rows == 10
    assert log.reads == 11


@pytest.mark.parametrize("body", ['=HYPERLINK("http://x")', "+1+1", "-2", "@SUM(A1)", "\tx"])
def test_csv_neutralises_formulas_in_free_text_but_jsonl_keeps_it(body: str) -> None:
    # GIVEN a body a spreadsheet would run as a formula
    log = MemoryLog([message(1, body=body, error="=ERR")])
    svc = service(log)
    # WHEN exported as CSV and as JSON Lines
    csv_text = svc.export(MessageQuery(), ExportFormat.CSV).body
    jsonl_text = svc.export(MessageQuery(), ExportFormat.JSONL).body
    # THEN CSV prefixes a quote to the free-text cells, phone numbers stay as they are
    row = dict(zip(EXPORT_COLUMNS, list(csv.reader(io.StringIO(csv_text)))[1], strict=True))
    assert row["body"] == "'" + body
    assert row["error"] == "'=ERR"
    assert row["from"] == ACCOUNT
    # AND JSON Lines is exact
    assert json.loads(jsonl_text)["body"] == body


def test_csv_quotes_commas_quotes_and_line_breaks() -> None:
    # GIVEN a body with every CSV special character
    body = 'Hi, "you"\nsecond line\r\nthird'
    log = MemoryLog([message(1, body=body)])
    # WHEN exported as CSV
    text = service(log).export(MessageQuery(), ExportFormat.CSV).body
    # THEN a CSV reader gives the body back unchanged
    row = list(csv.reader(io.StringIO(text)))[1]
    assert row[EXPORT_COLUMNS.index("body")] == body


def test_daily_counts_bucket_by_local_day_and_status() -> None:
    # GIVEN messages on both sides of midnight in New York (04:00 UTC in May)
    now = datetime(2024, 5, 3, 15, 0, tzinfo=UTC)
    log = MemoryLog(
        [
            message(1, created_at=datetime(2024, 5, 3, 3, 59, tzinfo=UTC), status="failed"),
            message(2, created_at=datetime(2024, 5, 3, 4, 1, tzinfo=UTC), status="delivered"),
            message(3, created_at=datetime(2024, 5, 3, 4, 2, tzinfo=UTC), status="delivered"),
            message(4, created_at=datetime(2024, 4, 20, tzinfo=UTC), status="sent"),  # outside
        ]
    )
    # WHEN three days are counted in America/New_York
    counts = service(log, clock=lambda: now).daily_counts(3, ZoneInfo("America/New_York"))
    # THEN the days are local, the statuses ordered as the state machine orders them
    assert [d for d, _ in counts.days] == [date(2024, 5, 1), date(2024, 5, 2), date(2024, 5, 3)]
    assert counts.days[1][1] == {"failed": 1}
    assert counts.days[2][1] == {"delivered": 2}
    assert counts.statuses == ["delivered", "failed"]
    assert counts.complete
    days: Any = counts.to_json()["days"]
    assert days[2] == {
        "date": "2024-05-03",
        "total": 2,
        "counts": {"delivered": 2},
    }


def test_daily_counts_stop_at_the_cap_and_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN more messages in the window than one chart request may read
    monkeypatch.setattr(log_module, "MAX_CHART_ITEMS", 5)
    now = T0 + timedelta(days=1)
    log = MemoryLog([message(i) for i in range(12)])
    # WHEN the chart is counted
    counts = service(log, clock=lambda: now).daily_counts(7, ZoneInfo("UTC"))
    # THEN the newest 5 are counted and the answer is marked incomplete since the 5th
    assert counts.items_read == 5
    assert not counts.complete
    assert counts.counted_since == T0 + timedelta(minutes=7)
    assert sum(sum(c.values()) for _, c in counts.days) == 5


def test_opt_out_pages_follow_their_own_cursors() -> None:
    # GIVEN five opt-outs
    opt_outs = [
        OptOut(
            number=f"+1999888{i:04d}",
            keyword="STOP",
            at=T0 + timedelta(hours=i),
            message_id=f"{i:032x}",
        )
        for i in range(5)
    ]
    svc = service(MemoryLog([], opt_outs))
    # WHEN they are listed two at a time
    first = svc.opt_outs(2)
    second = svc.opt_outs(2, cursor=first.next_cursor)
    third = svc.opt_outs(2, cursor=second.next_cursor)
    # THEN all five come, newest first, and the last page has no cursor
    numbers = [o.number for page in (first, second, third) for o in page.items]
    assert numbers == [o.number for o in reversed(opt_outs)]
    assert third.next_cursor is None
    # AND a message cursor is no opt-out cursor
    with pytest.raises(ValidationFailed):
        svc.opt_outs(2, order="asc", cursor=first.next_cursor)
