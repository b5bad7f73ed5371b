"""The Result URL callback model: form or JSON fields, unknown statuses kept, clear errors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plumsms.domain.callbacks import MAX_STATUS_CHARS, StatusCallback, callback_fields, parse_ref
from plumsms.domain.errors import ValidationFailed
from plumsms.entrypoints.webhooks import parse_model

PLUM_ID = "0123456789abcdef0123456789abcdef"


def test_form_fields_with_every_resource_field() -> None:
    fields = {
        "sms_message_id": PLUM_ID.upper(),
        "status": " Delivered ",
        "to": "19998881234",
        "from": "2435678910",
        "body": "Hello",
        "request_timestamp": "1700000000",
        "result_url": "https://sms.example.test/plum/status?key=k&ref=r",
    }
    callback = parse_model(StatusCallback, fields)
    assert callback.sms_message_id == PLUM_ID
    assert callback.status == "delivered"
    assert (callback.to, callback.from_, callback.body) == ("19998881234", "2435678910", "Hello")


def test_only_id_and_status_are_required_and_extra_fields_are_ignored() -> None:
    callback = parse_model(
        StatusCallback, {"sms_message_id": PLUM_ID, "status": "sent", "carrier": "x"}
    )
    assert (callback.status, callback.to, callback.request_timestamp) == ("sent", None, None)


def test_json_numbers_are_accepted_as_text() -> None:
    callback = parse_model(
        StatusCallback,
        {
            "sms_message_id": PLUM_ID,
            "status": "sent",
            "to": 19998881234,
            "request_timestamp": 1700000000,
        },
    )
    assert (callback.to, callback.request_timestamp) == ("19998881234", "1700000000")


@given(
    st.text(min_size=1, max_size=MAX_STATUS_CHARS).filter(lambda s: s.strip() and s.isprintable())
)
def test_any_printable_status_is_kept_lower_cased(raw: str) -> None:
    callback = parse_model(StatusCallback, {"sms_message_id": PLUM_ID, "status": raw})
    assert callback.status == raw.strip().lower()


@pytest.mark.parametrize(
    ("fields", "field", "rule"),
    [
        ({"status": "sent"}, "sms_message_id", "is required"),
        ({"sms_message_id": PLUM_ID}, "status", "is required"),
        (
            {"sms_message_id": "1234", "status": "sent"},
            "sms_message_id",
            "must be 32 hexadecimal characters",
        ),
        ({"sms_message_id": PLUM_ID, "status": ""}, "status", None),
        ({"sms_message_id": PLUM_ID, "status": "\t\n"}, "status", None),
        ({"sms_message_id": PLUM_ID, "status": "x" * (MAX_STATUS_CHARS + 1)}, "status", None),
        ({"sms_message_id": PLUM_ID, "status": "sent\x00"}, "status", None),
        ({"sms_message_id": PLUM_ID, "status": "sent", "to": "1" * 3000}, "to", None),
    ],
)
def test_bad_callbacks_name_the_field(fields: dict[str, Any], field: str, rule: str | None) -> None:
    with pytest.raises(ValidationFailed) as raised:
        parse_model(StatusCallback, fields)
    assert raised.value.field == field
    if rule is not None:
        assert raised.value.rule == rule


def test_json_body_flat_or_wrapped() -> None:
    flat = {"sms_message_id": PLUM_ID, "status": "sent"}
    assert callback_fields(flat) == flat
    assert callback_fields({"sms_message": flat}) == flat


@pytest.mark.parametrize("data", [[1, 2], "sent", None, 3])
def test_json_body_must_be_an_object(data: Any) -> None:
    with pytest.raises(ValidationFailed) as raised:
        callback_fields(data)
    assert raised.value.field == "body"


def test_ref_is_optional_and_must_look_like_an_id() -> None:
    assert parse_ref(None) is None
    assert parse_ref("") is None
    assert parse_ref("0f2e4c6a8b1d3f5e7a9c0b2d4f6e8a1c") == "0f2e4c6a8b1d3f5e7a9c0b2d4f6e8a1c"
    for bad in ("../etc", "a b", "x" * 65, "id#1"):
        with pytest.raises(ValidationFailed) as raised:
            parse_ref(bad)
        assert raised.value.field == "ref"


def test_a_status_of_64_characters_is_kept_65_are_refused() -> None:
    # GIVEN statuses at and over the documented limit (written out, not read from the code)
    kept = parse_model(StatusCallback, {"sms_message_id": PLUM_ID, "status": "x" * 64})
    assert kept.status == "x" * 64
    with pytest.raises(ValidationFailed) as raised:
        parse_model(StatusCallback, {"sms_message_id": PLUM_ID, "status": "x" * 65})
    assert raised.value.field == "status"


def test_a_one_character_status_is_kept() -> None:
    assert parse_model(StatusCallback, {"sms_message_id": PLUM_ID, "status": "Q"}).status == "q"


def test_informative_fields_take_2048_characters_not_more() -> None:
    url = "https://h/" + "p" * (2048 - len("https://h/"))
    kept = parse_model(StatusCallback, {"sms_message_id": PLUM_ID, "status": "sent", "to": url})
    assert kept.to == url
    with pytest.raises(ValidationFailed) as raised:
        parse_model(
            StatusCallback, {"sms_message_id": PLUM_ID, "status": "sent", "result_url": url + "x"}
        )
    assert raised.value.field == "result_url"


def test_a_parsed_callback_cannot_be_altered() -> None:
    callback = parse_model(StatusCallback, {"sms_message_id": PLUM_ID, "status": "sent"})
    with pytest.raises(ValueError, match="frozen"):
        callback.status = "delivered"


def test_a_callback_can_be_built_by_field_name_as_well_as_by_plums_names() -> None:
    callback = StatusCallback(sms_message_id=PLUM_ID, status="sent", from_="2435678910")
    assert callback.from_ == "2435678910"


@pytest.mark.parametrize("data", [{"sms_message": "sent"}, {"sms_message": None}])
def test_a_wrapper_that_is_not_an_object_is_read_as_the_flat_body(data: Any) -> None:
    assert callback_fields(data) == data


@pytest.mark.parametrize("ref", ["a", "A-b_9", "x" * 64])
def test_refs_of_1_to_64_id_characters_are_accepted(ref: str) -> None:
    assert parse_ref(ref) == ref
