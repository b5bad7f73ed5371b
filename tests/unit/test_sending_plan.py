"""Send requests: validation, due time, quiet hours and the recurrence's next message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plumsms.domain.errors import ValidationFailed
from plumsms.domain.models import MAX_BODY_CHARS
from plumsms.domain.scheduling import zone
from plumsms.domain.sending import (
    IDEMPOTENCY_TTL,
    DuePage,
    DueRef,
    EditRequest,
    HeldLease,
    IdempotencyRecord,
    Schedule,
    SendRequest,
    check_body,
    check_idempotency_key,
    next_occurrence,
    plan_edit,
    plan_send,
    request_fingerprint,
)
from plumsms.entrypoints.webhooks import parse_model

NOW = datetime(2025, 6, 10, 16, 0, tzinfo=UTC)  # 12:00 in New York
NUMBERS = ("+12435678910",)
NY_RECIPIENT = "+12125551234"  # area code 212: America/New_York only
UNKNOWN_ZONE_RECIPIENT = "+19998881234"  # no single zone


def request(**changes: Any) -> SendRequest:
    data: dict[str, Any] = {"to": NY_RECIPIENT, "from": "+12435678910", "body": "Hello"}
    data.update(changes)
    return parse_model(SendRequest, {k: v for k, v in data.items() if v is not None})


def refused(field: str, **changes: Any) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        plan_send(request(**changes), NOW, NUMBERS)
    assert caught.value.field == field
    return caught.value


def test_a_send_now_is_due_now() -> None:
    plan = plan_send(request(body="Hi \u2603"), NOW, NUMBERS)
    assert plan.due == NOW
    assert plan.schedule.recurrence is None


@pytest.mark.parametrize("to", ["+447400123456", "+33612345678", "+61412345678"])
def test_a_recipient_plum_cannot_send_to_is_refused_naming_to(to: str) -> None:
    # GIVEN a valid number outside +1, WHEN it is the recipient of a send
    with pytest.raises(ValidationFailed) as caught:
        request(to=to)
    # THEN the request is refused up front, naming `to` and the rule
    assert caught.value.field == "to"
    assert "countries Plum DEV sends SMS to" in caught.value.rule


@pytest.mark.parametrize("to", ["+14165550123", "+18095550123", "+12125551234"])
def test_north_american_recipients_are_accepted(to: str) -> None:
    # Canada (416) and the Dominican Republic (809) share +1 with the US
    assert request(to=to).to == to


def test_numbers_in_any_accepted_form_become_e164() -> None:
    sent = request(to="(212) 555-1234", **{"from": "2435678910"})
    assert (sent.to, sent.from_) == ("+12125551234", "+12435678910")
    # AND the sender, once in E.164, is the account's number
    assert plan_send(sent, NOW, NUMBERS).due == NOW


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"to": "12"}, "to", "not a"),
        ({"from": "+12025550000"}, "from", "not one of this account's SMS numbers"),
        ({"body": ""}, "body", "must not be empty"),
        ({"body": "   \n"}, "body", "must not be empty"),
        ({"body": "x" * (MAX_BODY_CHARS + 1)}, "body", f"at most {MAX_BODY_CHARS}"),
        ({"body": "card 4111 1111 1111 1111"}, "body", "payment card number"),
        ({"send_at": "2025-06-10T15:00:00Z"}, "send_at", "in the past"),
        ({"send_at": "2026-06-11T15:00:00Z"}, "send_at", "more than one year"),
        ({"send_at": "2025-06-11T09:00"}, "send_at", "needs an offset"),
        ({"time_zone": "Mars/Base"}, "time_zone", "IANA"),
    ],
)
def test_bad_requests_are_refused_naming_field_and_rule(
    changes: dict[str, Any], field: str, rule: str
) -> None:
    # GIVEN a request breaking one rule
    # WHEN it is parsed and planned
    # THEN the refusal names the field and the rule
    with pytest.raises(ValidationFailed) as caught:
        plan_send(request(**changes), NOW, NUMBERS)
    assert caught.value.field == field
    assert rule in caught.value.rule


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationFailed) as caught:
        request(sendAt="2025-06-11T09:00:00Z")
    assert caught.value.field == "sendAt"


def test_send_at_without_offset_is_a_wall_time_in_the_time_zone() -> None:
    plan = plan_send(request(send_at="2025-06-11T09:00", time_zone="Europe/Paris"), NOW, NUMBERS)
    assert plan.due == datetime(2025, 6, 11, 7, 0, tzinfo=UTC)


def test_quiet_hours_move_a_send_to_the_end_of_the_window() -> None:
    # GIVEN a send at 22:00 New York with quiet hours 21:00-08:00 in the number's zone
    plan = plan_send(
        request(
            send_at="2025-06-10T22:00:00-04:00",
            quiet_hours={"start": "21:00", "end": "08:00"},
        ),
        NOW,
        NUMBERS,
    )
    # THEN it is due at 08:00 the next morning, and the zone came from the number
    assert plan.due == datetime(2025, 6, 11, 12, 0, tzinfo=UTC)
    assert plan.schedule.quiet_hours is not None
    assert plan.schedule.quiet_hours.time_zone == "America/New_York"


def test_quiet_hours_zone_comes_from_the_request_before_the_number() -> None:
    plan = plan_send(
        request(
            send_at="2025-06-10T22:00:00-04:00",  # 04:00 in Paris: inside
            time_zone="Europe/Paris",
            quiet_hours={"start": "00:00", "end": "07:00"},
        ),
        NOW,
        NUMBERS,
    )
    assert plan.due == datetime(2025, 6, 11, 5, 0, tzinfo=UTC)  # 07:00 Paris


def test_quiet_hours_for_a_number_without_a_single_zone_need_a_zone() -> None:
    error = refused(
        "quiet_hours.time_zone",
        to=UNKNOWN_ZONE_RECIPIENT,
        quiet_hours={"start": "21:00", "end": "08:00"},
    )
    assert "single time zone" in error.rule


def test_a_recurrence_starts_at_send_at_in_its_zone() -> None:
    plan = plan_send(
        request(
            send_at="2025-06-11T09:00",
            recurrence={"frequency": "daily", "count": 3, "time_zone": "America/Chicago"},
        ),
        NOW,
        NUMBERS,
    )
    # The naive send_at is read in the recurrence's zone (no request time_zone).
    assert plan.due == datetime(2025, 6, 11, 14, 0, tzinfo=UTC)
    assert plan.schedule.anchor == datetime(2025, 6, 11, 9, 0)
    assert plan.schedule.recurrence is not None
    assert plan.schedule.recurrence.time_zone == "America/Chicago"


def test_a_recurrence_without_any_zone_for_an_unplaceable_number_is_refused() -> None:
    refused(
        "recurrence.time_zone",
        to=UNKNOWN_ZONE_RECIPIENT,
        recurrence={"frequency": "daily", "count": 3},
    )


def test_a_recurrence_that_never_matches_is_refused() -> None:
    # 30 February: refused as a day of the month no chosen month has
    refused("recurrence.cron", recurrence={"cron": "0 9 30 2 *", "count": 2})


def test_next_occurrence_follows_the_rule_and_ends_with_the_count() -> None:
    plan = plan_send(
        request(
            send_at="2025-06-11T09:00",
            time_zone="America/New_York",
            recurrence={"frequency": "weekly", "count": 2},
            quiet_hours={"start": "08:30", "end": "09:30"},
        ),
        NOW,
        NUMBERS,
    )
    # GIVEN a weekly series at 09:00 inside quiet hours 08:30-09:30: due 09:30
    assert plan.due == datetime(2025, 6, 11, 13, 30, tzinfo=UTC)
    # WHEN the first one is sent
    planned = next_occurrence(plan.schedule, plan.due)
    # THEN the second is a week later, also held to 09:30, and it is the last
    assert planned is not None
    second, due = planned
    assert second.occurrence == 2
    assert due == datetime(2025, 6, 18, 13, 30, tzinfo=UTC)
    assert next_occurrence(second, due) is None


def test_next_occurrence_skips_times_missed_during_an_outage() -> None:
    plan = plan_send(
        request(send_at="2025-06-11T09:00", recurrence={"frequency": "daily", "count": 10}),
        NOW,
        NUMBERS,
    )
    # GIVEN the first message went out three and a half days late
    late = datetime(2025, 6, 14, 22, 0, tzinfo=UTC)
    planned = next_occurrence(plan.schedule, late)
    # THEN the next one is the first still ahead (the 15th), counted as the 5th
    assert planned is not None
    schedule, due = planned
    assert due == datetime(2025, 6, 15, 13, 0, tzinfo=UTC)
    assert schedule.occurrence == 5


def test_schedules_survive_storage() -> None:
    plan = plan_send(
        request(
            recurrence={"cron": "0 9 * * 1-5", "count": 5},
            quiet_hours={"start": "21:00", "end": "08:00"},
        ),
        NOW,
        NUMBERS,
    )
    stored = Schedule.from_json(plan.schedule.to_json())
    assert stored == plan.schedule
    assert Schedule.from_json(None) == Schedule()
    assert set(stored.public()) == {"quiet_hours", "recurrence", "occurrence"}


def test_an_edit_moves_the_due_time_within_the_messages_quiet_hours() -> None:
    schedule = Schedule(
        time_zone="America/New_York",
        quiet_hours={"start": "21:00", "end": "08:00", "time_zone": "America/New_York"},
    )
    edit = EditRequest(send_at="2025-06-12T23:00")
    plan = plan_edit(edit, schedule, NOW)
    assert plan.due == datetime(2025, 6, 13, 12, 0, tzinfo=UTC)
    assert plan.body is None


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (EditRequest(), "body"),
        (EditRequest(time_zone="UTC"), "time_zone"),
        (EditRequest(body="4111111111111111"), "body"),
        (EditRequest(send_at="2020-01-01T00:00:00Z"), "send_at"),
    ],
)
def test_bad_edits_are_refused(edit: EditRequest, field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        plan_edit(edit, Schedule(), NOW)
    assert caught.value.field == field


def test_fingerprints_ignore_key_order_but_not_values() -> None:
    a = {"to": "+1", "body": "x", "recurrence": {"count": 2, "frequency": "daily"}}
    b = {"recurrence": {"frequency": "daily", "count": 2}, "body": "x", "to": "+1"}
    assert request_fingerprint(a) == request_fingerprint(b)
    assert request_fingerprint(a) != request_fingerprint({**a, "body": "y"})


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\there"])
def test_unusable_idempotency_keys_are_refused(key: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_idempotency_key(key)
    assert caught.value.field == "Idempotency-Key"


@given(minutes=st.integers(min_value=-30, max_value=366 * 24 * 60))
def test_due_times_are_never_in_the_past_nor_beyond_a_year(minutes: int) -> None:
    # GIVEN any requested time from half an hour ago to a year and a day ahead
    send_at = (NOW + timedelta(minutes=minutes)).isoformat()
    try:
        plan = plan_send(request(send_at=send_at), NOW, NUMBERS)
    except ValidationFailed as exc:
        # THEN it is refused only for the documented reasons
        assert exc.rule in {"is in the past", "is more than one year ahead"}
        return
    # THEN an accepted one is due between now and a year ahead
    assert NOW <= plan.due <= NOW + timedelta(days=365)


def test_the_recipient_zone_fallback_uses_the_number() -> None:
    assert zone("America/New_York")  # the zone database is present


# -- limits written out (not read back from the code) -----------------------------------


def test_a_body_of_1600_characters_is_sent_1601_are_refused() -> None:
    assert plan_send(request(body="a" * 1600), NOW, NUMBERS).due == NOW
    assert check_body("a" * 1600).segments == 11
    with pytest.raises(ValidationFailed, match="at most 1600 characters"):
        plan_send(request(body="a" * 1601), NOW, NUMBERS)


def test_an_idempotency_key_takes_1_to_255_printable_ascii_characters() -> None:
    assert check_idempotency_key("k") == "k"
    assert check_idempotency_key("k" * 255) == "k" * 255
    with pytest.raises(ValidationFailed, match="1 to 255 printable ASCII"):
        check_idempotency_key("k" * 256)


def test_an_idempotency_key_is_remembered_for_24_hours() -> None:
    assert timedelta(hours=24) == IDEMPOTENCY_TTL


@pytest.mark.parametrize("field", ["send_at", "time_zone"])
def test_send_at_and_time_zone_take_64_characters_not_more(field: str) -> None:
    data = {"to": "+12125551234", "from": "+12435678910", "body": "hi"}
    assert getattr(SendRequest.model_validate({**data, field: "x" * 64}), field) == "x" * 64
    with pytest.raises(ValueError, match=field):
        SendRequest.model_validate({**data, field: "x" * 65})
    assert getattr(EditRequest.model_validate({field: "x" * 64}), field) == "x" * 64
    with pytest.raises(ValueError, match=field):
        EditRequest.model_validate({field: "x" * 65})


def test_requests_and_schedules_cannot_be_altered_or_carry_unknown_fields() -> None:
    sent = request()
    for record, field in (
        (sent, "body"),
        (EditRequest(body="x"), "body"),
        (Schedule(), "series_id"),
    ):
        with pytest.raises(ValueError, match="frozen"):
            setattr(record, field, "changed")
    for model in (SendRequest, EditRequest, Schedule):
        with pytest.raises(ValueError, match="colour"):
            model.model_validate({"colour": "red"})


def test_a_schedule_counts_occurrences_from_one() -> None:
    assert Schedule().occurrence == 1
    with pytest.raises(ValueError, match="occurrence"):
        Schedule(occurrence=0)


def test_a_send_request_can_be_built_by_field_name() -> None:
    sent = SendRequest(to="+12125551234", from_="+12435678910", body="hi")
    assert sent.from_ == "+12435678910"


def test_a_send_exactly_a_year_ahead_is_accepted() -> None:
    a_year = NOW + timedelta(days=365)
    assert plan_send(request(send_at=a_year.isoformat()), NOW, NUMBERS).due == a_year


def test_quiet_hours_that_push_a_send_past_a_year_refuse_it() -> None:
    # GIVEN a send exactly a year ahead, at 12:00 New York, inside quiet hours 11:00-13:00
    a_year = NOW + timedelta(days=365)
    lunch = {"start": "11:00", "end": "13:00", "time_zone": "America/New_York"}
    # THEN moving it to 13:00 would put it past a year: it is refused
    with pytest.raises(ValidationFailed, match="more than one year ahead"):
        plan_send(request(send_at=a_year.isoformat(), quiet_hours=lunch), NOW, NUMBERS)


def test_a_stored_schedule_leaves_out_what_is_not_set() -> None:
    assert Schedule().to_json() == '{"occurrence":1}'


def test_plans_and_records_cannot_be_altered() -> None:
    record = IdempotencyRecord("k", "f", "m", "{}", expires_at=2, taken_at=1)
    sent = plan_send(request(), NOW, NUMBERS)
    edit = plan_edit(EditRequest(body="new"), Schedule(), NOW)
    lease = HeldLease(frozenset({"+12435678910"}))
    for value, field in ((record, "message_id"), (sent, "due"), (edit, "body"), (lease, "senders")):
        with pytest.raises(AttributeError):
            setattr(value, field, "changed")


def test_the_third_message_of_a_series_is_followed_by_the_fourth() -> None:
    plan = plan_send(
        request(send_at="2025-06-11T09:00", time_zone="America/New_York",
                recurrence={"frequency": "daily", "count": 5}),
        NOW,
        NUMBERS,
    )  # fmt: skip
    third = plan.schedule.model_copy(update={"occurrence": 3})
    planned = next_occurrence(third, plan.due)
    assert planned is not None
    fourth, due = planned
    assert (fourth.occurrence, due) == (4, datetime(2025, 6, 14, 13, 0, tzinfo=UTC))


def test_a_series_without_its_anchor_or_zone_has_no_next_message() -> None:
    plan = plan_send(
        request(send_at="2025-06-11T09:00", time_zone="America/New_York",
                recurrence={"frequency": "daily", "count": 5}),
        NOW,
        NUMBERS,
    )  # fmt: skip
    assert plan.schedule.recurrence is not None
    zoneless = plan.schedule.recurrence.model_copy(update={"time_zone": None})
    assert next_occurrence(plan.schedule.model_copy(update={"recurrence": zoneless}), NOW) is None
    assert next_occurrence(plan.schedule.model_copy(update={"anchor": None}), NOW) is None
    assert next_occurrence(Schedule(), NOW) is None


def test_a_fingerprint_is_stable_across_releases_for_non_ascii_bodies() -> None:
    # An Idempotency-Key stored before an upgrade must still match the same request after
    # it: the digest of the canonical JSON (UTF-8, not \\u escapes) is pinned.
    assert request_fingerprint({"to": "+1", "body": "caf\u00e9 \u2603"}) == (
        "3f7408c6659faec081bc116af5e4961cc79271248a4dd6510814579a7809e739"
    )


def test_outbox_records_cannot_be_altered() -> None:
    ref = DueRef(message_id="m", to="+1", from_="+2", due_at=datetime(2026, 1, 1, tzinfo=UTC))
    page = DuePage(items=[ref], next_position=None)
    for value, field in ((ref, "due_at"), (page, "next_position")):
        with pytest.raises(AttributeError):
            setattr(value, field, "changed")


def test_moving_a_series_message_reads_its_wall_time_in_the_series_zone() -> None:
    # GIVEN a series whose zone is only on its recurrence
    rule = {"frequency": "daily", "count": 3, "time_zone": "Europe/Paris"}
    schedule = Schedule.model_validate({"recurrence": rule})
    # WHEN its pending message is moved to 09:00 without an offset
    edit = plan_edit(EditRequest(send_at="2025-06-12T09:00"), schedule, NOW)
    # THEN 09:00 is Paris time
    assert edit.due == datetime(2025, 6, 12, 7, 0, tzinfo=UTC)
    # and a message with neither zone must give an offset
    with pytest.raises(ValidationFailed, match="needs an offset"):
        plan_edit(EditRequest(send_at="2025-06-12T09:00"), Schedule(), NOW)


def test_the_log_shows_a_schedule_only_for_a_series_or_quiet_hours() -> None:
    # GIVEN a plain one-off send, a send with quiet hours, a series and a later message
    # of a series
    quiet = Schedule(quiet_hours={"start": "21:00", "end": "08:00", "time_zone": "UTC"})
    series = Schedule(recurrence={"frequency": "daily", "count": 2, "time_zone": "UTC"})
    later = Schedule(series_id="s" * 32, occurrence=2)
    # WHEN the log asks what to show of each
    # THEN the plain send shows nothing, the others what POST /messages answered
    assert Schedule().shown() is None
    assert (
        quiet.shown()
        == quiet.public()
        == {
            "quiet_hours": {"start": "21:00", "end": "08:00", "time_zone": "UTC"},
            "occurrence": 1,
        }
    )
    assert series.shown() == series.public()
    assert later.shown() == {"series_id": "s" * 32, "occurrence": 2}
