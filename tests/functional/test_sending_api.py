"""MessagesApiFunction's sending routes, invoked with API Gateway proxy events against the
embedded DynamoDB server: send, schedule, recur, quiet hours, refusals, idempotency,
cancel, move and edit; and STOP suppressing pending sends through InboundSmsFunction."""

from __future__ import annotations

import json
import uuid
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from plumsms.adapters import dispatch_trigger
from plumsms.adapters.dispatch_trigger import register_in_process
from plumsms.adapters.dynamodb import keys
from plumsms.adapters.events import DETAIL_TYPE, RecordingPublisher
from plumsms.usecases.sending import SendingService
from plumsms_local.gateway import proxy_event
from plumsms_local.lambda_runtime import LocalFunction

SMS_NUMBER = "+12435678910"
NY_RECIPIENT = "+12125551234"
API_BASE = "/messages"


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


class Api:
    """Calls MessagesApiFunction as API Gateway would."""

    def __init__(self, function: LocalFunction) -> None:
        self.function = function

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Answer:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        all_headers = {"content-type": "application/json", **(headers or {})}
        resource, params = path, None
        if path.startswith(API_BASE + "/"):
            resource, params = "/messages/{id}", {"id": path.rsplit("/", 1)[1]}
        event = proxy_event(
            method, path, all_headers, data, resource=resource, path_parameters=params
        )
        result = self.function.invoke(event)
        out_headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
        for name, values in (result.get("multiValueHeaders") or {}).items():
            out_headers[name.lower()] = ", ".join(str(v) for v in values)
        text = result.get("body") or "{}"
        return Answer(result["statusCode"], json.loads(text), out_headers)

    def send(self, headers: dict[str, str] | None = None, **fields: Any) -> Answer:
        payload = {"to": NY_RECIPIENT, "from": SMS_NUMBER, "body": "Hello"} | fields
        return self.call(
            "POST", API_BASE, {k: v for k, v in payload.items() if v is not None}, headers
        )


@pytest.fixture
def wakeups(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Send-now wake-ups of the dispatcher, recorded by an in-process hook."""
    name = f"ScheduledSendFunction-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("SCHEDULED_SEND_FUNCTION", name)
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(dispatch_trigger, "_hooks", {})  # this test's hooks only
    register_in_process(name, calls.append)
    return calls


@pytest.fixture
def api(load_function: Callable[[str], LocalFunction], wakeups: list[Any]) -> Api:
    return Api(load_function("messages_api"))


def stored(ddb: Any, table: str, message_id: str) -> dict[str, Any]:
    item = ddb.get_item(
        TableName=table, Key={"PK": {"S": f"MSG#{message_id}"}, "SK": {"S": "MSG"}}
    ).get("Item")
    assert item is not None
    return dict(item)


def messages_in(ddb: Any, table: str) -> list[dict[str, Any]]:
    # Test-only inspection of the whole table; the product never scans.
    return [i for i in ddb.scan(TableName=table)["Items"] if i["SK"]["S"] == "MSG"]


def iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


# -- creating ---------------------------------------------------------------------------


def test_send_now_is_stored_due_now_and_wakes_the_dispatcher(
    api: Api, wakeups: list[Any], ddb: Any, table_name: str
) -> None:
    # GIVEN a send request without send_at
    before = datetime.now(UTC)
    # WHEN it is posted
    answer = api.send(body="Hello \u2600")
    # THEN 201 with the id, status scheduled, the due time (now) and its segments
    assert answer.status == 201, answer.body
    body = answer.body
    assert body["status"] == "scheduled"
    assert body["to"] == NY_RECIPIENT and body["from"] == SMS_NUMBER
    assert (body["segments"], body["encoding"]) == (1, "UCS-2")
    due = datetime.fromisoformat(body["send_at"])
    assert before - timedelta(seconds=1) <= due <= datetime.now(UTC)
    assert answer.headers["location"] == f"messages/{body['id']}"
    # AND the dispatcher was woken once, and the message sits in the Due index
    assert len(wakeups) == 1
    item = stored(ddb, table_name, body["id"])
    assert item["status"]["S"] == "scheduled"
    assert item["due_pk"]["S"] == keys.sharded("DUE", body["id"])
    assert [h["M"]["status"]["S"] for h in item["history"]["L"]] == ["scheduled"]


def test_a_scheduled_send_is_due_at_its_time_in_utc_and_does_not_wake_anyone(
    api: Api, wakeups: list[Any]
) -> None:
    # GIVEN 09:00 tomorrow in Paris
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    # WHEN it is posted with that time zone
    answer = api.send(send_at=f"{tomorrow}T09:00", time_zone="Europe/Paris")
    # THEN it is due at 07:00 or 08:00 UTC (summer/winter) and the dispatcher sleeps on
    assert answer.status == 201, answer.body
    due = datetime.fromisoformat(answer.body["send_at"])
    assert due.astimezone(UTC).hour in (7, 8)
    assert due.astimezone(UTC).date() == tomorrow
    assert wakeups == []


def test_a_recurring_send_carries_its_schedule(api: Api) -> None:
    answer = api.send(
        send_at=iso(datetime.now(UTC) + timedelta(hours=1)),
        recurrence={"cron": "0 9 * * MON-FRI", "count": 5, "time_zone": "America/New_York"},
        quiet_hours={"start": "21:00", "end": "08:00"},
    )
    assert answer.status == 201, answer.body
    schedule = answer.body["schedule"]
    assert schedule["recurrence"]["cron"] == "0 9 * * MON-FRI"
    assert schedule["quiet_hours"] == {
        "start": "21:00",
        "end": "08:00",
        "time_zone": "America/New_York",
    }
    assert schedule["occurrence"] == 1
    assert schedule["series_id"] == answer.body["id"]
    local = datetime.fromisoformat(answer.body["send_at"]).astimezone(
        zoneinfo.ZoneInfo("America/New_York")
    )
    assert (local.hour, local.minute) == (9, 0)
    assert local.weekday() < 5


def test_the_log_shows_a_sends_series_and_quiet_hours(api: Api) -> None:
    # GIVEN a recurring send with quiet hours, and a plain one-off send
    recurring = api.send(
        send_at=iso(datetime.now(UTC) + timedelta(hours=1)),
        recurrence={"frequency": "daily", "count": 3, "time_zone": "America/New_York"},
        quiet_hours={"start": "21:00", "end": "08:00"},
    ).body
    plain = api.send(send_at=iso(datetime.now(UTC) + timedelta(hours=2))).body
    # WHEN each is read back from the log (GET /messages/{id})
    shown = api.call("GET", f"{API_BASE}/{recurring['id']}")
    shown_plain = api.call("GET", f"{API_BASE}/{plain['id']}")
    # THEN the recurring one shows its rule, its place in the series and its quiet
    # hours, as POST answered them; the plain one shows no schedule at all
    assert shown.status == 200, shown.body
    assert shown.body["schedule"] == recurring["schedule"]
    assert shown.body["schedule"]["recurrence"]["frequency"] == "daily"
    assert shown.body["schedule"]["series_id"] == recurring["id"]
    assert shown.body["schedule"]["quiet_hours"]["start"] == "21:00"
    assert shown_plain.status == 200 and "schedule" not in shown_plain.body


def test_quiet_hours_move_a_send_now_to_the_windows_end(api: Api, wakeups: list[Any]) -> None:
    # GIVEN quiet hours (UTC) from five minutes ago to two hours ahead
    now = datetime.now(UTC)
    start = (now - timedelta(minutes=5)).strftime("%H:%M")
    end = (now + timedelta(hours=2)).strftime("%H:%M")
    # WHEN a send-now is posted with them
    answer = api.send(quiet_hours={"start": start, "end": end, "time_zone": "UTC"})
    # THEN it waits for the window's end and nobody is woken
    assert answer.status == 201, answer.body
    due = datetime.fromisoformat(answer.body["send_at"])
    assert due.strftime("%H:%M") == end
    assert due > now + timedelta(hours=1)
    assert wakeups == []


@pytest.mark.parametrize(
    ("fields", "field", "rule"),
    [
        ({"to": "555"}, "to", "phone number"),
        ({"to": "not a number"}, "to", "phone number"),
        ({"from": "+12025550123"}, "from", "SMS numbers"),
        ({"body": ""}, "body", "empty"),
        ({"body": "x" * 1601}, "body", "1600"),
        ({"body": "my card 4111-1111-1111-1111 exp 12/29"}, "body", "card number"),
        ({"send_at": "2001-01-01T00:00:00Z"}, "send_at", "past"),
        ({"send_at": "2099-01-01T00:00:00Z"}, "send_at", "one year"),
        ({"send_at": "next tuesday"}, "send_at", "ISO 8601"),
        ({"time_zone": "Moon/Base"}, "time_zone", "IANA"),
        ({"recurrence": {"frequency": "daily"}}, "recurrence", "end"),
        (
            {"to": "+19998881234", "quiet_hours": {"start": "21:00", "end": "08:00"}},
            "quiet_hours.time_zone",
            "single time zone",
        ),
        ({"priority": "high"}, "priority", "not permitted"),
    ],
)
def test_bad_requests_get_400_naming_the_field_and_rule(
    api: Api, ddb: Any, table_name: str, fields: dict[str, Any], field: str, rule: str
) -> None:
    # GIVEN a request that breaks one rule
    # WHEN it is posted
    answer = api.send(**fields)
    # THEN 400 says which field and why, and nothing is stored
    assert answer.status == 400, answer.body
    assert answer.body["field"] == field
    assert rule in answer.body["rule"], answer.body
    assert messages_in(ddb, table_name) == []


@pytest.mark.parametrize(
    ("raw", "headers"),
    [
        (b"{not json", {}),
        (b"[1, 2]", {}),
        (b'{"to": "+12125551234"}', {"content-type": "text/plain"}),
    ],
)
def test_bodies_that_are_not_json_objects_get_400(
    api: Api, raw: bytes, headers: dict[str, str]
) -> None:
    answer = api.call("POST", API_BASE, raw=raw, headers=headers)
    assert answer.status == 400
    assert answer.body["field"] in {"body", "content-type"}


def test_a_recipient_who_opted_out_is_refused(
    api: Api, load_function: Callable[[str], LocalFunction], event: Any
) -> None:
    # GIVEN the recipient texted STOP (through the inbound webhook)
    inbound = load_function("inbound_sms")
    stop = event(
        "inbound_sms",
        form={
            "sms_message_id": uuid.uuid4().hex,
            "to": "2435678910",
            "from": NY_RECIPIENT.lstrip("+"),
            "body": "STOP",
        },
    )
    assert inbound.invoke(stop)["statusCode"] == 200
    # WHEN a message to them is posted
    answer = api.send()
    # THEN it is refused, saying they opted out
    assert answer.status == 400
    assert answer.body["field"] == "to"
    assert "opted out" in answer.body["rule"]


# -- idempotency ------------------------------------------------------------------------


def test_the_same_idempotency_key_and_body_give_the_same_answer_and_one_message(
    api: Api, ddb: Any, table_name: str, wakeups: list[Any]
) -> None:
    key = {"Idempotency-Key": f"order-{uuid.uuid4()}"}
    # GIVEN a request sent twice with the same key (a client retry)
    first = api.send(headers=key, body="Your order shipped")
    second = api.send(
        headers={"idempotency-key": key["Idempotency-Key"]}, body="Your order shipped"
    )
    # THEN both get 201 with the same body, the second marked as a replay
    assert first.status == second.status == 201
    assert second.body == first.body
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    # AND one message exists, and the dispatcher was woken once
    assert [i["id"]["S"] for i in messages_in(ddb, table_name)] == [first.body["id"]]
    assert len(wakeups) == 1


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """The sending service's clock, set by the test (``clock[0]``), instead of waiting."""
    now = [datetime.now(UTC)]

    class ClockedService(SendingService):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs, clock=lambda: now[0])

    monkeypatch.setattr("plumsms.entrypoints.sending_api.SendingService", ClockedService)
    return now


def test_a_replay_is_answered_even_after_its_send_at_has_passed(
    clock: list[datetime],
    load_function: Callable[[str], LocalFunction],
    wakeups: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("plumsms.domain.scheduling.PAST_GRACE", timedelta(0))
    api = Api(load_function("messages_api"))  # loaded with the clock above
    key = {"Idempotency-Key": uuid.uuid4().hex}
    send_at = iso(clock[0] + timedelta(seconds=1))
    first = api.send(headers=key, send_at=send_at)
    assert first.status == 201, first.body
    # GIVEN the requested time passes before the client retries
    clock[0] += timedelta(seconds=1.5)
    # WHEN it retries with the same key and body
    second = api.send(headers=key, send_at=send_at)
    # THEN it gets the first answer, where a new request would be refused as past
    assert second.status == 201
    assert second.headers.get("idempotent-replayed") == "true"
    assert second.body == first.body
    fresh = api.send(headers={"Idempotency-Key": uuid.uuid4().hex}, send_at=send_at)
    assert fresh.status == 400
    assert fresh.body["rule"] == "is in the past"


def test_the_same_key_with_a_different_body_is_a_conflict(
    api: Api, ddb: Any, table_name: str
) -> None:
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = api.send(headers=key, body="one")
    second = api.send(headers=key, body="two")
    assert first.status == 201
    assert second.status == 409
    assert "different request" in second.body["message"]
    assert len(messages_in(ddb, table_name)) == 1


def test_a_bad_idempotency_key_is_refused(api: Api) -> None:
    answer = api.send(headers={"Idempotency-Key": "x" * 300})
    assert answer.status == 400
    assert answer.body["field"] == "Idempotency-Key"


# -- cancel, move, edit ------------------------------------------------------------------


def later(api: Api, hours: int = 2, **fields: Any) -> dict[str, Any]:
    answer = api.send(send_at=iso(datetime.now(UTC) + timedelta(hours=hours)), **fields)
    assert answer.status == 201, answer.body
    return answer.body


def claim_it(ddb: Any, table: str, message_id: str) -> None:
    """Play a dispatcher that claimed the message (it has gone to Plum)."""
    ddb.update_item(
        TableName=table,
        Key={"PK": {"S": f"MSG#{message_id}"}, "SK": {"S": "MSG"}},
        UpdateExpression="SET #s = :s, status_pk = :spk REMOVE due_pk, due_sk",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={
            ":s": {"S": "sending"},
            ":spk": {"S": keys.sharded("sending", message_id)},
        },
    )


def test_delete_cancels_a_pending_message(api: Api, ddb: Any, table_name: str) -> None:
    message = later(api)
    # WHEN it is cancelled (twice)
    first = api.call("DELETE", f"/messages/{message['id']}")
    again = api.call("DELETE", f"/messages/{message['id']}")
    # THEN it is cancelled, out of the Due index, and the repeat is harmless
    assert first.status == again.status == 200
    assert first.body["status"] == "cancelled"
    assert [h["status"] for h in first.body["history"]] == ["scheduled", "cancelled"]
    item = stored(ddb, table_name, message["id"])
    assert "due_pk" not in item and "due_sk" not in item
    assert item["status_pk"]["S"] == keys.sharded("cancelled", message["id"])


def test_delete_after_the_message_went_to_plum_is_a_conflict(
    api: Api, ddb: Any, table_name: str
) -> None:
    message = later(api)
    claim_it(ddb, table_name, message["id"])
    answer = api.call("DELETE", f"/messages/{message['id']}")
    assert answer.status == 409
    assert "sending" in answer.body["message"]


def test_unknown_messages_are_404(api: Api) -> None:
    assert api.call("DELETE", f"/messages/{uuid.uuid4().hex}").status == 404
    assert api.call("DELETE", "/messages/not-an-id").status == 404
    assert api.call("PATCH", f"/messages/{uuid.uuid4().hex}", {"body": "x"}).status == 404


def test_patch_moves_the_due_time_and_the_due_index(api: Api, ddb: Any, table_name: str) -> None:
    message = later(api)
    new_time = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    # WHEN the message is moved
    answer = api.call("PATCH", f"/messages/{message['id']}", {"send_at": iso(new_time)})
    # THEN its send_at and its place in the Due index follow
    assert answer.status == 200, answer.body
    assert datetime.fromisoformat(answer.body["send_at"]) == new_time
    item = stored(ddb, table_name, message["id"])
    assert item["due_sk"]["S"].startswith(new_time.strftime("%Y-%m-%dT%H:%M:%S"))


def test_patch_to_now_wakes_the_dispatcher(api: Api, wakeups: list[Any]) -> None:
    message = later(api)
    answer = api.call("PATCH", f"/messages/{message['id']}", {"send_at": iso(datetime.now(UTC))})
    assert answer.status == 200
    assert len(wakeups) == 1


def test_patch_edits_the_body_and_its_segments(api: Api) -> None:
    message = later(api)
    answer = api.call("PATCH", f"/messages/{message['id']}", {"body": "x" * 200})
    assert answer.status == 200
    assert answer.body["body"] == "x" * 200
    assert (answer.body["segments"], answer.body["encoding"]) == (2, "GSM-7")
    assert answer.body["send_at"] == message["send_at"]


def test_patch_refuses_card_numbers_and_claimed_messages(
    api: Api, ddb: Any, table_name: str
) -> None:
    message = later(api)
    card = api.call("PATCH", f"/messages/{message['id']}", {"body": "5555555555554444"})
    assert card.status == 400
    assert card.body["field"] == "body"
    claim_it(ddb, table_name, message["id"])
    late = api.call("PATCH", f"/messages/{message['id']}", {"body": "too late"})
    assert late.status == 409


def test_patch_respects_the_messages_quiet_hours(api: Api) -> None:
    message = later(
        api, quiet_hours={"start": "00:00", "end": "06:00", "time_zone": "Europe/Paris"}
    )
    day = (datetime.now(UTC) + timedelta(days=3)).date()
    answer = api.call(
        "PATCH",
        f"/messages/{message['id']}",
        {"send_at": f"{day}T02:00", "time_zone": "Europe/Paris"},
    )
    assert answer.status == 200, answer.body
    local = datetime.fromisoformat(answer.body["send_at"]).astimezone(
        zoneinfo.ZoneInfo("Europe/Paris")
    )
    assert (local.date(), local.hour, local.minute) == (day, 6, 0)


# -- opt-out closes the loop ----------------------------------------------------------------


def test_stop_suppresses_the_numbers_pending_sends_only(
    api: Api, load_function: Callable[[str], LocalFunction], event: Any, ddb: Any, table_name: str
) -> None:
    # GIVEN two pending messages to a number, one to another number, one already cancelled
    pending = [later(api), later(api, hours=5)]
    other = later(api, to="+13105551234")
    cancelled = later(api)
    api.call("DELETE", f"/messages/{cancelled['id']}")
    # WHEN the number texts STOP
    inbound = load_function("inbound_sms")
    stop = event(
        "inbound_sms",
        form={
            "sms_message_id": uuid.uuid4().hex,
            "to": "2435678910",
            "from": NY_RECIPIENT.lstrip("+"),
            "body": "Stop",
        },
    )
    assert inbound.invoke(stop)["statusCode"] == 200
    # THEN its pending messages are suppressed and out of the Due index; others untouched
    for message in pending:
        item = stored(ddb, table_name, message["id"])
        assert item["status"]["S"] == "suppressed"
        assert "due_sk" not in item
        assert item["error"]["S"] == "recipient opted out"
    assert stored(ddb, table_name, other["id"])["status"]["S"] == "scheduled"
    assert stored(ddb, table_name, cancelled["id"])["status"]["S"] == "cancelled"


# -- status change events ---------------------------------------------------------------------


def published(function: LocalFunction) -> list[dict[str, Any]]:
    """The change events a function published (no EVENT_BUS_NAME: its in-memory recorder)."""
    publisher = function.module().function.basics.publisher
    assert isinstance(publisher, RecordingPublisher)
    return [e["detail"] for e in publisher.events if e["detail-type"] == DETAIL_TYPE]


def test_a_cancel_is_published_once(api: Api) -> None:
    # GIVEN a pending message WHEN it is cancelled twice
    message = later(api)
    api.call("DELETE", f"/messages/{message['id']}")
    api.call("DELETE", f"/messages/{message['id']}")
    # THEN one change event went out, as the status bus's rules see it
    [detail] = published(api.function)
    assert detail["version"] == "1"
    assert (detail["message_id"], detail["previous_status"], detail["status"]) == (
        message["id"],
        "scheduled",
        "cancelled",
    )
    assert (detail["source"], detail["final"], detail["to"]) == ("api", True, NY_RECIPIENT)


def test_the_suppressions_of_a_stop_are_published(
    api: Api, load_function: Callable[[str], LocalFunction], event: Any
) -> None:
    # GIVEN two pending messages to a number WHEN it texts STOP
    pending = [later(api), later(api, hours=5)]
    inbound = load_function("inbound_sms")
    stop = event(
        "inbound_sms",
        form={
            "sms_message_id": uuid.uuid4().hex,
            "to": "2435678910",
            "from": NY_RECIPIENT.lstrip("+"),
            "body": "STOP",
        },
    )
    assert inbound.invoke(stop)["statusCode"] == 200
    # THEN each suppression went out as a change event from the opt-out
    details = published(inbound)
    assert sorted(d["message_id"] for d in details) == sorted(m["id"] for m in pending)
    assert {(d["previous_status"], d["status"], d["source"]) for d in details} == {
        ("scheduled", "suppressed", "opt-out")
    }


@pytest.mark.parametrize(
    "body",
    [
        "STOP \U0001f6d1",
        "stop texting me",
        "\u200b\uff33\uff34\uff2f\uff30",
        "\u0405\u0422\u041e\u0420",
        "Opt out please",
        "REVOKE",
        '"unsubscribe."',
    ],
)
def test_every_way_of_saying_stop_suppresses_pending_sends(
    api: Api,
    load_function: Callable[[str], LocalFunction],
    event: Any,
    ddb: Any,
    table_name: str,
    body: str,
) -> None:
    # GIVEN a pending message to a number
    pending = later(api)
    # WHEN the number says stop in one of the many ways people do
    inbound = load_function("inbound_sms")
    fields = {"sms_message_id": uuid.uuid4().hex, "to": "2435678910", "body": body}
    answer = inbound.invoke(event("inbound_sms", form=fields | {"from": NY_RECIPIENT[1:]}))
    # THEN nothing is answered, the number is opted out and the pending send suppressed
    assert answer["statusCode"] == 200
    assert "<sms_message" not in answer["body"]
    assert stored(ddb, table_name, pending["id"])["status"]["S"] == "suppressed"
    assert api.send().status == 400


def test_a_sentence_that_mentions_stop_suppresses_nothing(
    api: Api, load_function: Callable[[str], LocalFunction], event: Any, ddb: Any, table_name: str
) -> None:
    pending = later(api)
    inbound = load_function("inbound_sms")
    fields = {
        "sms_message_id": uuid.uuid4().hex,
        "to": "2435678910",
        "body": "Don't stop the music",
    }
    answer = inbound.invoke(event("inbound_sms", form=fields | {"from": NY_RECIPIENT[1:]}))
    assert answer["statusCode"] == 200
    assert stored(ddb, table_name, pending["id"])["status"]["S"] == "scheduled"
    # and the text is flagged for a person in the log
    flagged = stored(ddb, table_name, fields["sms_message_id"])
    assert flagged["unanswered"]["S"] == "opt_out_review"


def test_a_send_to_one_of_the_accounts_own_numbers_is_refused(
    api: Api, ddb: Any, table_name: str
) -> None:
    answer = api.send(to=SMS_NUMBER)
    assert answer.status == 400
    assert answer.body["field"] == "to"
    assert "own SMS numbers" in answer.body["rule"]
    assert messages_in(ddb, table_name) == []


# -- the API document ------------------------------------------------------------------------


def test_the_document_gives_the_write_routes_bodies_headers_and_real_answers(api: Api) -> None:
    # WHEN the OpenAPI document is fetched from MessagesApiFunction
    doc = api.call("GET", "/openapi.json").body
    schemas = doc["components"]["schemas"]
    post = doc["paths"]["/messages"]["post"]
    patch = doc["paths"]["/messages/{message_id}"]["patch"]
    delete = doc["paths"]["/messages/{message_id}"]["delete"]
    # THEN POST takes a SendRequest body and the Idempotency-Key header, answering 201
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert set(schemas[body["$ref"].rsplit("/", 1)[1]]["required"]) == {"to", "from", "body"}
    assert {(p["in"], p["name"].lower()) for p in post["parameters"]} == {
        ("header", "idempotency-key")
    }
    assert set(post["responses"]) == {"201", "400", "401", "409"}
    # AND PATCH takes the edit body; every route documents its errors with the real shape
    assert (
        "send_at"
        in schemas[
            patch["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        ]["properties"]
    )
    assert set(patch["responses"]) == {"200", "400", "401", "404", "409"}
    assert set(delete["responses"]) == {"200", "401", "404", "409"}
    error = post["responses"]["400"]["content"]["application/json"]["schema"]["$ref"]
    assert set(schemas[error.rsplit("/", 1)[1]]["properties"]) == {"message", "field", "rule"}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"to": NY_RECIPIENT, "from": SMS_NUMBER}, "body"),
        ({"to": NY_RECIPIENT, "from": SMS_NUMBER, "body": "x", "send_at": 5}, "send_at"),
        (
            {
                "to": NY_RECIPIENT,
                "from": SMS_NUMBER,
                "body": "x",
                "recurrence": {"frequency": "hourly"},
            },
            "recurrence.frequency",
        ),
    ],
)
def test_powertools_validation_errors_keep_the_api_error_shape(
    api: Api, payload: dict[str, Any], field: str
) -> None:
    # WHEN a send breaks its documented schema
    answer = api.call("POST", API_BASE, payload)
    # THEN the answer is this API's 400, naming the field as the caller sent it
    assert answer.status == 400, answer.body
    assert set(answer.body) == {"message", "field", "rule"}
    assert answer.body["field"] == field


def test_a_recipient_plum_cannot_send_to_is_a_400_naming_to(api: Api) -> None:
    # WHEN a send goes to a French mobile number
    answer = api.send(to="+33612345678")
    # THEN it is refused up front, naming the field and the rule
    assert answer.status == 400, answer.body
    assert answer.body["field"] == "to"
    assert "+1 numbers only" in answer.body["rule"]
