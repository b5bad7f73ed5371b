"""The smsctl pieces people reach for: --version, opt-outs, the scheduled list, replays
said as such, case-insensitive --status, times without a zone, per-command help."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
import urllib3

from plumsms_local import state
from plumsms_local.cli import main
from plumsms_local.gateway import LocalGateway

TOKEN = "cli-extras-token-0123456789"
SMS_NUMBER = "+12435678910"


@pytest.fixture
def gateway(
    function_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalGateway]:
    monkeypatch.setenv(state.STATE_FILE_VARIABLE, str(tmp_path / "none.json"))
    served = LocalGateway(TOKEN, port=0).start()
    yield served
    served.stop()


def smsctl(
    gateway: LocalGateway, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    code = main(["--url", gateway.url, "--token", TOKEN, *argv])
    out = capsys.readouterr()
    lines = [line for line in out.out.splitlines() if not line.startswith('{"level"')]
    return code, "\n".join(lines), out.err


def recipient() -> str:
    return f"+1212555{uuid.uuid4().int % 10000:04d}"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("smsctl ")


@pytest.mark.parametrize("command", ["send", "schedule"])
def test_per_command_help_has_examples(capsys: pytest.CaptureFixture[str], command: str) -> None:
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"smsctl {command} --to" in out


def test_a_replay_says_nothing_new_was_sent(
    gateway: LocalGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    to = recipient()
    argv = ["send", "--to", to, "--from", SMS_NUMBER, "--idempotency-key", uuid.uuid4().hex, "x"]
    code, _, err = smsctl(gateway, capsys, *argv)
    assert code == 0 and "sending now" in err and "replayed" not in err
    code, _, err = smsctl(gateway, capsys, *argv)
    assert code == 0 and "replayed" in err and "nothing new sent" in err


def test_status_filter_is_case_insensitive(
    gateway: LocalGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    to = recipient()
    smsctl(gateway, capsys, "schedule", "--to", to, "--from", SMS_NUMBER, "--in", "1h", "later")
    code, out, err = smsctl(
        gateway, capsys, "--json", "logs", "--number", to, "--status", "SCHEDULED"
    )
    assert code == 0, err
    assert [m["status"] for m in json.loads(out)["items"]] == ["scheduled"]


def test_a_time_without_zone_is_this_computers_and_smsctl_says_so(
    gateway: LocalGateway, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN this computer is in Tokyo (UTC+9, no daylight saving)
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    day = (datetime.now(UTC) + timedelta(days=3)).date()
    code, out, err = smsctl(
        gateway, capsys, "--json", "schedule", "--to", recipient(), "--from", SMS_NUMBER,
        "--at", f"{day}T09:00", "Tokyo morning",
    )  # fmt: skip
    assert code == 0, err
    # THEN 09:00 Tokyo is 00:00 UTC, and smsctl said which zone it assumed
    assert json.loads(out)["send_at"].startswith(f"{day}T00:00:00")
    assert "no zone given, read as local time (Asia/Tokyo)" in err


def test_the_scheduled_list_is_in_send_order_with_send_times(
    gateway: LocalGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    to = recipient()
    for delay, body in (("3h", "third"), ("1h", "first"), ("2h", "second")):
        smsctl(gateway, capsys, "schedule", "--to", to, "--from", SMS_NUMBER, "--in", delay, body)
    code, out, _ = smsctl(gateway, capsys, "scheduled", "--number", to)
    assert code == 0
    rows = out.splitlines()[1:]
    assert [row.split()[-1] for row in rows] == ["first", "second", "third"]
    send_times = [row.split()[0] for row in rows]
    assert send_times == sorted(send_times)


def test_opt_outs_lists_numbers_that_texted_stop(
    gateway: LocalGateway, capsys: pytest.CaptureFixture[str], function_env: dict[str, str]
) -> None:
    # GIVEN a phone that texted STOP (Plum's webhook, as the local gateway serves it)
    phone = recipient()
    answer = urllib3.request(
        "POST",
        f"{gateway.url}plum/inbound?key={function_env['WEBHOOK_KEY']}",
        body=urlencode(
            {
                "sms_message_id": uuid.uuid4().hex,
                "to": SMS_NUMBER[2:],
                "from": phone[1:],
                "body": "STOP",
            }
        ),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert answer.status == 200
    # THEN smsctl opt-outs lists it with the keyword
    code, out, _ = smsctl(gateway, capsys, "opt-outs")
    assert code == 0
    assert out.splitlines()[0].split() == ["NUMBER", "KEYWORD", "AT"]
    assert [phone, "STOP"] in [row.split()[:2] for row in out.splitlines()[1:]]


def test_send_quiet_prints_only_the_id(
    gateway: LocalGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = smsctl(gateway, capsys, "send", "-q", "--to", recipient(), "--from",
                            SMS_NUMBER, "id only")  # fmt: skip
    assert code == 0, err
    assert re.fullmatch(r"[0-9a-f]{32}", out.strip()), out
