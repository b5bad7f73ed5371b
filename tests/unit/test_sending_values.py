"""Values the dispatcher and the status changes are built from: what they carry."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from plumsms.domain.models import HistoryEntry, Status
from plumsms.domain.scheduling import PAST_GRACE
from plumsms.domain.sending import Claim, DueCursor, Schedule, next_occurrence, plan_send
from plumsms.domain.status import change_to
from tests.factories import outbound_message
from tests.unit.test_sending_plan import NOW, NUMBERS, request

AT = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def test_a_due_cursor_and_a_claim_cannot_be_changed_once_made() -> None:
    cursor = DueCursor(AT, "a" * 32)
    assert (cursor.due_at, cursor.message_id) == (AT, "a" * 32)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cursor.message_id = "b"  # type: ignore[misc]
    claim = Claim(outbound_message(AT), Schedule(), "token", AT, 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        claim.token = "stolen"  # type: ignore[misc]


def daily_series_sent_at(sent: datetime) -> tuple[Schedule, datetime] | None:
    """The next occurrence of a daily 09:00 UTC series of ten, the first sent at ``sent``."""
    plan = plan_send(
        request(
            send_at="2025-06-11T09:00",
            time_zone="UTC",
            recurrence={"frequency": "daily", "count": 10},
        ),
        NOW,
        NUMBERS,
    )
    return next_occurrence(plan.schedule, sent)


def test_an_occurrence_exactly_a_grace_period_late_is_still_sent() -> None:
    # GIVEN the series' run reaches the 12th's 09:00 exactly one grace period late
    second = datetime(2025, 6, 12, 9, 0, tzinfo=UTC)
    planned = daily_series_sent_at(second + PAST_GRACE)
    # THEN the 12th is still sent (late by the grace, not more)
    assert planned is not None
    assert planned[1] == second
    # AND a moment later it is skipped for the 13th
    planned = daily_series_sent_at(second + PAST_GRACE + timedelta(microseconds=1))
    assert planned is not None
    assert planned[1] == second + timedelta(days=1)


def test_an_occurrence_just_ahead_is_the_next_one() -> None:
    # GIVEN the run a second before the 12th's 09:00 (within the grace, but ahead)
    second = datetime(2025, 6, 12, 9, 0, tzinfo=UTC)
    planned = daily_series_sent_at(second - timedelta(seconds=1))
    # THEN the 12th is next, not skipped
    assert planned is not None
    assert planned[1] == second


def test_a_change_event_is_caused_by_the_last_history_entry() -> None:
    # GIVEN a message moved three times, the last by the dispatcher to failed
    message = outbound_message(AT)
    history = [
        *message.history,
        HistoryEntry(status=Status.SENDING, at=AT + timedelta(seconds=1), source="dispatcher"),
        HistoryEntry(status=Status.SCHEDULED, at=AT + timedelta(seconds=2), source="retry"),
        HistoryEntry(status=Status.FAILED, at=AT + timedelta(seconds=3), source="dispatcher"),
    ]
    written = message.model_copy(update={"status": Status.FAILED, "history": history})
    change = change_to(written, Status.SCHEDULED)
    # THEN the change is the last move: its time and source
    assert (change.status, change.at, change.source) == (
        Status.FAILED,
        AT + timedelta(seconds=3),
        "dispatcher",
    )
