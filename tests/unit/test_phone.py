from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plumsms.domain import phone
from plumsms.domain.errors import ValidationFailed


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("2435678910", "+12435678910"),  # Plum's example: unassigned area code, still accepted
        ("12435678910", "+12435678910"),
        ("19998881234", "+19998881234"),
        ("+1 (999) 888-1234", "+19998881234"),
        ("999.888.1234", "+19998881234"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_normalize_accepts_plum_and_human_forms(raw: str, e164: str) -> None:
    assert phone.normalize(raw) == e164


@pytest.mark.parametrize("raw", ["", "   ", "12", "abc", "+1234", "1" * 40, "+999 1234567"])
def test_normalize_rejects_with_field_name(raw: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        phone.normalize(raw, field="to")
    assert info.value.field == "to"
    assert str(info.value).startswith("to: ")


def test_plum_digit_formats() -> None:
    assert phone.plum_to_digits("+19998881234") == "19998881234"
    assert phone.plum_from_digits("+12435678910") == "2435678910"
    assert phone.plum_from_digits("+442079460958") == "442079460958"


@given(st.from_regex(r"[2-9][0-9]{2}[2-9][0-9]{6}", fullmatch=True))
def test_any_nanp_ten_digits_round_trip_through_plum_formats(digits: str) -> None:
    e164 = phone.normalize(digits)
    assert e164 == "+1" + digits
    assert phone.plum_from_digits(e164) == digits
    assert phone.normalize(phone.plum_to_digits(e164)) == e164


def test_a_number_written_in_32_characters_is_read_33_are_refused() -> None:
    # GIVEN the same number padded with spaces to 32 and to 33 characters
    written = "+1 (999) 888-1234"
    at_limit = "+1" + " " * (32 - len(written)) + written[2:]
    over = "+1" + " " * (33 - len(written)) + written[2:]
    # THEN 32 characters are read; 33 are refused as too long, naming the field
    assert len(at_limit) == 32 and phone.normalize(at_limit) == "+19998881234"
    with pytest.raises(ValidationFailed, match="too long") as info:
        phone.normalize(over, field="to")
    assert info.value.field == "to"


def test_same_number_in_different_forms() -> None:
    assert phone.same_number("+1 (999) 888-1234", "19998881234")
    assert not phone.same_number("+19998881234", "+19998881235")


@pytest.mark.parametrize(("a", "b"), [("abc", "abc"), ("", ""), ("+19998881234", "12")])
def test_a_number_that_cannot_be_read_is_never_the_same_number(a: str, b: str) -> None:
    # GIVEN two values of which one is not a phone number (even two equal strings)
    # THEN they are not the same number, and no error escapes
    assert phone.same_number(a, b) is False


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("12435678910", "+12435678910"),  # Plum's 11-digit form: NANP wherever we are
        ("1243567891", "+441243567891"),  # ten digits starting with 1: national
        ("1 243567891", "+441243567891"),  # eleven characters, but not all digits
    ],
)
def test_plums_eleven_digit_form_is_nanp_in_any_default_region(raw: str, e164: str) -> None:
    # GIVEN a default region other than the US
    # THEN only Plum's 11-digit form starting with 1 is read as +1
    assert phone.normalize(raw, region="GB") == e164


def test_different_numbers_are_not_the_same_in_either_order() -> None:
    assert not phone.same_number("+19998881235", "+19998881234")
    assert not phone.same_number("+19998881234", "+19998881235")


def test_a_long_national_number_starting_with_1_is_not_taken_for_nanp() -> None:
    # GIVEN a German mobile number written nationally with 12 digits, starting with 1
    # THEN it is German: only exactly 11 digits starting with 1 are Plum's NANP form
    assert phone.normalize("151123456789", region="DE") == "+49151123456789"


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("AMAZON", "AMAZON"),
        ("22395", "22395"),
        (" Acme\tBank\n", "Acme Bank"),
        ("+1 243 567 8910", "+12435678910"),
    ],
)
def test_any_sender_plum_delivers_is_kept(raw: str, kept: str) -> None:
    # Short codes and alphanumeric senders are not phone numbers, and not errors either.
    assert phone.sender_address(raw) == kept


def test_an_empty_sender_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="sender"):
        phone.sender_address(" \t")


def test_every_country_is_allowed_by_a_star_even_for_unreadable_numbers() -> None:
    assert phone.in_countries("+12435678910", frozenset({"*"}))
    assert phone.in_countries("not a number", frozenset({"*"}))
    assert not phone.in_countries("not a number", frozenset({"+1"}))


def test_a_long_alphanumeric_sender_is_kept_to_64_characters() -> None:
    assert phone.MAX_SENDER_CHARS == 64
    assert phone.sender_address("A" * 64) == "A" * 64
    assert phone.sender_address("A" * 65) == "A" * 64


@pytest.mark.parametrize(
    ("address", "receives"),
    [
        ("+12125551234", True),  # a phone number in E.164
        ("+1 212 555 1234", False),  # a number, but not as E.164 (never stored so)
        ("12125551234", False),  # nor without its plus
        ("22395", False),  # a short code
        ("AMAZON", False),  # an alphanumeric sender
    ],
)
def test_only_a_phone_number_in_e164_can_receive_an_sms(address: str, receives: bool) -> None:
    assert phone.can_receive_sms(address) is receives


def test_a_country_named_by_its_region_code_is_found_by_the_numbers_region() -> None:
    # GIVEN Canada named as CA (not as its calling code, +1, which the US shares)
    assert phone.in_countries("+14165550123", frozenset({"CA"})) is True  # Toronto
    assert phone.in_countries("+12125551234", frozenset({"CA"})) is False  # New York
