"""Domain models: the limits a user meets, and records that cannot be altered."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from plumsms.domain.errors import ValidationFailed
from plumsms.domain.models import (
    HistoryEntry,
    InboundRecord,
    InboundSms,
    Message,
    MessageType,
    OptOut,
    Reply,
    Status,
    derived_id,
    mask_key,
    new_message,
    new_message_for,
    parse_sms_message_id,
)

PLUM_ID = "0123456789abcdef0123456789abcdef"
T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def message(**changes: object) -> Message:
    data: dict[str, object] = {
        "id": "m" * 32,
        "type": "outbound",
        "to": "+19998881234",
        "from": "+12435678910",
        "body": "hi",
        "status": "queued",
        "created_at": T0,
        "updated_at": T0,
        "segments": 1,
        "encoding": "GSM-7",
    }
    data.update(changes)
    return Message.model_validate(data)


def test_a_reply_of_1600_characters_is_accepted_1601_refused() -> None:
    # GIVEN a reply at and over the ten-part limit THEN one more character is refused
    assert len(Reply(to="+19998881234", from_="+12435678910", body="a" * 1600).body) == 1600
    with pytest.raises(ValidationError):
        Reply(to="+19998881234", from_="+12435678910", body="a" * 1601)


def test_the_log_holds_bodies_up_to_the_longest_concatenated_sms() -> None:
    # Every real inbound SMS is stored: 255 parts of 153 characters, not 1,600.
    longest = "a" * (255 * 153)
    assert message(body=longest).body == longest
    with pytest.raises(ValidationError):
        message(body=longest + "a")


def test_a_longer_inbound_body_is_cut_not_refused() -> None:
    inbound = {"sms_message_id": PLUM_ID, "to": "+12435678910", "from": "+19998881234"}
    longest = "a" * (255 * 153)
    assert InboundSms.model_validate({**inbound, "body": longest + "bc"}).body == longest


def test_an_inbound_sms_can_be_built_by_field_name() -> None:
    inbound = InboundSms(
        sms_message_id=PLUM_ID, to="+12435678910", from_="+19998881234", body="hello"
    )
    assert inbound.from_ == "+19998881234"


def test_history_entries_inbound_sms_and_replies_cannot_be_altered() -> None:
    entry = HistoryEntry(status="sent", at=T0, source="plum")
    inbound = InboundSms(sms_message_id=PLUM_ID, to="+12435678910", from_="+19998881234", body="")
    reply = Reply(to="+19998881234", from_="+12435678910", body="ok")
    for record, field in ((entry, "status"), (inbound, "body"), (reply, "body")):
        with pytest.raises(ValidationError, match="frozen"):
            setattr(record, field, "changed")


def test_times_are_kept_in_utc_and_naive_times_refused() -> None:
    paris = timezone(timedelta(hours=1))
    entry = HistoryEntry(status="sent", at=datetime(2026, 1, 15, 13, 0, tzinfo=paris), source="x")
    assert entry.at == T0 and entry.at.tzinfo is UTC
    with pytest.raises(ValidationError, match="must carry a time zone"):
        HistoryEntry(status="sent", at=datetime(2026, 1, 15, 12, 0), source="x")


def test_plum_ids_are_32_hex_characters_lower_cased() -> None:
    assert parse_sms_message_id(f" {PLUM_ID.upper()} ") == PLUM_ID
    for bad in ("", PLUM_ID[:-1], PLUM_ID + "0", "g" * 32):
        with pytest.raises(ValidationFailed, match="32 hexadecimal") as raised:
            parse_sms_message_id(bad, field="ref")
        assert raised.value.field == "ref"


def test_history_is_kept_oldest_first() -> None:
    late = HistoryEntry(status="sent", at=T0 + timedelta(seconds=5), source="x")
    early = HistoryEntry(status="queued", at=T0, source="x")
    assert [e.status for e in message(history=[late, early]).history] == ["queued", "sent"]


def test_customer_and_account_numbers_depend_on_direction() -> None:
    outbound = message()
    inbound = message(type="inbound", to="+12435678910", **{"from": "+19998881234"})
    assert (outbound.customer_number, outbound.account_number) == ("+19998881234", "+12435678910")
    assert (inbound.customer_number, inbound.account_number) == ("+19998881234", "+12435678910")
    assert inbound.type is MessageType.INBOUND


def test_the_webhook_key_is_masked_in_json_only() -> None:
    url = "https://h/plum/status?key=s3cret&ref=r"
    data = message(result_url=url).to_json()
    assert data["result_url"] == "https://h/plum/status?key=***&ref=r"
    assert data["from"] == "+12435678910" and "from_" not in data
    assert mask_key("https://h/p?a=1&key=k#f") == "https://h/p?a=1&key=***#f"
    assert message().to_json()["result_url"] is None


def test_derived_ids_are_stable_and_distinct() -> None:
    assert derived_id("p", "reply", 0) == derived_id("p", "reply", 0)
    assert len({derived_id("p", "reply", 0), derived_id("p", "reply", 1)}) == 2
    assert len(derived_id("p", "reply", 0)) == 32


def test_a_reply_needs_a_body() -> None:
    assert Reply(to="+19998881234", from_="+12435678910", body="x").body == "x"
    with pytest.raises(ValidationError, match="body"):
        Reply(to="+19998881234", from_="+12435678910", body="")


def test_a_message_counts_at_least_one_segment() -> None:
    assert message(segments=1).segments == 1
    with pytest.raises(ValidationError, match="segments"):
        message(segments=0)


def test_an_opt_out_record_cannot_be_altered() -> None:
    opt_out = OptOut(number="+19998881234", keyword="STOP", at=T0, message_id="m" * 32)
    with pytest.raises(ValidationError, match="frozen"):
        opt_out.keyword = "START"


def test_an_inbound_record_is_the_message_alone_unless_told_more_and_cannot_be_altered() -> None:
    inbound = message(type="inbound", status="received")
    record = InboundRecord(inbound)
    assert (record.replies, record.reply_xml, record.peers) == ((), b"", ())
    assert record.opt_out is None and record.opt_in_number is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.opt_in_number = "+19998881234"  # type: ignore[misc]


def test_a_new_message_starts_its_history_with_its_status() -> None:
    # GIVEN a reply created at a known time
    at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    # WHEN it is made with the one factory
    message = new_message(
        "r1",
        MessageType.REPLY,
        to="+19998881234",
        from_="+12435678910",
        body="hi",
        status=Status.QUEUED,
        at=at,
        source="inbound",
        segments=1,
        encoding="GSM-7",
    )
    # THEN it was created and last updated then, and its history is that one entry
    assert (message.created_at, message.updated_at) == (at, at)
    assert [(e.status, e.at, e.source) for e in message.history] == [(Status.QUEUED, at, "inbound")]


def test_a_message_for_an_sms_carries_its_numbers_body_and_segments() -> None:
    # GIVEN a reply of two UCS-2 parts
    reply = Reply(to="+19998881234", from_="+12435678910", body="\u2603" * 71)
    # WHEN a message is made for it
    made = new_message_for(
        reply, "r1", MessageType.REPLY, status=Status.QUEUED, at=T0, source="inbound"
    )
    # THEN it has the reply's numbers and body, and the segments the body takes
    assert (made.to, made.from_, made.body) == (reply.to, reply.from_, reply.body)
    assert (made.segments, made.encoding) == (2, "UCS-2")
    assert (made.id, made.type, made.status, made.created_at) == (
        "r1",
        MessageType.REPLY,
        Status.QUEUED,
        T0,
    )


def test_a_schedule_is_in_the_json_only_when_there_is_one() -> None:
    # GIVEN a plain send and a send in a series
    schedule = {"series_id": "s" * 32, "occurrence": 2}
    # THEN the series shows its schedule and the plain send has no such key
    assert message(schedule=schedule).to_json()["schedule"] == schedule
    assert "schedule" not in message().to_json()


def test_a_time_before_year_1_once_in_utc_is_refused_as_out_of_range() -> None:
    # GIVEN the first instant of year 1 at +14:00 (before year 1 in UTC)
    # WHEN a message is built with it THEN the field is refused, not crashed on
    with pytest.raises(ValidationError, match="out of range once converted to UTC"):
        message(created_at="0001-01-01T00:00:00+14:00")
