"""The PCI guard: card numbers (13-19 digits passing Luhn) never go out by SMS."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plumsms.domain.pci import contains_card_number, find_card_number, luhn_valid

# Test numbers the card networks publish for testing.
TEST_CARDS = [
    "4111111111111111",  # Visa, 16
    "4222222222222",  # Visa, 13
    "378282246310005",  # American Express, 15
    "5555555555554444",  # Mastercard
    "6011111111111117",  # Discover
    "30569309025904",  # Diners Club, 14
    "3530111333300000",  # JCB
    "6011000990139424",  # Discover
    "4000056655665556",  # Visa debit
    "6759649826438453",  # Maestro
]


def luhn_complete(stem: str) -> str:
    """``stem`` plus the check digit that makes it pass Luhn."""
    for digit in "0123456789":
        if luhn_valid(stem + digit):
            return stem + digit
    raise AssertionError("a Luhn check digit always exists")


@pytest.mark.parametrize("number", TEST_CARDS)
def test_published_test_cards_pass_luhn_and_are_caught(number: str) -> None:
    # GIVEN a published test card number
    # WHEN it is checked alone and inside a sentence
    # THEN Luhn accepts it and the guard finds it
    assert luhn_valid(number)
    assert contains_card_number(number)
    assert contains_card_number(f"My card is {number}, expiry 12/29")


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "3782 822463 10005",
        "3782-822463-10005",
        "card:4111111111111111.",
        "Order 12345 4111 1111 1111 1111 thanks",
        "pay with 5555 5555 5555 4444 today",
    ],
)
def test_grouped_and_embedded_card_numbers_are_caught(text: str) -> None:
    # GIVEN a card number written with spaces or dashes, or next to other numbers
    # WHEN the guard reads the text
    # THEN it is caught
    assert contains_card_number(text)


@pytest.mark.parametrize(
    ("style", "text"),
    [
        ("dots", "4111.1111.1111.1111"),
        ("double spaces", "4111  1111  1111  1111"),
        ("spaced dash", "4111 - 1111 - 1111 - 1111"),
        ("slashes", "4111/1111/1111/1111"),
        ("spaced slash", "3782 / 822463 / 10005"),
        ("dot and space", "5555. 5555. 5555. 4444"),
        ("mixed", "card 4111.1111-1111/1111 thanks"),
        ("long run", "4111 --- 1111 ... 1111 /// 1111"),
    ],
)
def test_any_run_of_separators_between_groups_is_caught(style: str, text: str) -> None:
    # GIVEN a card number whose groups are separated by a run of spaces, dots, dashes
    # or slashes (the style named)
    # WHEN the guard reads the text
    # THEN it is caught, and the span covers the grouped number
    span = find_card_number(text)
    assert span is not None, style
    assert text[span[0] : span[1]].startswith(("4111", "3782", "5555"))
    assert text[span[0] : span[1]].endswith(("1111", "10005", "4444"))


@pytest.mark.parametrize(
    "text",
    [
        "call 555-123-4567 on 12/29",
        "call 555-123-4567 on 12/29/2026",
        "555-123-4567 12/29",
        "Meet 12.29.2026 at 10.30",
        "Order #A-2026-000123 ships 12/29/2026",
        "Order 123456789 / 42",
        "192.168.100.200",
        "+1 243 567 8910 / +1 999 888 1234",
    ],
)
def test_phone_numbers_dates_and_order_numbers_are_not_card_numbers(text: str) -> None:
    # GIVEN everyday numbers written with the same separators (phone, date, order number)
    # WHEN the guard reads the text
    # THEN nothing is found
    assert not contains_card_number(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Your code is 123456",
        "Call +1 (243) 567-8910 or 19998881234",
        "4111111111111112",  # fails Luhn
        "411111111111",  # 12 digits: too short even though Luhn-valid
        "41111111111111111111111",  # one run of 23 digits: another kind of identifier
        "Tracking 1Z999AA10123456784",
        "4111 1111 1111 1111".replace(" ", "\u00a0"),  # no-break spaces are not separators
        "\u0664\u0661\u0661\u0661" * 4,  # Arabic-Indic digits
    ],
)
def test_other_numbers_are_not_card_numbers(text: str) -> None:
    # GIVEN text without a card number (phone numbers, codes, a failing checksum)
    # WHEN the guard reads it
    # THEN nothing is found
    assert not contains_card_number(text)


def test_span_points_at_the_card_digits() -> None:
    # GIVEN a card number inside a sentence
    text = "ref 99 then 4111-1111-1111-1111 end"
    # WHEN its span is asked for
    span = find_card_number(text)
    # THEN the span covers exactly the grouped card number
    assert span is not None
    assert text[span[0] : span[1]] == "4111-1111-1111-1111"


def test_luhn_rejects_non_digits() -> None:
    # GIVEN strings that are not plain ASCII digits
    # THEN Luhn refuses them instead of crashing
    assert not luhn_valid("")
    assert not luhn_valid("4111a")
    assert not luhn_valid("\u0664\u0661")


@given(
    stem=st.text(alphabet="0123456789", min_size=12, max_size=18),
    separators=st.lists(
        st.sampled_from(["", " ", "-", ".", "/", "  ", " - ", " / ", ".-"]),
        min_size=18,
        max_size=18,
    ),
    before=st.text(alphabet="abc XYZ.,:", max_size=10),
    after=st.text(alphabet="abc XYZ.,:", max_size=10),
)
def test_any_luhn_valid_number_with_any_separators_is_caught(
    stem: str, separators: list[str], before: str, after: str
) -> None:
    # GIVEN any 13-19 digit Luhn-valid number, with runs of spaces, dashes, dots or
    # slashes between any digits,
    # between letters and punctuation
    number = luhn_complete(stem)
    written = "".join(
        digit + (separators[i] if i < len(number) - 1 else "") for i, digit in enumerate(number)
    )
    # WHEN the guard reads it
    # THEN it is always caught
    assert contains_card_number(f"{before} {written} {after}")


@given(st.text(alphabet="0123456789", min_size=1, max_size=12))
def test_twelve_digits_or_fewer_are_never_card_numbers(digits: str) -> None:
    # GIVEN a run of at most 12 digits
    # WHEN the guard reads it, alone or grouped
    # THEN it is never a card number, whatever its checksum
    assert not contains_card_number(digits)
    assert not contains_card_number(" ".join(digits))


def test_span_of_a_card_number_after_other_groups_of_the_same_run() -> None:
    # GIVEN a card number written right after an order number, as one run of digit groups
    text = "Order 12345 4111 1111 1111 1111 thanks"
    # WHEN its span is asked for
    span = find_card_number(text)
    # THEN the span starts at the card's first group, not at the order number
    assert span is not None
    assert text[span[0] : span[1]] == "4111 1111 1111 1111"


def test_span_of_a_card_number_mid_text() -> None:
    text = "card: 5555555555554444, thanks"
    assert find_card_number(text) == (6, 22)


def test_nineteen_digits_are_a_card_number_twenty_are_not() -> None:
    # GIVEN Luhn-valid runs of 19 and 20 digits (the longest card numbers are 19)
    nineteen = luhn_complete("4" + "1" * 17)
    twenty = luhn_complete("4" + "1" * 18)
    assert (len(nineteen), len(twenty)) == (19, 20)
    # THEN 19 is a card number, alone or grouped; 20 in one run is another identifier
    assert contains_card_number(nineteen)
    assert contains_card_number(f"{nineteen[:4]} {nineteen[4:8]} {nineteen[8:12]} {nineteen[12:]}")
    assert not contains_card_number(twenty)
    assert not contains_card_number(f"ref {twenty}")


def test_thirteen_digits_are_a_card_number_twelve_are_not() -> None:
    thirteen = luhn_complete("4" + "2" * 11)
    twelve = luhn_complete("4" + "2" * 10)
    assert contains_card_number(thirteen)
    assert not contains_card_number(twelve)


def test_span_of_a_grouped_card_number_a_few_characters_in() -> None:
    text = "card 4111 1111 1111 1111"
    assert find_card_number(text) == (5, 24)
