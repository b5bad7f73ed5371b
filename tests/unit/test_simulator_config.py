"""SimulatorConfig: defaults, environment parsing, clear errors."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from plumsms.domain.errors import ConfigurationError
from plumsms_local.simulator.config import ENV, Faults, SimulatorConfig


def test_defaults_are_usable_without_environment() -> None:
    # GIVEN no variables WHEN the config is read THEN the documented defaults apply
    config = SimulatorConfig.from_env({})
    assert config.username == "plum-sim"
    assert config.sms_numbers == ("+12435678910",)
    assert config.faults == Faults()
    assert config.seed is None


def test_every_variable_is_read() -> None:
    env = {
        "PLUM_USERNAME": "alice",
        "PLUM_PASSWORD": "s3cret",
        "SMS_NUMBERS": "2435678910, +12435678911",
        "SIM_LANDLINES": "12025550100",
        "SIM_FAILING_NUMBERS": "(202) 555-0101",
        "SIM_UNDELIVERABLE_NUMBERS": "+12025550102",
        "SIM_UNSUBSCRIBED": "2025550103",
        "SIM_APPLICATION_URL": "http://127.0.0.1:3000/plum/inbound?key=k",
        "SIM_SEED": "42",
        "SIM_HTTP_TIMEOUT_SECONDS": "3",
        "SIM_DELAY_SENT_SECONDS": "0.25",
        "SIM_DELAY_FINAL_SECONDS": "0.5",
        "SIM_CALLBACK_DUPLICATE_RATE": "0.1",
        "SIM_CALLBACK_REORDER_RATE": "0.2",
        "SIM_CALLBACK_DROP_RATE": "0.3",
        "SIM_API_LATENCY_RATE": "0.4",
        "SIM_API_LATENCY_SECONDS": "1.5",
        "SIM_API_ERROR_RATE": "0.05",
        "SIM_API_TIMEOUT_RATE": "0.01",
        "SIM_API_TIMEOUT_SECONDS": "7",
    }
    assert set(env) == set(ENV.values())  # the test covers every documented variable
    config = SimulatorConfig.from_env(env)
    assert (config.username, config.password) == ("alice", "s3cret")
    assert config.sms_numbers == ("+12435678910", "+12435678911")
    assert config.landlines == {"+12025550100"}
    assert config.failing_numbers == {"+12025550101"}
    assert config.undeliverable_numbers == {"+12025550102"}
    assert config.unsubscribed == {"+12025550103"}
    assert config.application_urls == {
        "+12435678910": "http://127.0.0.1:3000/plum/inbound?key=k",
        "+12435678911": "http://127.0.0.1:3000/plum/inbound?key=k",
    }
    assert config.seed == 42
    assert config.http_timeout_seconds == 3
    assert (config.delays.sent_seconds, config.delays.final_seconds) == (0.25, 0.5)
    assert config.faults == Faults(
        callback_duplicate_rate=0.1,
        callback_reorder_rate=0.2,
        callback_drop_rate=0.3,
        api_latency_rate=0.4,
        api_latency_seconds=1.5,
        api_error_rate=0.05,
        api_timeout_rate=0.01,
        api_timeout_seconds=7,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SMS_NUMBERS", "12"),
        ("SIM_LANDLINES", "not-a-number"),
        ("SIM_SEED", "abc"),
        ("SIM_CALLBACK_DROP_RATE", "1.5"),
        ("SIM_DELAY_SENT_SECONDS", "-1"),
    ],
)
def test_a_bad_value_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        SimulatorConfig.from_env({variable: value})


def test_application_urls_must_name_sms_numbers() -> None:
    with pytest.raises(ValidationError):
        SimulatorConfig(
            sms_numbers=("+12435678910",), application_urls={"+12025550100": "http://x"}
        )


def test_faults_update_validates_and_refuses_unknown_names() -> None:
    faults = Faults().updated({"callback_drop_rate": 0.5})
    assert faults.callback_drop_rate == 0.5
    with pytest.raises(ValidationError):
        faults.updated({"callback_drop_rate": 2})
    with pytest.raises(ValidationError):
        faults.updated({"no_such_fault": 0.1})
