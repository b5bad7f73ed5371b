"""Signed page cursors: round trips, tampering, scope binding (plumsms.domain.paging)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plumsms.domain.errors import ValidationFailed
from plumsms.domain.paging import MAX_CURSOR_CHARS, CursorCodec, LogPosition, derive_key

KEY = derive_key("test-webhook-key-0123456789")
CODEC = CursorCodec(KEY)
SCOPE = {"list": "messages", "number": "+19998881234", "status": None, "order": "desc"}
POSITION = "2024-05-01T12:00:00.000000Z#0123456789abcdef0123456789abcdef"

positions = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=128
)
scopes = st.dictionaries(
    st.text(min_size=1, max_size=10),
    st.one_of(st.none(), st.text(max_size=20), st.integers()),
    max_size=6,
)


@given(position=positions, scope=scopes)
def test_a_cursor_gives_back_its_position(
    position: str, scope: dict[str, str | int | None]
) -> None:
    # GIVEN any position and scope
    # WHEN it is encoded and decoded with the same scope
    cursor = CODEC.encode(position, scope)
    # THEN the position comes back, and the cursor is URL-safe ASCII of bounded size
    assert CODEC.decode(cursor, scope) == position
    assert cursor.isascii()
    assert all(c.isalnum() or c in "-_." for c in cursor)
    assert len(cursor) <= MAX_CURSOR_CHARS


def test_a_cursor_does_not_show_its_position_in_clear() -> None:
    # GIVEN a cursor
    cursor = CODEC.encode(POSITION, SCOPE)
    # THEN the position is not readable as-is (clients must treat it as opaque)
    assert POSITION not in cursor
    assert "#" not in cursor


@given(index=st.integers(min_value=0), replacement=st.sampled_from("AQgw-_x."))
def test_changing_any_character_is_rejected(index: int, replacement: str) -> None:
    # GIVEN a valid cursor
    cursor = CODEC.encode(POSITION, SCOPE)
    index %= len(cursor)
    if cursor[index] == replacement:
        return
    tampered = cursor[:index] + replacement + cursor[index + 1 :]
    # WHEN one character is changed
    # THEN decoding fails as a 400 naming the cursor
    with pytest.raises(ValidationFailed) as failure:
        CODEC.decode(tampered, SCOPE)
    assert failure.value.field == "cursor"


def test_a_re_signed_payload_with_another_position_is_rejected() -> None:
    # GIVEN a cursor whose payload is rewritten to seek elsewhere, keeping the old tag
    cursor = CODEC.encode(POSITION, SCOPE)
    payload_b64, tag = cursor.split(".")
    payload = json.loads(base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
    payload["p"] = "2099-01-01T00:00:00.000000Z#" + "f" * 32
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    # WHEN it is presented
    # THEN it is refused
    with pytest.raises(ValidationFailed, match="not a cursor this API issued"):
        CODEC.decode(f"{forged}.{tag}", SCOPE)


def test_a_cursor_from_another_deployment_is_rejected() -> None:
    # GIVEN a cursor signed under another secret
    other = CursorCodec(derive_key("another-deployment-secret"))
    cursor = other.encode(POSITION, SCOPE)
    # WHEN this deployment decodes it
    # THEN it is refused
    with pytest.raises(ValidationFailed, match="not a cursor this API issued"):
        CODEC.decode(cursor, SCOPE)


@given(changed=st.sampled_from(["number", "status", "order", "list"]), value=st.text(max_size=8))
def test_a_cursor_is_bound_to_its_filters(changed: str, value: str) -> None:
    # GIVEN a cursor issued for one set of filters
    cursor = CODEC.encode(POSITION, SCOPE)
    other_scope = {**SCOPE, changed: value}
    if other_scope == SCOPE:
        return
    # WHEN it is used with different filters
    # THEN it is refused, saying why
    with pytest.raises(ValidationFailed, match="different filters"):
        CODEC.decode(cursor, other_scope)


@given(garbage=st.text(max_size=600))
def test_arbitrary_text_is_a_validation_error_never_a_crash(garbage: str) -> None:
    # GIVEN any text a client might send as a cursor
    # WHEN it is decoded
    # THEN the only possible failure is ValidationFailed on "cursor"
    try:
        CODEC.decode(garbage, SCOPE)
    except ValidationFailed as failure:
        assert failure.field == "cursor"
    else:  # pragma: no cover - would mean a forged cursor was accepted
        pytest.fail("arbitrary text decoded as a cursor")


@pytest.mark.parametrize(
    "cursor",
    ["", ".", "abc", "a.b.c", "é.é", "x" * (MAX_CURSOR_CHARS + 1), "!!!!.????"],
)
def test_malformed_cursors_are_rejected(cursor: str) -> None:
    # GIVEN malformed cursors
    # WHEN decoded
    # THEN each is a 400 on "cursor"
    with pytest.raises(ValidationFailed) as failure:
        CODEC.decode(cursor, SCOPE)
    assert failure.value.field == "cursor"


def test_key_derivation_is_stable_and_separates_secrets() -> None:
    # GIVEN two secrets
    # WHEN keys are derived
    # THEN the same secret always gives the same key, and different ones differ
    assert derive_key("secret-one") == derive_key("secret-one")
    assert derive_key("secret-one") != derive_key("secret-two")
    assert derive_key("secret-one") != b"secret-one"
    with pytest.raises(ValueError, match="non-empty"):
        derive_key("")


@pytest.mark.parametrize("position", ["", "x" * 129, "2024-05-01#é", "a\x00b"])
def test_positions_out_of_range_cannot_be_encoded(position: str) -> None:
    # GIVEN an empty or oversized position
    # WHEN it is encoded
    # THEN the programming error is loud
    with pytest.raises(ValueError, match="position"):
        CODEC.encode(position, SCOPE)


# A cursor handed out before an upgrade must still work after it: the format is frozen.
ISSUED = (
    "eyJ2IjoxLCJwIjoiMjAyNC0wNS0wMVQxMjowMDowMC4wMDAwMDBaIzAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2"
    "Nzg5YWJjZGVmIiwicyI6Ing1bjU2RDlvSEZiVGtpTjAifQ.nlX1Avw_v8BkprgEoFPQuQ"
)


def test_a_cursor_issued_by_an_earlier_release_is_still_accepted() -> None:
    # GIVEN a cursor issued for SCOPE and POSITION by the released format
    # WHEN this code decodes it, and encodes the same position again
    # THEN it gives the position back, and the new cursor is the same text
    assert CODEC.decode(ISSUED, SCOPE) == POSITION
    assert CODEC.encode(POSITION, SCOPE) == ISSUED


def test_a_cursor_is_signed_with_128_bits_under_a_key_derived_from_the_secret() -> None:
    _, _, tag = ISSUED.partition(".")
    assert len(base64.urlsafe_b64decode(tag + "==")) == 16
    assert derive_key("secret-one").hex() == (
        "ed0efe04def9a64fcb354bcf2ca639bc9145dae68b2346638734b7e0136a1951"
    )


@pytest.mark.parametrize("position", [" ", "~", "x" * 128, " !~"])
def test_positions_of_printable_ascii_up_to_128_characters_round_trip(position: str) -> None:
    assert CODEC.decode(CODEC.encode(position, SCOPE), SCOPE) == position


@pytest.mark.parametrize("position", ["\x1f", "\x7f", "a\tb"])
def test_positions_with_control_characters_cannot_be_encoded(position: str) -> None:
    with pytest.raises(ValueError, match="position"):
        CODEC.encode(position, SCOPE)


def _signed(payload: bytes) -> str:
    """A cursor whose tag is right for ``payload`` under KEY (the documented signature:
    HMAC-SHA256 of the payload, first 128 bits), as an older or buggy release could sign."""
    tag = hmac.new(KEY, payload, hashlib.sha256).digest()[:16]

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return f"{b64(payload)}.{b64(tag)}"


def _scope_digest() -> str:
    payload_b64 = CODEC.encode(POSITION, SCOPE).split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(payload_b64 + "==="))["s"])


@pytest.mark.parametrize(
    ("payload", "rule"),
    [
        (b"not json", "not a cursor this API issued"),
        (b"[1, 2]", "incompatible version"),
        (json.dumps({"v": 0, "p": "x"}).encode(), "incompatible version"),
        (json.dumps({"v": 2, "p": "x"}).encode(), "incompatible version"),
    ],
)
def test_a_signed_cursor_of_another_format_is_refused_not_crashed(
    payload: bytes, rule: str
) -> None:
    with pytest.raises(ValidationFailed, match=rule):
        CODEC.decode(_signed(payload), SCOPE)


@pytest.mark.parametrize("position", [5, None, "", "x" * 129])
def test_a_signed_cursor_with_an_unusable_position_is_refused(position: object) -> None:
    payload = json.dumps({"v": 1, "p": position, "s": _scope_digest()}).encode()
    with pytest.raises(ValidationFailed, match="not a cursor this API issued"):
        CODEC.decode(_signed(payload), SCOPE)


def test_a_signed_cursor_with_a_128_character_position_is_accepted() -> None:
    payload = json.dumps({"v": 1, "p": "x" * 128, "s": _scope_digest()}).encode()
    assert CODEC.decode(_signed(payload), SCOPE) == "x" * 128


def test_a_codec_cannot_be_altered() -> None:
    with pytest.raises(AttributeError):
        CODEC.key = b"other"  # type: ignore[misc]


# -- typed positions (LogPosition) -------------------------------------------------------

AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MESSAGE_ID = "0123456789abcdef0123456789abcdef"


def test_a_log_position_is_carried_as_the_text_cursors_always_carried() -> None:
    # GIVEN the position the frozen cursor ISSUED was made for
    position = LogPosition(AT, MESSAGE_ID)
    # THEN its text is that cursor's position, both ways, and the cursor decodes to it
    assert position.to_text() == POSITION
    assert LogPosition.from_text(POSITION) == position
    assert CODEC.decode_position(ISSUED, SCOPE) == position
    assert CODEC.encode_position(position, SCOPE) == ISSUED


def test_a_log_position_is_written_in_utc_whatever_its_zone() -> None:
    east = AT.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert LogPosition(east, "k").to_text() == "2024-05-01T12:00:00.000000Z#k"
    assert LogPosition.from_text("2024-05-01T12:00:00.000001Z#+19998881234") == LogPosition(
        AT + timedelta(microseconds=1), "+19998881234"
    )


def test_log_positions_compare_by_time_then_key() -> None:
    assert LogPosition(AT, "b") < LogPosition(AT + timedelta(microseconds=1), "a")
    assert LogPosition(AT, "a") < LogPosition(AT, "b")


@pytest.mark.parametrize(
    "text",
    ["2024-05-01T12:00:00.000000Z", "2024-05-01T12:00:00.000000Z#", "#abc", "yesterday#abc",
     "2024-05-01T12:00:00+00:00#abc"],
)  # fmt: skip
def test_text_that_is_no_log_position_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        LogPosition.from_text(text)
    # AND a cursor signed around it is refused as a cursor, not crashed on
    with pytest.raises(ValidationFailed, match="not a cursor this API issued"):
        CODEC.decode_position(CODEC.encode(text, SCOPE), SCOPE)


def test_a_position_cursor_is_still_bound_to_its_scope() -> None:
    cursor = CODEC.encode_position(LogPosition(AT, MESSAGE_ID), SCOPE)
    with pytest.raises(ValidationFailed, match="different filters"):
        CODEC.decode_position(cursor, {**SCOPE, "order": "asc"})


def test_a_log_position_cannot_be_changed_once_made() -> None:
    # A cursor's position is a value: a listing cannot move another listing's position.
    position = LogPosition(datetime(2026, 1, 1, tzinfo=UTC), "a" * 32)
    with pytest.raises(dataclasses.FrozenInstanceError):
        position.key = "b"  # type: ignore[misc]
