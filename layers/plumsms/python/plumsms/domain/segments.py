"""SMS segment counting and splitting (GSM 03.38 vs UCS-2).

GSM-7 text fits 160 septets in one SMS and 153 per part when concatenated; characters of
the extension table cost two septets and are never split across parts. Any character
outside GSM-7 makes the whole message UCS-2: 70 UTF-16 units, 67 per part, and a
surrogate pair is never split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

SINGLE_LIMIT: dict[Encoding, int] = {"GSM-7": 160, "UCS-2": 70}
PART_LIMIT: dict[Encoding, int] = {"GSM-7": 153, "UCS-2": 67}


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """How a body travels: its encoding, the number of SMS parts and its size in units."""

    encoding: Encoding
    segments: int
    units: int


def encoding_of(body: str) -> Encoding:
    """GSM-7 when every character is in the GSM 03.38 basic or extension table."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in body):
        return "GSM-7"
    return "UCS-2"


def _unit_cost(ch: str, encoding: Encoding) -> int:
    if encoding == "GSM-7":
        return 2 if ch in GSM7_EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1


def split(body: str) -> list[str]:
    """Split ``body`` into the parts a carrier would send; one part when it fits."""
    encoding = encoding_of(body)
    costs = [_unit_cost(ch, encoding) for ch in body]
    if sum(costs) <= SINGLE_LIMIT[encoding]:
        return [body]
    limit = PART_LIMIT[encoding]
    parts: list[str] = []
    start = used = 0
    for index, cost in enumerate(costs):
        if used + cost > limit:
            parts.append(body[start:index])
            start, used = index, 0
        used += cost
    parts.append(body[start:])
    return parts


def analyze(body: str) -> SegmentInfo:
    """Encoding, part count and unit count of ``body`` (an empty body is one segment)."""
    encoding = encoding_of(body)
    units = sum(_unit_cost(ch, encoding) for ch in body)
    return SegmentInfo(encoding=encoding, segments=len(split(body)), units=units)
