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
