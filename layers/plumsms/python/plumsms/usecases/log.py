"""The message log: search pages, one message, paged exports, opt-outs, a daily chart.

Pure Python over a ``MessageLog`` port (the DynamoDB store implements it). Cursors are
opaque and signed (``plumsms.domain.paging``): each page hands back the position of its
last item, bound to the filters that produced it.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Generic, Literal, TypeVar
from zoneinfo import ZoneInfo

from plumsms.domain.models import Message, OptOut, Status, utc_now
from plumsms.domain.paging import CursorCodec, LogPosition, Scope
from plumsms.domain.queries import MAX_PAGE_SIZE, MessageQuery
from plumsms.usecases.ports import MessageLog

Order = Literal["asc", "desc"]
ItemT = TypeVar("ItemT")

EXPORT_COLUMNS = (
    "id", "created_at", "type", "status", "from", "to", "body", "segments", "encoding",
    "sms_message_id", "result_url", "send_at", "updated_at", "error", "unanswered",
)  # fmt: skip
"""CSV columns, in order. JSON Lines carries the whole message JSON, history included."""

_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_FREE_TEXT_COLUMNS = frozenset({"body", "error"})

MAX_CHART_DAYS = 90
MAX_CHART_ITEMS = 20_000
"""Most messages one chart request reads; older days of a busier window show as partial."""

STATUS_ORDER = tuple(s.value for s in Status)


class ExportFormat(StrEnum):
    """Export file formats."""

    CSV = "csv"
    JSONL = "jsonl"

    @property
    def content_type(self) -> str:
        """The HTTP media type of this format."""
        return "text/csv; charset=utf-8" if self is ExportFormat.CSV else "application/x-ndjson"


@dataclass(frozen=True, slots=True)
class ExportBudget:
    """How much one export answer may hold: rows, encoded size and time.

    ``max_bytes`` is measured on each line as JSON-escaped ASCII, its worst-case size
    inside the Lambda proxy response, which API Gateway caps at 6 MB.
    """

    max_rows: int = 10_000
    max_bytes: int = 4_500_000
    max_seconds: float = 20.0


@dataclass(frozen=True, slots=True)
class LogPage(Generic[ItemT]):
    """One page of messages or of opted-out numbers, and the cursor of the next (None: no
    more)."""

    items: list[ItemT]
    next_cursor: str | None
    items_read: int = 0
    """How many items the store read to fill the page (the cost metrics of the message
    log; opt-out pages do not count them)."""


@dataclass(frozen=True, slots=True)
class ExportPage:
    """One answer of an export: text in the chosen format and where the next one starts."""

    body: str
    rows: int
    next_cursor: str | None
    format: ExportFormat


@dataclass(frozen=True, slots=True)
class DailyCounts:
    """Messages per day and status over a window of days in one time zone.

    ``complete`` is False when the window held more than ``MAX_CHART_ITEMS`` messages:
    the newest were counted, and days before ``counted_since`` are missing some.
    """

    zone: str
    days: list[tuple[date, dict[str, int]]]
    statuses: list[str]
    complete: bool
    counted_since: datetime
    items_read: int

    def to_json(self) -> dict[str, object]:
        """The API shape."""
        return {
            "zone": self.zone,
            "statuses": self.statuses,
            "complete": self.complete,
            "counted_since": self.counted_since.isoformat().replace("+00:00", "Z"),
            "items_read": self.items_read,
            "days": [
                {"date": day.isoformat(), "total": sum(counts.values()), "counts": counts}
                for day, counts in self.days
            ],
        }


def messages_scope(query: MessageQuery) -> Scope:
    """What a message-log cursor is bound to: the filters and the order."""
    return {"list": "messages", **query.filters()}


def opt_outs_scope(order: Order) -> Scope:
    """What an opt-out cursor is bound to."""
    return {"list": "opt-outs", "order": order}


def _csv_cell(column: str, value: object) -> str:
    if value is None:
        return ""
    text = str(value)
    # Spreadsheets run cells that start like a formula; free text gets a leading quote.
    if column in _FREE_TEXT_COLUMNS and text.startswith(_FORMULA_PREFIXES):
        return "'" + text
    return text


def csv_header() -> str:
    """The CSV header line."""
    return _csv_line(EXPORT_COLUMNS)


def _csv_line(cells: tuple[str, ...] | list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue()


def export_line(message: Message, fmt: ExportFormat) -> str:
    """One message as a line of ``fmt``, ending with its line break."""
    data = message.to_json()
    if fmt is ExportFormat.JSONL:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n"
    return _csv_line([_csv_cell(c, data.get(c)) for c in EXPORT_COLUMNS])


def _escaped_size(text: str) -> int:
    return len(json.dumps(text)) - 2


@dataclass
class LogService:
    """Read side of the message log."""

    log: MessageLog
    cursor_key: Callable[[], bytes]
    clock: Callable[[], datetime] = utc_now
    monotonic: Callable[[], float] = field(default=time.monotonic)

    def _codec(self) -> CursorCodec:
        return CursorCodec(self.cursor_key())

    def _resume(self, query: MessageQuery, cursor: str | None) -> MessageQuery:
        if cursor is None:
            return query
        position = self._codec().decode_position(cursor, messages_scope(query))
        return query.model_copy(update={"after": position})

    def page(self, query: MessageQuery, cursor: str | None = None) -> LogPage[Message]:
        """The page of ``query`` starting after ``cursor`` (or the first page)."""
        found = self.log.list_messages(self._resume(query, cursor))
        next_cursor = (
            self._codec().encode_position(found.next_position, messages_scope(query))
            if found.next_position
            else None
        )
        return LogPage(found.items, next_cursor, found.items_read)

    def message(self, message_id: str) -> Message:
        """One message with its body, result URL and history (oldest first)."""
        return self.log.get(message_id)

    def export(
        self,
        query: MessageQuery,
        fmt: ExportFormat,
        cursor: str | None = None,
        budget: ExportBudget | None = None,
    ) -> ExportPage:
        """As many matching messages as ``budget`` allows, as text, and the next cursor.

        Concatenating the answers of a cursor chain gives the whole export: the CSV
        header is written only on the first answer (the one without a cursor).
        """
        budget = budget or ExportBudget()
        deadline = self.monotonic() + budget.max_seconds
        resumed = self._resume(query.model_copy(update={"limit": MAX_PAGE_SIZE}), cursor)
        parts: list[str] = [csv_header()] if fmt is ExportFormat.CSV and cursor is None else []
        size = sum(_escaped_size(p) for p in parts)
        rows = 0
        last: LogPosition | None = None
        more = False
        for message, position in self.log.iter_messages(resumed):
            line = export_line(message, fmt)
            line_size = _escaped_size(line)
            full = rows >= budget.max_rows or size + line_size > budget.max_bytes
            if rows and (full or self.monotonic() >= deadline):
                more = True
                break
            parts.append(line)
            size += line_size
            rows += 1
            last = position
        next_cursor = (
            self._codec().encode_position(last, messages_scope(query)) if more and last else None
        )
        return ExportPage("".join(parts), rows, next_cursor, fmt)

    def opt_outs(
        self, limit: int, order: Order = "desc", cursor: str | None = None
    ) -> LogPage[OptOut]:
        """One page of opted-out numbers, newest opt-out first by default."""
        scope = opt_outs_scope(order)
        after = self._codec().decode_position(cursor, scope) if cursor else None
        items, position = self.log.list_opt_outs(limit, order, after)
        next_cursor = self._codec().encode_position(position, scope) if position else None
        return LogPage(items, next_cursor)

    def daily_counts(self, days: int, zone: ZoneInfo) -> DailyCounts:
        """Messages per local day and status for the last ``days`` days, today included."""
        if not 1 <= days <= MAX_CHART_DAYS:
            raise ValueError(f"days must be within 1..{MAX_CHART_DAYS}")
        now = self.clock()
        today = now.astimezone(zone).date()
        first = today - timedelta(days=days - 1)
        start = datetime.combine(first, datetime.min.time(), tzinfo=zone)
        buckets: dict[date, dict[str, int]] = {first + timedelta(n): {} for n in range(days)}
        read = 0
        counted_since = start
        complete = True
        for created, status in self.log.iter_statuses(start, now):
            if read >= MAX_CHART_ITEMS:
                complete = False
                break
            read += 1
            counted_since = created
            counts = buckets.setdefault(created.astimezone(zone).date(), {})
            counts[status] = counts.get(status, 0) + 1
        if complete:
            counted_since = start
        seen = {s for counts in buckets.values() for s in counts}
        statuses = [s for s in STATUS_ORDER if s in seen] + sorted(seen - set(STATUS_ORDER))
        return DailyCounts(
            zone=zone.key,
            days=sorted(buckets.items()),
            statuses=statuses,
            complete=complete,
            counted_since=counted_since.astimezone(now.tzinfo),
            items_read=read,
        )
