"""smsctl's simulated phones against the running stack: every "nothing came back" says why
and how to go on, and ``inbox`` names the phone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from plumsms_local.cli import main

pytestmark = pytest.mark.e2e


Smsctl = Callable[..., tuple[int, str]]


@pytest.fixture
def smsctl(
    stack: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Smsctl:
    monkeypatch.setenv("SMS_NUMBERS", stack.sms_number)

    def run(*argv: str) -> tuple[int, str]:
        code = main(
            ["--url", stack.url, "--token", stack.api_token, "--sim-url", stack.sim.base_url, *argv]
        )
        out = capsys.readouterr()
        return code, out.out + out.err

    return run


def test_help_says_the_carrier_answered_and_what_reaches_the_bundle(smsctl: Smsctl) -> None:
    code, out = smsctl("simulate", "--from", "+12125550301", "HELP")
    assert code == 0
    assert "answered by the carrier itself" in out
    assert "smsctl simulate --from +12125550301 --to +12435678910 HOURS" in out


def test_stop_says_how_to_undo_and_later_silence_says_why(smsctl: Smsctl) -> None:
    phone = "+12125550302"
    # WHEN the phone texts STOP (no --to: the account's only number)
    code, out = smsctl("simulate", "--from", phone, "STOP")
    assert code == 0
    assert f"{phone} is now opted out" in out
    assert f"to undo: smsctl simulate --from {phone} --to +12435678910 START" in out
    # AND texts again: nothing comes back, and smsctl says why
    code, out = smsctl("simulate", "--from", phone, "ping")
    assert "the bundle answered 0 SMS" in out
    assert f"why: {phone} opted out earlier" in out and "START" in out
    # WHEN it texts START, the bundle answers again
    smsctl("simulate", "--from", phone, "START")
    code, out = smsctl("simulate", "--from", phone, "ping")
    assert "the bundle answered 1 SMS" in out and "pong ping" in out


def test_inbox_names_the_phone(smsctl: Smsctl) -> None:
    phone = "+12125550303"
    code, out = smsctl("inbox", phone)
    assert code == 0
    assert out.splitlines()[0] == f"inbox of {phone} (simulated phone): empty"
    smsctl("simulate", "--from", phone, "ping")
    code, out = smsctl("inbox", phone)
    assert out.splitlines()[0] == f"inbox of {phone} (simulated phone): 1 message(s)"
    assert "pong ping" in out
