"""In-memory fakes of the dispatcher's ports: the outbox and Plum (no sockets, no AWS)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from plumsms.domain.models import HistoryEntry, Message, Status
from plumsms.domain.plum import PlumError, PlumMessageQuery, PlumPageQuery, PlumSmsResource
from plumsms.domain.sending import Claim, DueCursor, DuePage, DueRef, Schedule

NOW = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)


class FakeOutbox:
    """The outbox's contract over a dict: enough to watch the dispatcher's moves."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.opted: set[str] = set()
        self.opt_outs: list[tuple[str, str]] = []
        self.occurrences: list[tuple[Message, Schedule]] = []
        self.lock = threading.Lock()
        self.writes = 0

    def add(self, message: Message, schedule: Schedule | None = None) -> None:
        self.rows[message.id] = {
            "message": message,
            "schedule": schedule or Schedule(),
            "status": Status.SCHEDULED,
            "due": message.send_at,
            "token": None,
            "attempts": 0,
            "error": None,
            "plum_ids": [],
            "check_after": None,
            "claimed_at": None,
        }

    def status(self, message_id: str) -> str:
        return str(self.rows[message_id]["status"])

    def due(self, now: datetime, limit: int, after: DueCursor | None = None) -> DuePage:
        with self.lock:
            ready = sorted(
                (r["due"], i)
                for i, r in self.rows.items()
                if r["status"] == Status.SCHEDULED and r["due"] <= now
            )
        if after is not None:
            ready = [(d, i) for d, i in ready if (d, i) > (after.due_at, after.message_id)]
        chosen = ready[:limit]
        refs = [
            DueRef(i, self.rows[i]["message"].to, self.rows[i]["message"].from_, d)
            for d, i in chosen
        ]
        more = DueCursor(*chosen[-1]) if len(ready) > limit else None
        return DuePage(refs, more)

    def claim(
        self, ref: DueRef, token: str, now: datetime, check_after: datetime, result_url: str | None
    ) -> Claim | None:
        with self.lock:
            self.writes += 1
            row = self.rows[ref.message_id]
            if row["status"] != Status.SCHEDULED or row["due"] != ref.due_at:
                return None
            row.update(status=Status.SENDING, token=token, claimed_at=now, check_after=check_after)
            message = row["message"].model_copy(update={"result_url": result_url})
            row["message"] = message
            return Claim(message, row["schedule"], token, now, row["attempts"])

    def _owned(self, claim: Claim) -> dict[str, Any] | None:
        row = self.rows[claim.message.id]
        return row if row["token"] == claim.token else None

    def _write_owned(self, claim: Claim, **fields: Any) -> bool:
        """One conditional write of the claim's row: only while ``claim`` still holds it."""
        with self.lock:
            self.writes += 1
            row = self._owned(claim)
            if row is None:
                return False
            row.update(fields)
            return True

    def record_sent(self, claim: Claim, plum_ids: Sequence[str], now: datetime) -> bool:
        return self._write_owned(claim, status=Status.QUEUED, plum_ids=list(plum_ids), token=None)

    def retry_later(
        self, claim: Claim, due: datetime, attempts: int, error: str | None, now: datetime
    ) -> bool:
        return self._write_owned(
            claim, status=Status.SCHEDULED, due=due, attempts=attempts, error=error, token=None
        )

    def check_later(
        self, claim: Claim, check_after: datetime, attempts: int, error: str, now: datetime
    ) -> bool:
        return self._write_owned(claim, check_after=check_after, attempts=attempts, error=error)

    def finish(self, claim: Claim, status: str, error: str, now: datetime) -> Message | None:
        with self.lock:
            self.writes += 1
            row = self._owned(claim)
            if row is None:
                return None
            row.update(status=status, error=error, token=None)
            return written(claim.message, status, now, "dispatcher")

    def stale(self, now: datetime, limit: int) -> list[Claim]:
        return [
            Claim(r["message"], r["schedule"], r["token"], r["claimed_at"], r["attempts"])
            for r in self.rows.values()
            if r["status"] == Status.SENDING and r["check_after"] <= now
        ][:limit]

    def take_over(self, claim: Claim, token: str, check_after: datetime) -> Claim | None:
        with self.lock:
            row = self._owned(claim)
            if row is None:
                return None
            row.update(token=token, check_after=check_after)
            return Claim(claim.message, claim.schedule, token, claim.claimed_at, claim.attempts)

    def opted_out(self, numbers: Iterable[str]) -> set[str]:
        return set(numbers) & self.opted

    def known_plum_id(self, sms_message_id: str) -> bool:
        return any(sms_message_id in r["plum_ids"] for r in self.rows.values())

    def put_occurrence(self, message: Message, schedule: Schedule) -> bool:
        self.occurrences.append((message, schedule))
        return True

    def record_opt_out(self, number: str, message_id: str, keyword: str, now: datetime) -> None:
        self.opt_outs.append((number, keyword))
        self.opted.add(number)

    def pending_for(self, number: str) -> list[str]:
        return [
            i
            for i, r in self.rows.items()
            if r["message"].to == number and r["status"] == Status.SCHEDULED
        ]

    def suppress(self, message_id: str, now: datetime, source: str) -> Message | None:
        row = self.rows[message_id]
        if row["status"] != Status.SCHEDULED:
            return None
        row["status"] = Status.SUPPRESSED
        return written(row["message"], Status.SUPPRESSED, now, source)


def written(message: Message, status: str, now: datetime, source: str) -> Message:
    """``message`` as a write moving it to ``status`` leaves it (what the outbox returns)."""
    entry = HistoryEntry(status=status, at=now, source=source)
    return message.model_copy(update={"status": status, "history": [*message.history, entry]})


class ScriptedPlum:
    """Answers ``queue`` from a per-recipient script and ``messages`` page by page from
    ``listed``; remembers what was queued and every list query."""

    def __init__(self, failures: dict[str, PlumError] | None = None) -> None:
        self.failures = failures or {}
        self.queued: list[tuple[str, str, str, str | None]] = []
        self.listed: list[PlumSmsResource] = []
        self.queries: list[PlumMessageQuery] = []
        self.list_error: PlumError | None = None
        self.extra = 0
        """Answer this many more than a query's limit (as a Plum ignoring it would)."""
        self.max_queries = 20
        """More reads of the list than this mean a paging loop that never ends."""
        self.lock = threading.Lock()

    def queue(
        self, to: str, from_: str, body: str, result_url: str | None = None
    ) -> list[PlumSmsResource]:
        if to in self.failures:
            raise self.failures[to]
        with self.lock:
            self.queued.append((to, from_, body, result_url))
            number = len(self.queued)
        return [
            PlumSmsResource(
                sms_message_id=f"{number:032x}",
                to=to.lstrip("+"),
                from_=from_,
                body=body,
                request_timestamp=int(NOW.timestamp()),
                result_url=result_url,
                status="queued",
            )
        ]

    def status(self, sms_message_id: str) -> PlumSmsResource:
        raise NotImplementedError

    def messages(self, query: PlumMessageQuery | None = None) -> list[PlumSmsResource]:
        """One page of ``listed`` (at ``query``'s offset and limit); every query is kept,
        and ``list_error`` is raised instead when set."""
        query = query or PlumMessageQuery()
        with self.lock:
            self.queries.append(query)
            if len(self.queries) > self.max_queries:
                raise AssertionError(f"Plum's list was read {len(self.queries)} times")
        if self.list_error is not None:
            raise self.list_error
        return self.listed[query.offset : query.offset + query.limit + self.extra]

    def conversation(
        self, account_number: str, customer_number: str, query: PlumPageQuery | None = None
    ) -> list[PlumSmsResource]:
        raise NotImplementedError


class FakeTime:
    """A monotonic clock that moves only when somebody sleeps (threads share it)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def monotonic(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += max(seconds, 0.0)
