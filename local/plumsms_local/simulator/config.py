"""Simulator configuration: credentials, numbers, delays, faults, seed.

An explicit :class:`SimulatorConfig` beats the environment; :meth:`SimulatorConfig.from_env`
reads the variables named in ``ENV`` (documented in ``docs/simulator.md``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from plumsms.domain.errors import ConfigurationError
from plumsms.domain.phone import E164

Rate = Annotated[float, Field(ge=0.0, le=1.0)]
Seconds = Annotated[float, Field(ge=0.0, le=3600.0)]

DEFAULT_USERNAME: Final = "plum-sim"
DEFAULT_PASSWORD: Final = "plum-sim"  # noqa: S105 - the documented local demo login
DEFAULT_SMS_NUMBER: Final = "+12435678910"  # Plum's own example number

ENV: Final = MappingProxyType(
    {
        "username": "PLUM_USERNAME",
        "password": "PLUM_PASSWORD",
        "sms_numbers": "SMS_NUMBERS",
        "landlines": "SIM_LANDLINES",
        "failing_numbers": "SIM_FAILING_NUMBERS",
        "undeliverable_numbers": "SIM_UNDELIVERABLE_NUMBERS",
        "unsubscribed": "SIM_UNSUBSCRIBED",
        "application_url": "SIM_APPLICATION_URL",
        "seed": "SIM_SEED",
        "http_timeout_seconds": "SIM_HTTP_TIMEOUT_SECONDS",
        "delays.sent_seconds": "SIM_DELAY_SENT_SECONDS",
        "delays.final_seconds": "SIM_DELAY_FINAL_SECONDS",
        "faults.callback_duplicate_rate": "SIM_CALLBACK_DUPLICATE_RATE",
        "faults.callback_reorder_rate": "SIM_CALLBACK_REORDER_RATE",
        "faults.callback_drop_rate": "SIM_CALLBACK_DROP_RATE",
        "faults.api_latency_rate": "SIM_API_LATENCY_RATE",
        "faults.api_latency_seconds": "SIM_API_LATENCY_SECONDS",
        "faults.api_error_rate": "SIM_API_ERROR_RATE",
        "faults.api_timeout_rate": "SIM_API_TIMEOUT_RATE",
        "faults.api_timeout_seconds": "SIM_API_TIMEOUT_SECONDS",
    }
)
"""Config field (dotted for nested models) -> environment variable. The only list."""


class Delays(BaseModel):
    """Seconds between status changes: queued -> sent, and sent -> final status."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sent_seconds: Seconds = 1.0
    final_seconds: Seconds = 2.0


class Faults(BaseModel):
    """Fault injection rates (0..1) and durations; all off by default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    callback_duplicate_rate: Rate = 0.0
    callback_reorder_rate: Rate = 0.0
    callback_drop_rate: Rate = 0.0
    api_latency_rate: Rate = 0.0
    api_latency_seconds: Seconds = 0.5
    api_error_rate: Rate = 0.0
    api_timeout_rate: Rate = 0.0
    api_timeout_seconds: Seconds = 30.0

    def updated(self, changes: Mapping[str, Any]) -> Faults:
        """A copy with ``changes`` applied and validated (unknown names are refused)."""
        return Faults.model_validate({**self.model_dump(), **changes})


class SimulatorConfig(BaseModel):
    """Everything the simulator needs; numbers in any accepted form become E.164."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    username: str = Field(default=DEFAULT_USERNAME, min_length=1)
    password: str = Field(default=DEFAULT_PASSWORD, min_length=1)
    sms_numbers: tuple[E164, ...] = Field(default=(DEFAULT_SMS_NUMBER,), min_length=1)
    landlines: frozenset[E164] = frozenset()
    failing_numbers: frozenset[E164] = frozenset()
    undeliverable_numbers: frozenset[E164] = frozenset()
    unsubscribed: frozenset[E164] = frozenset()
    """Numbers that start out opted out (after every reset too)."""
    application_urls: dict[E164, str] = Field(default_factory=dict)
    """Initial Application URL per SMS number."""
    delays: Delays = Delays()
    faults: Faults = Faults()
    seed: int | None = None
    """Seed of the fault generator; None picks one at random (and logs it)."""
    http_timeout_seconds: Seconds = 10.0
    """Timeout of the simulator's own POSTs to Application URLs and result URLs."""

    @model_validator(mode="after")
    def _application_urls_belong_to_numbers(self) -> SimulatorConfig:
        strangers = set(self.application_urls) - set(self.sms_numbers)
        if strangers:
            raise ValueError("application_urls names numbers that are not sms_numbers")
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SimulatorConfig:
        """Build from environment variables (see ``ENV``); unset ones keep their default.

        Raises ``ConfigurationError`` naming the variable when a value is unusable.
        """
        env = os.environ if environ is None else environ
        data: dict[str, Any] = {}
        for field, variable in ENV.items():
            raw = env.get(variable, "").strip()
            if not raw:
                continue
            if field == "application_url":
                continue  # needs sms_numbers, handled below
            value: Any = _split_list(raw) if field in _LIST_FIELDS else raw
            section, _, name = field.rpartition(".")
            (data.setdefault(section, {}) if section else data)[name] = value
        numbers_raw = env.get(ENV["sms_numbers"], "").strip()
        app_url = env.get(ENV["application_url"], "").strip()
        if app_url:
            numbers = _split_list(numbers_raw) if numbers_raw else [DEFAULT_SMS_NUMBER]
            data["application_urls"] = dict.fromkeys(numbers, app_url)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigurationError(_explain(exc)) from exc


_LIST_FIELDS: Final = frozenset(
    {"sms_numbers", "landlines", "failing_numbers", "undeliverable_numbers", "unsubscribed"}
)


def _split_list(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


def _explain(exc: ValidationError) -> str:
    """Name the environment variable of each broken field."""
    by_field = {field.replace(".", "/"): variable for field, variable in ENV.items()}
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        key = "/".join(loc[:2]) if loc and loc[0] in ("delays", "faults") else loc[0]
        variable = by_field.get(key, ENV["application_url"] if key == "application_urls" else key)
        problems.append(f"{variable}: {error['msg']}")
    return "; ".join(problems) or str(exc)
