"""The domain's errors carry what a caller needs to name the culprit."""

from __future__ import annotations

from plumsms.domain.errors import ConfigurationError, PlumNotConfigured


def test_a_configuration_error_lists_the_variable_it_names() -> None:
    # GIVEN an error naming one setting
    error = ConfigurationError("SMS_NUMBERS is not valid", variable="SMS_NUMBERS")
    # THEN that setting is the one (and only one) listed
    assert error.variable == "SMS_NUMBERS"
    assert error.variables == ("SMS_NUMBERS",)


def test_a_configuration_error_lists_every_variable_found_wrong() -> None:
    error = ConfigurationError("2 settings", variable="A", variables=("A", "B"))
    assert error.variables == ("A", "B")


def test_a_configuration_error_blaming_no_setting_lists_none() -> None:
    assert PlumNotConfigured("no credentials yet").variables == ()
    assert ConfigurationError("broken", variable="").variables == ()
