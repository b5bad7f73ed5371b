from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plumsms.domain import segments


@pytest.mark.parametrize(
    ("body", "encoding", "parts"),
    [
        ("", "GSM-7", 1),
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),  # extension characters cost two septets
        ("€" * 81, "GSM-7", 2),
        ("é" * 160, "GSM-7", 1),  # é is in the GSM basic table
        ("ê" * 70, "UCS-2", 1),
        ("ê" * 71, "UCS-2", 2),
        ("ê" * 134, "UCS-2", 2),
        ("ê" * 135, "UCS-2", 3),
        ("😀" * 35, "UCS-2", 1),  # each emoji is two UTF-16 units
        ("😀" * 36, "UCS-2", 2),
    ],
)
def test_encoding_and_parts(body: str, encoding: str, parts: int) -> None:
    info = segments.analyze(body)
    assert (info.encoding, info.segments) == (encoding, parts)


def test_extension_character_never_split_across_parts() -> None:
    body = "a" * 152 + "€" + "b" * 10
    parts = segments.split(body)
    assert parts[0] == "a" * 152 and parts[1].startswith("€")


@given(st.text(max_size=800))
def test_split_is_lossless_and_respects_limits(body: str) -> None:
    parts = segments.split(body)
    assert "".join(parts) == body
    info = segments.analyze(body)
    assert info.segments == len(parts)
    limit = (segments.SINGLE_LIMIT if len(parts) == 1 else segments.PART_LIMIT)[info.encoding]
    for part in parts:
        assert segments.analyze(part).units <= limit


@pytest.mark.parametrize("length", [154, 157, 159, 160])
def test_gsm7_body_longer_than_one_part_but_within_single_limit_is_one_segment(
    length: int,
) -> None:
    # GIVEN a GSM-7 body longer than a concatenated part (153) but within 160 septets
    body = "a" * length
    # WHEN it is counted, THEN it is billed as one SMS, sent whole
    assert segments.analyze(body).segments == 1
    assert segments.split(body) == [body]


@pytest.mark.parametrize("length", [68, 69, 70])
def test_ucs2_body_longer_than_one_part_but_within_single_limit_is_one_segment(
    length: int,
) -> None:
    # GIVEN a UCS-2 body longer than a concatenated part (67) but within 70 units
    body = "ê" * length
    # WHEN it is counted, THEN it is one SMS
    assert segments.analyze(body) == segments.SegmentInfo("UCS-2", 1, length)


def test_last_character_of_the_basic_plane_costs_one_ucs2_unit() -> None:
    # GIVEN U+FFFF, the last code point that UTF-16 writes in one unit
    body = "\uffff" * 70
    # THEN 70 of them fill exactly one UCS-2 SMS
    assert segments.analyze(body) == segments.SegmentInfo("UCS-2", 1, 70)


def test_first_character_beyond_the_basic_plane_costs_two_ucs2_units() -> None:
    # GIVEN U+10000, the first code point UTF-16 writes as a surrogate pair
    body = "\U00010000" * 36
    # THEN 36 of them (72 units) no longer fit one SMS
    assert segments.analyze(body) == segments.SegmentInfo("UCS-2", 2, 72)


def test_segment_info_cannot_be_altered() -> None:
    # GIVEN the segment count of a body
    info = segments.analyze("hello")
    # WHEN a caller tries to change it, THEN it refuses (the bill is computed once)
    with pytest.raises(AttributeError):
        info.segments = 0  # type: ignore[misc]
