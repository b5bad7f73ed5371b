"""The store's side of log positions: index sort keys to and from ``LogPosition``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from plumsms.adapters.dynamodb import keys
from plumsms.domain.paging import LogPosition

AT = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def test_a_position_is_the_sort_key_the_indexes_hold_and_back() -> None:
    # GIVEN a message's position (its creation time, in any zone, and its id)
    at = AT.astimezone(timezone(timedelta(hours=-4)))
    position = LogPosition(at, "0123456789abcdef0123456789abcdef")
    # THEN its sort key is the one the message's index rows carry, and reads back equal
    sort_key = keys.position_sort_key(position)
    assert sort_key == keys.time_sort_key(at, position.key)
    assert keys.sort_key_position(sort_key) == position
    # AND the store's key is the very text a cursor carries (cursors issued before stay valid)
    assert sort_key == position.to_text()


def test_an_opt_out_sort_key_reads_back_with_its_number() -> None:
    assert keys.sort_key_position("2024-05-01T12:00:00.123456Z#+19998881234") == LogPosition(
        AT, "+19998881234"
    )
