"""The abuse-limit and cursor-key settings: parsed with clear errors, wired into limits."""

from __future__ import annotations

from datetime import timedelta

import pytest

from plumsms.bootstrap import reply_limits
from plumsms.config import Settings
from plumsms.domain.errors import ConfigurationError
from plumsms.secrets import SecretValues

BASE = {"TABLE_NAME": "messages", "SMS_NUMBERS": "+12435678910,+447400123456"}


def test_defaults_are_the_documented_ones() -> None:
    limits = reply_limits(Settings.from_env(BASE))
    assert limits.replies_per_hour == 20
    assert limits.forwards_per_hour == 60
    assert limits.repeat_window == timedelta(seconds=300)
    assert limits.countries == {"+1", "+44"}
    assert limits.own_numbers == {"+12435678910", "+447400123456"}


def test_settings_change_the_limits() -> None:
    env = BASE | {
        "REPLY_LIMIT_PER_HOUR": "5",
        "FORWARD_LIMIT_PER_HOUR": "7",
        "REPEAT_WINDOW_SECONDS": "0",
        "REPLY_COUNTRIES": "us, +44,*",
    }
    limits = reply_limits(Settings.from_env(env))
    assert (limits.replies_per_hour, limits.forwards_per_hour) == (5, 7)
    assert limits.repeat_window == timedelta(0)
    assert limits.countries == {"US", "+44", "*"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REPLY_COUNTRIES", "USA"),
        ("REPLY_COUNTRIES", "+1x"),
        ("REPLY_LIMIT_PER_HOUR", "-1"),
        ("REPEAT_WINDOW_SECONDS", "lots"),
        ("CURSOR_KEY", "short"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env(BASE | {name: value})


def test_the_cursor_key_is_its_own_secret() -> None:
    with_key = SecretValues(
        Settings.from_env(BASE | {"CURSOR_KEY": "c" * 32, "WEBHOOK_KEY": "w" * 32})
    )
    assert with_key.cursor_key() == "c" * 32
    without = SecretValues(Settings.from_env(BASE | {"WEBHOOK_KEY": "w" * 32}))
    with pytest.raises(ConfigurationError, match="CURSOR_KEY"):
        without.cursor_key()
