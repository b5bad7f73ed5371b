"""Settings and secret values: what is checked at cold start, and what only where used."""

from __future__ import annotations

import json
from typing import Any

import pytest

from plumsms import secrets as secrets_module
from plumsms.config import Settings
from plumsms.domain.errors import ConfigurationError, PlumNotConfigured
from plumsms.secrets import SecretValues

BASE = {"TABLE_NAME": "messages"}


def test_a_wrong_sms_number_does_not_fail_the_cold_start() -> None:
    # GIVEN SMS_NUMBERS with one good and one wrong entry
    settings = Settings.from_env(BASE | {"SMS_NUMBERS": "+12435678910, not-a-number"})
    # THEN the settings load (inbound, callbacks and the log need no number) ...
    assert settings.sms_numbers == ("+12435678910", "not-a-number")
    # ... and only asking for the account's numbers fails, naming the variable, not the value
    with pytest.raises(ConfigurationError) as info:
        settings.account_numbers()
    assert info.value.variable == "SMS_NUMBERS"
    assert "entry 2" in str(info.value) and "not-a-number" not in str(info.value)


def test_account_numbers_are_given_in_e164() -> None:
    settings = Settings.from_env(BASE | {"SMS_NUMBERS": "(243) 567-8910,12435678911"})
    assert settings.account_numbers() == ("+12435678910", "+12435678911")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("sms", "/sms"), ("/sms/v2/", "/sms/v2"), ("  /a.b_c-1 ", "/a.b_c-1"), ("/", None)],
)
def test_api_base_path_is_normalised(raw: str, expected: str | None) -> None:
    assert Settings.from_env(BASE | {"API_BASE_PATH": raw}).api_base_path == expected


@pytest.mark.parametrize("raw", ["sms v2", "sms//v2", "/sms?x=1", "sms#top"])
def test_a_malformed_api_base_path_is_a_clear_error(raw: str) -> None:
    with pytest.raises(ConfigurationError, match="API_BASE_PATH") as info:
        Settings.from_env(BASE | {"API_BASE_PATH": raw})
    assert info.value.variable == "API_BASE_PATH"


def test_every_bad_variable_is_reported_at_once() -> None:
    # GIVEN two wrong variables (and the table name missing)
    environ = {"SEND_CONCURRENCY": "0", "PLUM_API_URL": "ftp://plum.example"}
    # WHEN the settings are read
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env(environ)
    # THEN one error names all three, each with its rule, and the first is ``variable``
    assert set(info.value.variables) == {"TABLE_NAME", "SEND_CONCURRENCY", "PLUM_API_URL"}
    assert info.value.variable == info.value.variables[0]
    message = str(info.value)
    assert "SEND_CONCURRENCY: Input should be greater than or equal to 1" in message
    assert "PLUM_API_URL: Value error, must start with http:// or https://" in message
    assert "ftp://plum.example" not in message


def test_an_empty_variable_counts_as_unset_and_lists_are_never_json() -> None:
    settings = Settings.from_env(
        BASE | {"SEND_CONCURRENCY": "", "SMS_NUMBERS": "[1, 2]", "REPLY_COUNTRIES": "ca, +1"}
    )
    assert settings.send_concurrency == 8
    assert settings.sms_numbers == ("[1", "2]")
    assert settings.reply_countries == ("CA", "+1")


def test_settings_read_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLE_NAME", "from-environment")
    monkeypatch.setenv("table_name", "lower-case-is-another-variable")
    assert Settings.from_env().table_name == "from-environment"


# -- Plum credentials ------------------------------------------------------------------


@pytest.fixture
def stored_secret(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Secrets Manager stand-in: ``value`` is what the secret holds; ``reads`` counts calls."""
    state: dict[str, Any] = {"value": None, "reads": 0}

    def get_secret(name: str, max_age: int = 0) -> str:
        state["reads"] += 1
        return str(state["value"])

    monkeypatch.setattr(secrets_module.parameters, "get_secret", get_secret)
    return state


def test_unset_credentials_are_not_configured() -> None:
    with pytest.raises(PlumNotConfigured):
        SecretValues(Settings.from_env(BASE)).plum_credentials()
    with pytest.raises(PlumNotConfigured):
        SecretValues(Settings.from_env(BASE | {"PLUM_USERNAME": "user"})).plum_credentials()


@pytest.mark.parametrize(
    "value",
    [
        {"username": "", "password": ""},  # what a fresh deploy puts in the secret
        {"username": "user", "password": ""},
        {"username": " ", "password": "pass"},
    ],
)
def test_a_secret_with_empty_credentials_is_not_configured(
    stored_secret: dict[str, Any], value: dict[str, str]
) -> None:
    stored_secret["value"] = json.dumps(value)
    settings = Settings.from_env(BASE | {"PLUM_CREDENTIALS_SECRET": "plum-credentials"})
    with pytest.raises(PlumNotConfigured) as info:
        SecretValues(settings).plum_credentials()
    assert info.value.variable == "PLUM_CREDENTIALS_SECRET"


def test_a_malformed_secret_is_a_configuration_error_not_a_missing_one(
    stored_secret: dict[str, Any],
) -> None:
    stored_secret["value"] = "user:pass"
    settings = Settings.from_env(BASE | {"PLUM_CREDENTIALS_SECRET": "plum-credentials"})
    with pytest.raises(ConfigurationError) as info:
        SecretValues(settings).plum_credentials()
    assert not isinstance(info.value, PlumNotConfigured)


def test_credentials_from_the_secret(stored_secret: dict[str, Any]) -> None:
    stored_secret["value"] = json.dumps({"username": "user", "password": "pass"})
    settings = Settings.from_env(BASE | {"PLUM_CREDENTIALS_SECRET": "plum-credentials"})
    assert SecretValues(settings).plum_credentials() == ("user", "pass")
    assert stored_secret["reads"] == 1
