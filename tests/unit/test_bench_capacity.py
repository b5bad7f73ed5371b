"""The capacity model: DynamoDB's documented item sizes and rounding rules."""

from __future__ import annotations

from bench.capacity import (
    INDEX_ENTRY_OVERHEAD,
    Index,
    Table,
    item_size,
    number_size,
    read_units,
    write_units,
)

TABLE = Table(
    key=("PK", "SK"),
    indexes=(
        Index("ByStatus", ("status_pk", "time_sk"), "INCLUDE", ("type",)),
        Index("ByTime", ("time_pk", "time_sk"), "KEYS_ONLY"),
        Index("Everything", ("time_pk", "time_sk"), "ALL"),
    ),
)


def s(text: str) -> dict[str, str]:
    return {"S": text}


def item(status: str, body: str = "hi", **extra: dict[str, str]) -> dict[str, dict[str, str]]:
    return {
        "PK": s("MSG#1"),
        "SK": s("MSG"),
        "status_pk": s(f"{status}#03"),
        "time_sk": s("2026-01-01T00:00:00.000000Z#1"),
        "time_pk": s("MSG#03"),
        "type": s("outbound"),
        "body": s(body),
    } | extra


def test_sizes_follow_the_documented_rules() -> None:
    # names count, strings by UTF-8 bytes, numbers by significant digits
    assert item_size({"ab": s("héllo")}) == 2 + 6
    assert number_size("123456") == 4
    assert number_size("-0.0100") == 2
    # lists and maps: 3 bytes plus 1 per element
    assert item_size({"l": {"L": [s("a"), s("bc")]}}) == 1 + 3 + (1 + 1) + (1 + 2)
    assert item_size({"m": {"M": {"k": s("v")}}}) == 1 + 3 + 1 + 1 + 1
    assert item_size({"b": {"BOOL": True}, "n": {"NULL": True}}) == 4


def test_rounding_per_started_kilobyte_and_four_kilobytes() -> None:
    assert [write_units(n) for n in (0, 1, 1024, 1025, 2048)] == [1, 1, 1, 2, 2]
    assert read_units(4096) == 0.5 and read_units(4097) == 1
    assert read_units(4097, consistent=True) == 2


def test_a_status_change_costs_a_delete_and_a_put_only_where_the_key_moves() -> None:
    # GIVEN an item whose status (ByStatus key) and body change
    before, after = item("sent"), item("delivered")
    # WHEN priced
    costs = TABLE.index_writes(before, after)
    # THEN ByStatus pays a delete and a put, the keys-only index nothing, ALL an update
    assert costs == {"ByStatus": 2, "Everything": 1}
    changed_body = TABLE.index_writes(before, item("sent", body="other"))
    assert changed_body == {"Everything": 1}


def test_entering_and_leaving_a_sparse_index() -> None:
    without = {k: v for k, v in item("sent").items() if k != "status_pk"}
    assert TABLE.index_writes(without, item("sent")) == {"ByStatus": 1, "Everything": 1}
    assert TABLE.index_writes(item("sent"), without) == {"ByStatus": 1, "Everything": 1}
    # a new item is a put into every index it belongs to
    assert TABLE.index_writes(None, item("sent")) == {"ByStatus": 1, "ByTime": 1, "Everything": 1}


def test_index_entries_carry_the_overhead_and_only_projected_attributes() -> None:
    big = item("sent", body="x" * 2000)
    entry = TABLE.indexes[0].entry(big, TABLE.key) or {}
    assert "body" not in entry and entry["type"] == s("outbound")
    assert TABLE.indexes[0].entry_size(entry) == item_size(entry) + INDEX_ENTRY_OVERHEAD
    # a 2 KB body makes the ALL index cost what the item does
    assert TABLE.index_writes(None, big)["Everything"] == write_units(
        item_size(big) + INDEX_ENTRY_OVERHEAD
    )
