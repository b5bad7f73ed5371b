"""Plum's failure texts map to the domain's exception classes."""

from __future__ import annotations

import pytest

from plumsms.domain.errors import PlumSmsError
from plumsms.domain.plum import (
    InvalidRecipient,
    NotAMobileNumber,
    PlumError,
    PlumRejected,
    PlumUnavailable,
    Unauthorized,
    UnexpectedResponse,
    UnsubscribedRecipient,
    failure_from_reason,
    is_known_failure,
    redact_numbers,
)

DOCUMENTED = [
    ("Invalid 'to' phone number", InvalidRecipient),
    ("Attempt to send to unsubscribed recipient", UnsubscribedRecipient),
    ("To number: +19998881234, is not a mobile number", NotAMobileNumber),
    ("Error sending sms request", PlumRejected),
    ("Unauthorized access to sample service", Unauthorized),
    ("Unauthorized access to queue service", Unauthorized),
]


def _variants(text: str) -> list[str]:
    return [
        text,
        f'"{text}"',  # Plum's docs show the text in doubled quotes
        f'""{text}""',
        f"'{text}'",
        f"\u201c{text}\u201d",
        text.upper(),
        text.lower(),
        f"  {text}\n",
        text.replace(" ", "  "),
        text.replace("'to'", '"to"'),
        text.replace("'to'", "to"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [(variant, cls) for text, cls in DOCUMENTED for variant in _variants(text)],
)
def test_documented_failure_texts_map_to_their_class(text: str, expected: type[PlumError]) -> None:
    error = failure_from_reason(text)

    assert type(error) is expected
    assert error.transient is False
    assert is_known_failure(text)


def test_error_sending_sms_request_is_rejected_not_transient() -> None:
    error = failure_from_reason('"Error sending sms request"', http_status=500)

    assert type(error) is PlumRejected
    assert not error.transient
    assert error.reason == "Error sending sms request"
    assert error.http_status == 500


def test_unknown_text_is_a_generic_rejection_keeping_plums_words() -> None:
    error = failure_from_reason("Something new went wrong")

    assert type(error) is PlumRejected
    assert error.reason == "Something new went wrong"
    assert not is_known_failure("Something new went wrong")


def test_reason_keeps_the_number_but_the_message_redacts_it() -> None:
    error = failure_from_reason('"To number: +19998881234, is not a mobile number"')

    assert error.reason == "To number: +19998881234, is not a mobile number"
    assert "9998881234" not in str(error)
    assert "[number]" in str(error)


def test_every_plum_error_is_a_package_error_with_the_right_transience() -> None:
    for cls in (
        InvalidRecipient,
        UnsubscribedRecipient,
        NotAMobileNumber,
        Unauthorized,
        PlumRejected,
        UnexpectedResponse,
    ):
        assert issubclass(cls, PlumError)
        assert issubclass(cls, PlumSmsError)
        assert cls("x").transient is False
    assert PlumUnavailable("x").transient is True


def test_maybe_sent_defaults_to_false_and_can_be_set() -> None:
    assert PlumUnavailable("timeout").maybe_sent is False
    assert PlumUnavailable("timeout", maybe_sent=True).maybe_sent is True


@pytest.mark.parametrize(
    "text",
    ["+19998881234", "19998881234", "(999) 888-1234", "999.888.1234", "+44 20 7946 0958"],
)
def test_redact_numbers_hides_phone_like_runs(text: str) -> None:
    assert redact_numbers(f"call {text} now") == "call [number] now"


def test_redact_numbers_leaves_short_numbers() -> None:
    assert redact_numbers("HTTP 503 after 3 tries") == "HTTP 503 after 3 tries"


def test_a_failure_is_not_taken_as_maybe_sent_unless_said() -> None:
    # A caller that says nothing about it must not be told to reconcile before resending.
    assert UnexpectedResponse("garbled").maybe_sent is False
    assert PlumRejected("no").maybe_sent is False
    assert UnexpectedResponse("garbled", excerpt="<x", maybe_sent=True).maybe_sent is True
