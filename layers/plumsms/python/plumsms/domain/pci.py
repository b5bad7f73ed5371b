"""The PCI guard: payment card numbers must never travel by SMS (SMS is unencrypted).

A card number here is 13 to 19 digits that pass the Luhn check, written together or in
groups separated by any run of ASCII spaces, dots, dashes and slashes
(``4111 1111 1111 1111``, ``3782-822463-10005``, ``4111.1111.1111.1111``,
``4111  1111 - 1111/1111``). Digits glued to letters or to longer digit runs are still
checked: a run of groups is searched for any consecutive groups that form a card number,
so ``order 12345 4111 1111 1111 1111`` is caught. One unbroken run of more than 19
digits is an identifier of another kind (a tracking number) and is not searched inside:
any 16 digits of it would pass Luhn one time in ten.
"""

from __future__ import annotations

import re

MIN_DIGITS = 13
MAX_DIGITS = 19

_GROUPED_DIGITS = re.compile(r"[0-9]+(?:[ ./-]+[0-9]+)*")
_GROUP = re.compile(r"[0-9]+")


def luhn_valid(digits: str) -> bool:
    """True when ``digits`` (only 0-9) passes the Luhn (mod 10) check."""
    if not digits.isdigit() or not digits.isascii():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _is_card(digits: str) -> bool:
    return MIN_DIGITS <= len(digits) <= MAX_DIGITS and luhn_valid(digits)


def find_card_number(text: str) -> tuple[int, int] | None:
    """The (start, end) span of the first card number in ``text``, or None.

    Only ASCII digits count: card numbers are never written in other scripts' digits.
    """
    for run in _GROUPED_DIGITS.finditer(text):
        groups = [(m.start(), m.end()) for m in _GROUP.finditer(run.group())]
        offset = run.start()
        for first in range(len(groups)):
            digits = ""
            for last in range(first, len(groups)):
                start, end = groups[last]
                digits += run.group()[start:end]
                if len(digits) > MAX_DIGITS:
                    break
                if _is_card(digits):
                    return offset + groups[first][0], offset + groups[last][1]
    return None


def contains_card_number(text: str) -> bool:
    """True when ``text`` holds something that looks like a payment card number."""
    return find_card_number(text) is not None
