"""Listing queries: the limits a caller meets and what a cursor is bound to."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from plumsms.domain.models import MessageType
from plumsms.domain.paging import LogPosition
from plumsms.domain.queries import MessageQuery, Page

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
T1 = datetime(2026, 1, 16, 12, 0, tzinfo=UTC)


def test_defaults_are_the_newest_fifty() -> None:
    query = MessageQuery()
    assert (query.order, query.limit, query.after) == ("desc", 50, None)


@pytest.mark.parametrize("limit", [1, 1000])
def test_a_page_holds_1_to_1000_messages(limit: int) -> None:
    assert MessageQuery(limit=limit).limit == limit


@pytest.mark.parametrize("limit", [0, 1001])
def test_a_page_size_outside_1_to_1000_is_refused(limit: int) -> None:
    with pytest.raises(ValidationError, match="limit"):
        MessageQuery(limit=limit)


def test_a_status_filter_is_1_to_32_characters() -> None:
    assert MessageQuery(status="x").status == "x"
    assert MessageQuery(status="x" * 32).status == "x" * 32
    for bad in ("", "x" * 33):
        with pytest.raises(ValidationError, match="status"):
            MessageQuery(status=bad)


def test_a_resume_position_is_a_typed_log_position_not_a_store_key() -> None:
    position = LogPosition(T0, "0123456789abcdef0123456789abcdef")
    assert MessageQuery(after=position).after == position
    with pytest.raises(ValidationError, match="after"):
        MessageQuery(after="2026-01-15T12:00:00.000000Z#0123456789abcdef0123456789abcdef")


def test_a_range_may_be_one_instant_but_not_reversed() -> None:
    assert MessageQuery(start=T0, end=T0).start == T0
    assert MessageQuery(start=T0).end is None and MessageQuery(end=T0).start is None
    with pytest.raises(ValidationError, match="start must not be after end"):
        MessageQuery(start=T1, end=T0)


def test_unknown_filters_are_refused_and_a_query_cannot_be_altered() -> None:
    with pytest.raises(ValidationError, match="colour"):
        MessageQuery.model_validate({"colour": "red"})
    query = MessageQuery()
    with pytest.raises(ValidationError, match="frozen"):
        query.limit = 5


def test_filters_name_everything_but_position_and_size() -> None:
    query = MessageQuery(
        number="+1 999 888 1234",
        type=MessageType.INBOUND,
        status="delivered",
        start=T0,
        end=T1,
        order="asc",
        limit=7,
        after=LogPosition(T0, "pos"),
    )
    assert query.filters() == {
        "number": "+19998881234",
        "type": "inbound",
        "status": "delivered",
        "start": "2026-01-15T12:00:00+00:00",
        "end": "2026-01-16T12:00:00+00:00",
        "order": "asc",
    }
    assert MessageQuery().filters() == {
        "number": None,
        "type": None,
        "status": None,
        "start": None,
        "end": None,
        "order": "desc",
    }


def test_a_page_reads_nothing_unless_told_and_cannot_be_altered() -> None:
    page = Page(items=[], next_position=None)
    assert page.items_read == 0
    with pytest.raises(AttributeError):
        page.next_position = "p"  # type: ignore[misc]


def test_send_time_order_is_for_all_pending_sends_only() -> None:
    # GIVEN a listing of pending sends by due time
    query = MessageQuery(status="scheduled", sort="send_at", order="asc")
    # THEN it is accepted, and its cursors are bound to that order
    assert query.filters()["sort"] == "send_at"
    assert "sort" not in MessageQuery(status="scheduled").filters()
    # AND any other status, or any other filter, is refused
    for other in (
        {"status": "queued"},
        {},
        {"status": "scheduled", "number": "+19998881234"},
        {"status": "scheduled", "type": MessageType.OUTBOUND},
        {"status": "scheduled", "start": T0},
        {"status": "scheduled", "end": T0},
    ):
        with pytest.raises(ValidationError, match="send_at lists pending sends only"):
            MessageQuery(sort="send_at", **other)


def test_the_send_time_rule_compares_values_not_objects() -> None:
    # GIVEN values built at run time, as a parsed query string gives them (not the
    # interned literals of source code)
    scheduled = "".join(["schedul", "ed"])
    send_at = "".join(["send", "_at"])
    # THEN the rule reads their values
    assert MessageQuery(status=scheduled, sort=send_at).sort == "send_at"
    assert "sort" not in MessageQuery(sort="".join(["created", "_at"])).filters()
    with pytest.raises(ValidationError, match="send_at lists pending sends only"):
        MessageQuery(status="queued", sort=send_at)
