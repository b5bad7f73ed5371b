"""The local stack's data file: every DynamoDB attribute type round-trips, writes are atomic."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plumsms_local import snapshot

scalars = st.one_of(
    st.builds(lambda s: {"S": s}, st.text()),
    st.builds(lambda n: {"N": str(n)}, st.integers()),
    st.builds(lambda b: {"B": b}, st.binary()),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.just({"NULL": True}),
    st.builds(lambda s: {"SS": sorted(s)}, st.sets(st.text(), min_size=1, max_size=3)),
    st.builds(
        lambda s: {"NS": sorted(str(n) for n in s)}, st.sets(st.integers(), min_size=1, max_size=3)
    ),
    st.builds(lambda s: {"BS": sorted(s)}, st.sets(st.binary(), min_size=1, max_size=3)),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.builds(lambda d: {"M": d}, st.dictionaries(st.text(max_size=5), inner, max_size=3)),
        st.builds(lambda v: {"L": v}, st.lists(inner, max_size=3)),
    ),
    max_leaves=10,
)
items = st.dictionaries(st.text(min_size=1, max_size=8), values, min_size=1, max_size=5)


@given(st.lists(items, max_size=4), st.dictionaries(st.text(), st.text(), max_size=2))
def test_every_attribute_type_round_trips_through_the_file(
    stored: list[dict[str, Any]], kept: dict[str, str]
) -> None:
    # GIVEN items holding every attribute type, Binary (bytes) included, nested too
    data = snapshot.dumps(snapshot.Snapshot(items=stored, secrets=kept))
    # THEN the file is JSON (no bytes leaked into it) and reads back the same
    json.loads(data)
    restored = snapshot.Snapshot(
        items=[snapshot.decode_item(i) for i in json.loads(data)["items"]],
        secrets=json.loads(data)["secrets"],
    )
    assert restored.items == stored
    assert restored.secrets == kept


def test_an_inbound_row_with_its_reply_xml_is_saved_and_read(tmp_path: Path) -> None:
    # GIVEN the row an inbound SMS leaves: reply_xml is a Binary attribute
    row = {"PK": {"S": "MSG#1"}, "SK": {"S": "MSG"}, "reply_xml": {"B": b"<Response/>"}}
    path = tmp_path / "data.json"
    # WHEN it is saved and read back
    snapshot.write_atomically(path, snapshot.dumps(snapshot.Snapshot(items=[row])))
    # THEN the bytes come back as bytes
    assert snapshot.read(path).items == [row]


def test_the_first_format_a_bare_list_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps([{"PK": {"S": "a"}, "SK": {"S": "b"}}]))
    assert snapshot.read(path).items == [{"PK": {"S": "a"}, "SK": {"S": "b"}}]


def test_a_missing_file_is_an_empty_snapshot(tmp_path: Path) -> None:
    assert snapshot.read(tmp_path / "nothing.json") == snapshot.Snapshot()


def test_a_damaged_file_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(snapshot.SnapshotError, match=r"bad\.json"):
        snapshot.read(path)


def test_a_crash_in_the_middle_of_a_save_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a saved file
    path = tmp_path / "data.json"
    snapshot.write_atomically(path, b'{"format": 2, "items": []}')
    before = path.read_bytes()

    # WHEN the next save dies after writing part of the data (the disk fills up)
    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        snapshot.write_atomically(path, b'{"format": 2, "items": [half')
    # THEN the previous file is untouched and no temporary file is left behind
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["data.json"]


def test_the_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    snapshot.write_atomically(path, b"{}")
    assert path.stat().st_mode & 0o777 == 0o600


def test_the_periodic_saver_skips_unchanged_saves(tmp_path: Path) -> None:
    # GIVEN a saver whose table does not change
    path = tmp_path / "data.json"
    current = snapshot.Snapshot(items=[{"PK": {"S": "a"}}])
    saver = snapshot.PeriodicSaver(path, lambda: current, interval=60)
    # THEN the first save writes, the second has nothing new, a change writes again
    assert saver.save() is True
    assert saver.save() is False
    current = snapshot.Snapshot(items=[{"PK": {"S": "a"}}, {"PK": {"S": "b"}}])
    assert saver.save() is True
    assert len(snapshot.read(path).items) == 2
