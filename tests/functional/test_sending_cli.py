"""smsctl send / schedule / cancel / reschedule against the local gateway (real HTTP)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from plumsms_local.cli import main
from plumsms_local.gateway import LocalGateway

TOKEN = "cli-test-token"
SMS_NUMBER = "+12435678910"
RECIPIENT = "+12125551234"


@pytest.fixture
def gateway(function_env: dict[str, str]) -> Iterator[LocalGateway]:
    server = LocalGateway(TOKEN, port=0).start()
    yield server
    server.stop()


def smsctl(gateway: LocalGateway, capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code = main(["--url", gateway.url, "--token", TOKEN, "--json", *argv])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(cli_output(out.out))


def cli_output(stdout: str) -> str:
    """What smsctl printed: the in-process functions' JSON log lines share stdout here."""
    return "\n".join(line for line in stdout.splitlines() if not line.startswith('{"level"'))


def test_schedule_with_recurrence_and_quiet_hours_then_reschedule_and_cancel(
    gateway: LocalGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    day = (datetime.now(UTC) + timedelta(days=2)).date()
    # GIVEN a weekday series at 09:00 New York with quiet hours, created with smsctl
    created = smsctl(
        gateway, capsys, "schedule", "--to", RECIPIENT, "--from", SMS_NUMBER,
        "--at", f"{day}T09:00", "--tz", "America/New_York", "--cron", "0 9 * * MON-FRI",
        "--count", "3", "--quiet", "21:00-08:00", "Stand-up in 15 minutes",
    )  # fmt: skip
    # THEN the API scheduled it with the rule and the quiet hours
    assert created["status"] == "scheduled"
    assert created["schedule"]["recurrence"]["cron"] == "0 9 * * MON-FRI"
    assert created["schedule"]["quiet_hours"]["time_zone"] == "America/New_York"
    # WHEN it is moved (to 10:00 New York, outside the quiet hours) and its text changed
    moved = smsctl(
        gateway, capsys, "reschedule", created["id"], "--at", f"{day}T15:00Z", "--body", "Moved"
    )
    assert moved["send_at"].startswith(f"{day}T15:00:00")
    assert moved["body"] == "Moved"
    # AND a move into the quiet hours lands at their end (08:00 New York)
    held = smsctl(gateway, capsys, "reschedule", created["id"], "--at", f"{day}T05:00", "--tz",
                  "America/New_York")  # fmt: skip
    eight = datetime.combine(day, time(8, 0), tzinfo=ZoneInfo("America/New_York"))
    assert datetime.fromisoformat(held["send_at"]) == eight
    # WHEN it is cancelled
    cancelled = smsctl(gateway, capsys, "cancel", created["id"])
    assert cancelled["status"] == "cancelled"


def test_send_prints_a_table_without_json(
    gateway: LocalGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "--url",
            gateway.url,
            "--token",
            TOKEN,
            "send",
            "--to",
            RECIPIENT,
            "--from",
            SMS_NUMBER,
            "Hi",
        ]
    )
    out = cli_output(capsys.readouterr().out)
    assert code == 0
    header, row = out.splitlines()[:2]
    assert header.split()[:2] == ["ID", "STATUS"]
    assert row.split()[1] == "scheduled"


def test_the_same_idempotency_key_creates_one_message(
    gateway: LocalGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    key = uuid.uuid4().hex
    args = ["send", "--to", RECIPIENT, "--from", SMS_NUMBER, "--idempotency-key", key, "Once"]
    assert smsctl(gateway, capsys, *args)["id"] == smsctl(gateway, capsys, *args)["id"]


def test_refusals_exit_1_with_the_apis_reason(
    gateway: LocalGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["--url", gateway.url, "--token", TOKEN, "send", "--to", RECIPIENT, "--from", SMS_NUMBER,
         "card 4111 1111 1111 1111"]
    )  # fmt: skip
    assert code == 1
    assert "card number" in capsys.readouterr().err


def test_a_recipient_plum_cannot_send_to_is_refused_naming_the_flag(
    gateway: LocalGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    # WHEN smsctl sends to a UK number
    code = main(
        ["--url", gateway.url, "--token", TOKEN, "send", "--to", "+447400123456",
         "--from", SMS_NUMBER, "Hello"]
    )  # fmt: skip
    # THEN the API refuses it before anything is stored, and smsctl names --to and the rule
    assert code == 1
    err = capsys.readouterr().err
    assert "--to" in err
    assert "countries Plum DEV sends SMS to" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["schedule", "--to", RECIPIENT, "--from", SMS_NUMBER, "no time"],
        ["schedule", "--to", RECIPIENT, "--from", SMS_NUMBER, "--every", "daily", "endless"],
        ["schedule", "--to", RECIPIENT, "--from", SMS_NUMBER, "--at", "x", "--quiet", "9pm", "b"],
        ["schedule", "--to", RECIPIENT, "--from", SMS_NUMBER, "--at", "x", "--count", "2", "b"],
        ["reschedule", "0" * 32],
    ],
)
def test_bad_usage_exits_2_before_calling_the_api(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # The URL points nowhere: bad usage must be caught before any request.
    assert main(["--url", "http://127.0.0.1:9/", *argv]) == 2
    assert capsys.readouterr().err.startswith("smsctl: ")


def test_show_and_scheduled_name_the_series_and_its_quiet_hours(
    gateway: LocalGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    day = (datetime.now(UTC) + timedelta(days=2)).date()
    # GIVEN a weekly series on Mondays and Wednesdays with quiet hours
    created = smsctl(
        gateway, capsys, "schedule", "--to", RECIPIENT, "--from", SMS_NUMBER,
        "--at", f"{day}T09:00", "--tz", "America/New_York", "--every", "weekly",
        "--on", "MO,WE", "--count", "4", "--quiet", "21:00-08:00", "Stand-up",
    )  # fmt: skip
    # WHEN `show` and `scheduled` print it as text
    base = ["--url", gateway.url, "--token", TOKEN]
    assert main([*base, "show", created["id"]]) == 0
    shown = cli_output(capsys.readouterr().out)
    assert main([*base, "scheduled"]) == 0
    listed = cli_output(capsys.readouterr().out)
    # THEN show names the rule, the message's place in the series, the series id and
    # the quiet hours; the scheduled list names the rule
    assert "weekly on MO,WE in America/New_York, 4 times (this is #1)" in shown
    assert [line.split() for line in shown.splitlines() if line.startswith("series")] == [
        ["series", created["id"]]
    ]
    assert "21:00-08:00 America/New_York" in shown
    assert "weekly on MO,WE" in listed
