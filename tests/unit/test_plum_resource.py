"""The SMS message resource and the query models of the Plum port."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from plumsms.domain.errors import ValidationFailed
from plumsms.domain.models import parse_sms_message_id
from plumsms.domain.plum import (
    PlumMessageQuery,
    PlumPageQuery,
    PlumSmsResource,
)

ID = "0123456789abcdef0123456789abcdef"


def _record(**changes: object) -> dict[str, object]:
    record: dict[str, object] = {
        "sms_message_id": ID,
        "to": "19998881234",
        "from": "2435678910",
        "body": "Hello",
        "request_timestamp": 1_700_000_000,
        "result_url": "https://example.com/plum/status?ref=abc",
        "status": "queued",
    }
    record.update(changes)
    return record


def test_resource_reads_plums_fields_with_from_alias() -> None:
    resource = PlumSmsResource.model_validate(_record())

    assert resource.from_ == "2435678910"
    assert resource.model_dump()["from"] == "2435678910"
    assert resource.request_timestamp == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC).timestamp()


def test_resource_accepts_xml_style_strings_and_json_numbers() -> None:
    resource = PlumSmsResource.model_validate(
        _record(to=19998881234, request_timestamp="1700000000", result_url="")
    )

    assert resource.to == "19998881234"
    assert resource.request_timestamp == 1_700_000_000
    assert resource.result_url is None


def test_resource_lowercases_the_id_and_keeps_unknown_statuses() -> None:
    resource = PlumSmsResource.model_validate(
        _record(sms_message_id=ID.upper(), status="carrier_pending")
    )

    assert resource.sms_message_id == ID
    assert resource.status == "carrier_pending"


def test_resource_ignores_fields_plum_may_add() -> None:
    resource = PlumSmsResource.model_validate(_record(segments=2))

    assert not hasattr(resource, "segments")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sms_message_id", "abc"),
        ("sms_message_id", "g" * 32),
        ("request_timestamp", -1),
        ("request_timestamp", "soon"),
        ("request_timestamp", 10**20),
        ("status", ""),
        ("to", ""),
    ],
)
def test_resource_rejects_bad_fields(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        PlumSmsResource.model_validate(_record(**{field: value}))

    assert caught.value.errors()[0]["loc"][0] == field


@pytest.mark.parametrize("field", ["sms_message_id", "to", "from", "body", "request_timestamp"])
def test_resource_requires_plums_fields(field: str) -> None:
    record = _record()
    del record[field]

    with pytest.raises(ValidationError):
        PlumSmsResource.model_validate(record)


def test_parse_sms_message_id_names_the_field() -> None:
    assert parse_sms_message_id(f" {ID.upper()} ") == ID
    with pytest.raises(ValidationFailed) as caught:
        parse_sms_message_id("nope")
    assert caught.value.field == "sms_message_id"


def test_page_query_defaults_and_bounds() -> None:
    query = PlumPageQuery()
    assert (query.offset, query.limit, query.sort) == (0, 50, "desc")

    for limit in (49, 1001):
        with pytest.raises(ValidationError):
            PlumPageQuery(limit=limit)
    with pytest.raises(ValidationError):
        PlumPageQuery(offset=-1)


def test_page_query_wants_aware_ordered_window() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)

    with pytest.raises(ValidationError):
        PlumPageQuery(start=datetime(2024, 1, 1))  # naive: refused
    with pytest.raises(ValidationError, match="end must not be before start"):
        PlumPageQuery(start=start, end=start - timedelta(seconds=1))
    query = PlumPageQuery(start=start, end=start.astimezone(timezone(timedelta(hours=-5))))
    assert query.end == start


def test_message_query_number_side_rules() -> None:
    assert PlumMessageQuery(number="(999) 888-1234").number == "+19998881234"
    assert PlumMessageQuery(type="inbound", number="+19998881234", number_side="customer")

    with pytest.raises(ValidationError, match="number_side is required"):
        PlumMessageQuery(type="outbound", number="+19998881234")
    with pytest.raises(ValidationError, match="number_side needs"):
        PlumMessageQuery(number="+19998881234", number_side="account")  # type all
    with pytest.raises(ValidationError, match="number_side needs"):
        PlumMessageQuery(type="inbound", number_side="account")
    with pytest.raises(ValidationError):
        PlumMessageQuery(type="reply")


def test_a_timestamp_up_to_the_last_second_of_9999_is_read() -> None:
    last = 253_402_300_799  # 9999-12-31T23:59:59Z
    resource = PlumSmsResource.model_validate(_record(request_timestamp=last))
    assert datetime.fromtimestamp(resource.request_timestamp, tz=UTC) == datetime(
        9999, 12, 31, 23, 59, 59, tzinfo=UTC
    )
    assert PlumSmsResource.model_validate(_record(request_timestamp=0)).request_timestamp == 0
    with pytest.raises(ValidationError, match="request_timestamp"):
        PlumSmsResource.model_validate(_record(request_timestamp=last + 1))


def test_page_sizes_50_and_1000_and_offset_0_are_accepted() -> None:
    assert PlumPageQuery(limit=50).limit == 50
    assert PlumPageQuery(limit=1000).limit == 1000
    assert PlumPageQuery(offset=0).offset == 0


def test_a_window_may_be_a_single_instant() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    assert PlumPageQuery(start=start, end=start).end == start
    assert PlumPageQuery(end=start).start is None


def test_resources_and_queries_cannot_be_altered() -> None:
    resource = PlumSmsResource.model_validate(_record())
    for record, field in ((resource, "status"), (PlumPageQuery(), "sort")):
        with pytest.raises(ValidationError, match="frozen"):
            setattr(record, field, "asc")


def test_a_resource_can_be_built_by_field_name_and_dumps_plums_names() -> None:
    resource = PlumSmsResource(
        sms_message_id=ID,
        to="19998881234",
        from_="2435678910",
        body="Hello",
        request_timestamp=1,
        status="queued",
    )
    dumped = resource.model_dump()
    assert dumped["from"] == "2435678910" and "from_" not in dumped


def test_numbers_and_status_are_trimmed_and_must_not_be_blank() -> None:
    resource = PlumSmsResource.model_validate(
        _record(to=" 19998881234\n", **{"from": "\t2435678910 "}, status=" sent ")
    )
    assert (resource.to, resource.from_, resource.status) == ("19998881234", "2435678910", "sent")
    for field in ("to", "from", "status"):
        with pytest.raises(ValidationError, match=field.rstrip("_")):
            PlumSmsResource.model_validate(_record(**{field: "   "}))


def test_one_character_numbers_and_status_are_kept_as_plum_wrote_them() -> None:
    resource = PlumSmsResource.model_validate(_record(to="1", **{"from": "2"}, status="x"))
    assert (resource.to, resource.from_, resource.status) == ("1", "2", "x")
