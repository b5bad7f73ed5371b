"""The status use case with an in-memory log: lookups, orphans, events, reconciliation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plumsms.domain import status
from plumsms.domain.callbacks import StatusCallback
from plumsms.domain.errors import PlumNotConfigured, StoreUnavailable
from plumsms.domain.models import HistoryEntry, Message
from plumsms.domain.plum import (
    PlumPageQuery,
    PlumRejected,
    PlumSmsResource,
    PlumUnavailable,
    Unauthorized,
)
from plumsms.domain.queries import MessageQuery, Page
from plumsms.usecases.reconcile import Reconciler
from plumsms.usecases.status import Outcome, StatusService
from tests.factories import outbound_message

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Applied:
    before: Message
    plan: status.Plan
    attempts: int = 1

    @property
    def change(self) -> status.StatusChange | None:
        return status.change_of(self.before, self.plan)


@dataclass(frozen=True)
class Advanced:
    applied: Applied | None = None
    current: Message | None = None


@dataclass
class MemoryLog:
    """Messages and orphans in dicts; writes apply plans as the DynamoDB adapter does."""

    messages: dict[str, Message] = field(default_factory=dict)
    orphans: dict[str, list[HistoryEntry]] = field(default_factory=dict)
    writes: int = 0
    advances: int = 0

    def add(self, message: Message) -> Message:
        self.messages[message.id] = message
        return message

    def find(self, message_id: str) -> Message | None:
        return self.messages.get(message_id)

    def find_by_plum_id(self, sms_message_id: str) -> Message | None:
        return next((m for m in self.messages.values() if m.sms_message_id == sms_message_id), None)

    get_by_plum_id = find_by_plum_id

    def advance(self, message_id: str, entry: HistoryEntry, plum_id: str | None) -> Advanced:
        current = self.messages.get(message_id)
        if current is None or current.status not in status.predecessors(entry.status):
            return Advanced(current=current)
        moved = status.Plan(
            current.status,
            entry.status,
            (entry,),
            True,
            None if current.sms_message_id else plum_id,
        )
        self.advances += 1
        return Advanced(applied=self.apply(current, lambda _: moved))

    def apply(self, message: Message, decide: Callable[[Message], status.Plan]) -> Applied:
        current = self.messages[message.id]
        planned = decide(current)
        if planned.needs_write:
            self.writes += 1
            self.messages[message.id] = current.model_copy(
                update={
                    "status": planned.status,
                    "history": [*current.history, *planned.append],
                    "sms_message_id": current.sms_message_id or planned.record_plum_id,
                }
            )
        return Applied(current, planned)

    def keep_orphan(self, sms_message_id: str, entry: HistoryEntry, ref: str | None) -> bool:
        kept = self.orphans.setdefault(sms_message_id, [])
        if any(e.status == entry.status for e in kept):
            return False
        kept.append(entry)
        return True

    def attach_orphans(self, message_id: str, sms_message_id: str) -> Applied | None:
        reports = self.orphans.pop(sms_message_id, [])
        if not reports:
            return None
        return self.apply(
            self.messages[message_id], lambda m: status.plan(m, reports, sms_message_id)
        )

    def list_messages(self, query: MessageQuery) -> Page:
        found = [
            m for m in self.messages.values()
            if m.status == query.status and (query.start is None or m.created_at >= query.start)
            and (query.end is None or m.created_at <= query.end)
        ]  # fmt: skip
        return Page(
            items=sorted(found, key=lambda m: m.created_at)[: query.limit], next_position=None
        )


@dataclass
class Recorder:
    published: list[status.StatusChange] = field(default_factory=list)

    def publish(self, changes: Sequence[status.StatusChange]) -> int:
        self.published.extend(changes)
        return 0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def outbound(
    message_id: str, plum_id: str | None, state: str = "queued", created: datetime = T0
) -> Message:
    return outbound_message(
        created,
        message_id=message_id,
        sms_message_id=plum_id,
        to="+19998881234",
        from_="+12435678910",
        body="hi",
        status=state,
        source="dispatcher",
    )


def cb(plum_id: str, state: str) -> StatusCallback:
    return StatusCallback(sms_message_id=plum_id, status=state)


@pytest.fixture
def log() -> MemoryLog:
    return MemoryLog()


@pytest.fixture
def events() -> Recorder:
    return Recorder()


@pytest.fixture
def service(log: MemoryLog, events: Recorder) -> StatusService:
    return StatusService(log=log, publisher=events, clock=Clock())


def test_ref_wins_over_plum_id(log: MemoryLog, service: StatusService) -> None:
    # GIVEN two messages: one named by ref, another that (wrongly) holds the same Plum id
    log.add(outbound("ref-message", None))
    log.add(outbound("other", "a" * 32))
    # WHEN a callback names both
    result = service.handle_callback(cb("a" * 32, "sent"), "ref-message")
    # THEN the ref decides
    assert result.message_id == "ref-message" and result.outcome is Outcome.CHANGED
    assert log.messages["other"].status == "queued"
    assert log.messages["ref-message"].sms_message_id == "a" * 32


def test_outcomes_and_one_event_per_change(
    log: MemoryLog, service: StatusService, events: Recorder
) -> None:
    log.add(outbound("m1", "b" * 32))
    outcomes = [
        service.handle_callback(cb("b" * 32, s), "m1").outcome
        for s in ["sent", "sent", "weird", "delivered", "sent"]
    ]
    assert outcomes == [
        Outcome.CHANGED,
        Outcome.DUPLICATE,
        Outcome.RECORDED,
        Outcome.CHANGED,
        Outcome.DUPLICATE,
    ]
    assert [(c.previous, c.status) for c in events.published] == [
        ("queued", "sent"),
        ("sent", "delivered"),
    ]
    assert log.writes == 3
    # The two moves were written without a read first.
    assert log.advances == 2


def test_unknown_message_is_orphaned_then_attached(
    log: MemoryLog, service: StatusService, events: Recorder
) -> None:
    assert service.handle_callback(cb("c" * 32, "sent"), None).outcome is Outcome.ORPHANED
    assert service.handle_callback(cb("c" * 32, "sent"), None).outcome is Outcome.DUPLICATE
    assert (
        service.handle_callback(cb("c" * 32, "failed"), "not-a-message").outcome is Outcome.ORPHANED
    )
    log.add(outbound("m2", "c" * 32))
    result = service.attach_orphans("m2", "c" * 32)
    assert result is not None and result.outcome is Outcome.CHANGED
    assert log.messages["m2"].status == "failed"
    assert [e.status for e in log.messages["m2"].history] == ["queued", "sent", "failed"]
    assert [c.status for c in events.published] == ["failed"]
    assert service.attach_orphans("m2", "c" * 32) is None


@given(st.lists(st.sampled_from(["queued", "sent", "delivered", "odd"]), min_size=1, max_size=12))
def test_final_event_is_published_exactly_once_whatever_the_repeats(arrivals: list[str]) -> None:
    # GIVEN any arrival sequence of a delivered message's callbacks, duplicates included
    log, events = MemoryLog(), Recorder()
    service = StatusService(log=log, publisher=events, clock=Clock())
    log.add(outbound("m", "d" * 32, state="sending"))
    for state in [*arrivals, "delivered", *arrivals]:
        service.handle_callback(cb("d" * 32, state), "m")
    # THEN exactly one event announces the final status, and no event repeats a status
    finals = [c for c in events.published if c.final]
    assert [c.status for c in finals] == ["delivered"]
    assert len({c.status for c in events.published}) == len(events.published)


# -- reconciliation -----------------------------------------------------------------------


def resource(
    plum_id: str, state: str, body: str = "hi", to: str = "19998881234", from_: str = "2435678910"
) -> PlumSmsResource:
    return PlumSmsResource(
        sms_message_id=plum_id, to=to, from_=from_, body=body, request_timestamp=0, status=state
    )


class FakePlum:
    def __init__(
        self,
        statuses: dict[str, str],
        error: Exception | None = None,
        conversation: list[PlumSmsResource] | None = None,
    ) -> None:
        self.statuses = statuses
        self.error = error
        self.asked: list[str] = []
        self.talks: list[PlumPageQuery] = []
        self._conversation = conversation or []

    def conversation(
        self, account_number: str, customer_number: str, query: PlumPageQuery
    ) -> list[PlumSmsResource]:
        assert (account_number, customer_number) == ("+12435678910", "+19998881234")
        self.talks.append(query)
        return self._conversation

    def status(self, sms_message_id: str) -> PlumSmsResource:
        self.asked.append(sms_message_id)
        if self.error is not None:
            raise self.error
        return resource(sms_message_id, self.statuses[sms_message_id])


def reconciler(log: MemoryLog, service: StatusService, plum: FakePlum, now: datetime) -> Reconciler:
    return Reconciler(
        messages=log, service=service, plum=lambda: plum,  # type: ignore[arg-type, return-value]
        min_age=timedelta(minutes=30), limit=10, clock=lambda: now,
    )  # fmt: skip


def test_reconciler_asks_about_stuck_messages_only(
    log: MemoryLog, service: StatusService, events: Recorder
) -> None:
    # GIVEN a stuck queued message, a stuck sent one, a young one, one too old, a final one
    now = T0 + timedelta(days=1)
    log.add(outbound("stuck-q", "1" * 32, "queued", now - timedelta(hours=1)))
    log.add(outbound("stuck-s", "2" * 32, "sent", now - timedelta(minutes=31)))
    log.add(outbound("young", "3" * 32, "queued", now - timedelta(minutes=5)))
    log.add(outbound("given-up", "4" * 32, "queued", now - timedelta(days=4)))
    log.add(outbound("done", "5" * 32, "delivered", now - timedelta(hours=2)))
    log.add(outbound("no-id", None, "queued", now - timedelta(hours=2)))
    plum = FakePlum({"1" * 32: "undelivered", "2" * 32: "sent"})
    # WHEN the reconciler runs
    report = reconciler(log, service, plum, now).run()
    # THEN it asked Plum about the two stuck messages and applied the answers
    assert sorted(plum.asked) == ["1" * 32, "2" * 32]
    assert log.messages["stuck-q"].status == "undelivered"
    assert log.messages["stuck-q"].history[-1].source == "plum-status"
    assert log.messages["stuck-s"].status == "sent"
    assert (report.examined, report.without_plum_id, report.errors) == (3, 1, 0)
    assert (
        [c.status for c in report.changes]
        == [c.status for c in events.published]
        == ["undelivered"]
    )


def test_reconciler_finds_a_reply_without_plum_id_in_the_conversation(
    log: MemoryLog, service: StatusService
) -> None:
    # GIVEN a reply whose callbacks were all lost: we never learned its Plum id
    now = T0 + timedelta(days=1)
    created = now - timedelta(hours=1)
    reply = log.add(
        outbound("reply", None, "queued", created).model_copy(
            update={"body": "Thanks! We open at 9"}
        )
    )
    log.add(outbound("other", "c" * 32, "delivered", created))
    conversation = [
        resource(
            "a" * 32, "received", "Thanks! We open at 9", to="2435678910", from_="19998881234"
        ),  # inbound
        resource("b" * 32, "delivered", "Something else"),
        resource("c" * 32, "delivered", "Thanks! We open at 9"),  # another message's
        resource("d" * 32, "undelivered", "Thanks! We open"),  # our first part
    ]
    plum = FakePlum({}, conversation=conversation)
    # WHEN the reconciler runs
    report = reconciler(log, service, plum, now).run()
    # THEN it asked about the hour after the reply was created, matched it, recorded the id
    [query] = plum.talks
    assert query.start is not None and query.start <= created <= (query.end or created)
    assert log.messages["reply"].sms_message_id == "d" * 32
    assert log.messages["reply"].status == "undelivered"
    assert (report.examined, report.without_plum_id) == (1, 1)
    assert reply.id == "reply"


def test_reconciler_attaches_orphans_before_asking(log: MemoryLog, service: StatusService) -> None:
    now = T0 + timedelta(days=1)
    log.add(outbound("m", "6" * 32, "queued", now - timedelta(hours=1)))
    log.orphans["6" * 32] = [HistoryEntry(status="sent", at=now, source="plum-callback")]
    report = reconciler(log, service, FakePlum({"6" * 32: "delivered"}), now).run()
    assert [e.status for e in log.messages["m"].history] == ["queued", "sent", "delivered"]
    assert [c.status for c in report.changes] == ["sent", "delivered"]


@pytest.mark.parametrize(
    ("error", "stops"),
    [
        (PlumUnavailable("down"), True),
        (Unauthorized("no"), True),
        (PlumRejected("SMS message not found"), False),
    ],
)
def test_reconciler_stops_on_outage_and_skips_refusals(
    log: MemoryLog, service: StatusService, error: Exception, stops: bool
) -> None:
    now = T0 + timedelta(days=1)
    for i in range(3):
        log.add(outbound(f"m{i}", f"{i + 7}" * 32, "queued", now - timedelta(hours=1, minutes=i)))
    plum = FakePlum({}, error)
    report = reconciler(log, service, plum, now).run()
    assert report.stopped_early is stops
    assert len(plum.asked) == (1 if stops else 3)
    assert report.errors == len(plum.asked)
    assert all(m.status == "queued" for m in log.messages.values())


def test_reconciler_stops_before_running_out_of_time(
    log: MemoryLog, service: StatusService
) -> None:
    now = T0 + timedelta(days=1)
    log.add(outbound("m", "a" * 32, "queued", now - timedelta(hours=1)))
    plum = FakePlum({"a" * 32: "delivered"})
    report = reconciler(log, service, plum, now).run(time_left=lambda: 5.0)
    assert report.stopped_early and plum.asked == []


# -- no credentials yet, and store errors --------------------------------------------------


class Unconfigured:
    """A Plum provider for a deployment without credentials; counts the attempts."""

    def __init__(self) -> None:
        self.asked = 0

    def __call__(self) -> FakePlum:
        self.asked += 1
        raise PlumNotConfigured("the Plum credentials secret has no username or password yet")


def reconciler_with(
    log: MemoryLog, service: StatusService, plum: Callable[[], FakePlum], now: datetime
) -> Reconciler:
    return Reconciler(
        messages=log, service=service, plum=plum,  # type: ignore[arg-type]
        min_age=timedelta(minutes=30), limit=10, clock=lambda: now,
    )  # fmt: skip


def test_reconciler_with_nothing_stuck_never_reads_the_credentials(
    log: MemoryLog, service: StatusService
) -> None:
    now = T0 + timedelta(days=1)
    log.add(outbound("young", "3" * 32, "queued", now - timedelta(minutes=5)))
    credentials = Unconfigured()
    report = reconciler_with(log, service, credentials, now).run()
    assert credentials.asked == 0
    assert (report.examined, report.errors, report.not_configured) == (0, 0, False)


def test_reconciler_without_credentials_stops_as_not_configured(
    log: MemoryLog, service: StatusService
) -> None:
    # GIVEN stuck messages but no Plum credentials yet
    now = T0 + timedelta(days=1)
    log.add(outbound("m1", "1" * 32, "queued", now - timedelta(hours=1)))
    log.add(outbound("m2", "2" * 32, "sent", now - timedelta(hours=1)))
    credentials = Unconfigured()
    # WHEN the reconciler runs
    report = reconciler_with(log, service, credentials, now).run()
    # THEN it says so once, counts no error and leaves the messages as they were
    assert (report.not_configured, report.stopped_early, report.errors) == (True, True, 0)
    assert credentials.asked == 1
    assert [m.status for m in log.messages.values()] == ["queued", "sent"]


class FlakyLog(MemoryLog):
    """A log whose write for one message fails as DynamoDB throttling does."""

    failing: str = ""

    def apply(self, message: Message, decide: Callable[[Message], status.Plan]) -> Applied:
        if message.id == self.failing:
            raise StoreUnavailable("apply status failed (ProvisionedThroughputExceededException)")
        return super().apply(message, decide)


def test_one_messages_store_error_does_not_stop_the_reconciler(events: Recorder) -> None:
    # GIVEN three stuck messages, the store refusing to write the oldest one
    now = T0 + timedelta(days=1)
    log = FlakyLog()
    log.failing = "m0"
    for i in range(3):
        log.add(outbound(f"m{i}", f"{i + 1}" * 32, "queued", now - timedelta(hours=2, minutes=-i)))
    service = StatusService(log=log, publisher=events, clock=lambda: now)
    plum = FakePlum({f"{i + 1}" * 32: "delivered" for i in range(3)})
    # WHEN the reconciler runs
    report = reconciler(log, service, plum, now).run()
    # THEN the error is counted and the run went on with the others
    assert (report.examined, report.errors, report.stopped_early) == (3, 1, False)
    assert [log.messages[f"m{i}"].status for i in range(3)] == ["queued", "delivered", "delivered"]
    assert [c.message_id for c in events.published] == ["m1", "m2"]


def test_a_store_error_listing_one_status_still_reconciles_the_other(
    service: StatusService, log: MemoryLog
) -> None:
    now = T0 + timedelta(days=1)
    log.add(outbound("s", "5" * 32, "sent", now - timedelta(hours=1)))
    listing = log.list_messages

    def list_messages(query: MessageQuery) -> Page:
        if query.status == "queued":
            raise StoreUnavailable("list messages failed (InternalServerError)")
        return listing(query)

    log.list_messages = list_messages  # type: ignore[method-assign]
    report = reconciler(log, service, FakePlum({"5" * 32: "delivered"}), now).run()
    assert (report.errors, log.messages["s"].status) == (1, "delivered")
