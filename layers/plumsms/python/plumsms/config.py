"""Settings read from the environment once per cold start, with clear errors.

A value only some operations need is checked where it is used (``account_numbers``), so
a wrong one fails those operations, not every function's cold start.

Secrets are never read here: on AWS the environment names a Secrets Manager secret or an
SSM parameter and ``plumsms.secrets`` fetches it (cached); locally the plain variables
(``WEBHOOK_KEY``, ``PLUM_USERNAME``, ``PLUM_PASSWORD``) carry the values.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from plumsms import constants as env
from plumsms.domain.errors import ConfigurationError, ValidationFailed
from plumsms.domain.phone import normalize

_BASE_PATH = re.compile(r"^(/[A-Za-z0-9._~$!*'()+-]+)+$")
"""One or more path segments of the characters API Gateway allows in a base path."""


class Settings(BaseModel):
    """Everything the functions need from the environment."""

    model_config = ConfigDict(frozen=True)

    table_name: str = Field(min_length=3, max_length=255)
    plum_api_url: str = env.DEFAULT_PLUM_API_URL
    plum_username: str | None = None
    plum_password: str | None = None
    plum_credentials_secret: str | None = None
    webhook_key: str | None = Field(default=None, min_length=16)
    webhook_key_secret: str | None = None
    public_base_url: str | None = None
    public_base_url_param: str | None = None
    api_base_path: str | None = None
    """``/sms`` or ``/sms/v2``: the custom domain's base path, stripped before routing."""
    sms_numbers: tuple[str, ...] = ()
    """As written in ``SMS_NUMBERS``; ``account_numbers()`` checks them where they are used."""
    rules_file: Path | None = None
    reply_hook: str | None = None
    retention_days: int = Field(default=0, ge=0, le=3650)
    secrets_max_age_seconds: int = Field(default=300, ge=0)
    event_bus_name: str | None = None
    events_endpoint_url: str | None = None
    reconcile_after_minutes: float = Field(default=30.0, ge=0, le=7 * 24 * 60)
    reconcile_max_messages: int = Field(default=100, ge=1, le=1000)
    scheduled_send_function: str | None = None
    send_rate_per_second: float = Field(default=1.0, gt=0, le=1000)
    send_concurrency: int = Field(default=8, ge=1, le=64)
    send_max_attempts: int = Field(default=5, ge=1, le=20)
    plum_retry_backoff_seconds: float = Field(default=0.5, ge=0, le=10)
    """urllib3's backoff factor of the Plum client's in-call retries."""
    reply_limit_per_hour: int = Field(default=20, ge=0, le=10_000)
    forward_limit_per_hour: int = Field(default=60, ge=0, le=10_000)
    repeat_window_seconds: int = Field(default=300, ge=0, le=86_400)
    reply_countries: tuple[str, ...] = ()
    """Calling codes (``+1``) or ISO regions (``CA``), or ``*``; empty: the SMS numbers'."""
    cursor_key: str | None = Field(default=None, min_length=16)
    cursor_key_secret: str | None = None

    @field_validator("reply_countries", mode="before")
    @classmethod
    def _country_list(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        items = tuple(item.strip().upper() for item in value.split(",") if item.strip())
        for item in items:
            if not (
                item == "*"
                or (item[1:].isdigit() and item[0] == "+")
                or (len(item) == 2 and item.isalpha())
            ):
                raise ValueError(f"{item!r} is not a calling code (+1), an ISO region (CA) or *")
        return items

    @field_validator("plum_api_url", "public_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value if value.endswith("/") else value + "/"

    @field_validator("api_base_path")
    @classmethod
    def _base_path(cls, value: str | None) -> str | None:
        if value is None:
            return None
        path = "/" + value.strip().strip("/")
        if path == "/":
            return None
        if not _BASE_PATH.fullmatch(path):
            raise ValueError("must be a base path such as sms or /sms/v2")
        return path

    def account_numbers(self) -> tuple[str, ...]:
        """The account's SMS numbers in E.164; ``ConfigurationError`` naming SMS_NUMBERS.

        Checked only where a number is needed (a send's ``from``), not at cold start: a
        wrong value must not stop inbound, status callbacks or the log as well.
        """
        numbers = []
        for position, raw in enumerate(self.sms_numbers, start=1):
            try:
                numbers.append(normalize(raw, env.SMS_NUMBERS))
            except ValidationFailed as exc:
                raise ConfigurationError(
                    f"{env.SMS_NUMBERS}: entry {position} is {exc.rule}; "
                    "give the account's numbers in E.164, comma separated",
                    variable=env.SMS_NUMBERS,
                ) from exc
        return tuple(numbers)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the environment; raise ``ConfigurationError`` naming the variable."""
        source = os.environ if environ is None else environ
        names = {
            "table_name": env.TABLE_NAME,
            "plum_api_url": env.PLUM_API_URL,
            "plum_username": env.PLUM_USERNAME,
            "plum_password": env.PLUM_PASSWORD,
            "plum_credentials_secret": env.PLUM_CREDENTIALS_SECRET,
            "webhook_key": env.WEBHOOK_KEY,
            "webhook_key_secret": env.WEBHOOK_KEY_SECRET,
            "public_base_url": env.PUBLIC_BASE_URL,
            "public_base_url_param": env.PUBLIC_BASE_URL_PARAM,
            "api_base_path": env.API_BASE_PATH,
            "rules_file": env.RULES_FILE,
            "reply_hook": env.REPLY_HOOK,
            "retention_days": env.RETENTION_DAYS,
            "secrets_max_age_seconds": env.SECRETS_MAX_AGE_SECONDS,
            "event_bus_name": env.EVENT_BUS_NAME,
            "events_endpoint_url": env.EVENTS_ENDPOINT_URL,
            "reconcile_after_minutes": env.RECONCILE_AFTER_MINUTES,
            "reconcile_max_messages": env.RECONCILE_MAX_MESSAGES,
            "scheduled_send_function": env.SCHEDULED_SEND_FUNCTION,
            "send_rate_per_second": env.SEND_RATE_PER_SECOND,
            "send_concurrency": env.SEND_CONCURRENCY,
            "send_max_attempts": env.SEND_MAX_ATTEMPTS,
            "plum_retry_backoff_seconds": env.PLUM_RETRY_BACKOFF_SECONDS,
            "reply_limit_per_hour": env.REPLY_LIMIT_PER_HOUR,
            "forward_limit_per_hour": env.FORWARD_LIMIT_PER_HOUR,
            "repeat_window_seconds": env.REPEAT_WINDOW_SECONDS,
            "reply_countries": env.REPLY_COUNTRIES,
            "cursor_key": env.CURSOR_KEY,
            "cursor_key_secret": env.CURSOR_KEY_SECRET,
        }
        values: dict[str, object] = {
            field: source[name] for field, name in names.items() if source.get(name)
        }
        numbers = source.get(env.SMS_NUMBERS, "")
        values["sms_numbers"] = tuple(n.strip() for n in numbers.split(",") if n.strip())
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = str(error["loc"][0]) if error["loc"] else "settings"
            name = names.get(field, env.SMS_NUMBERS)
            raise ConfigurationError(f"{name}: {error['msg']}", variable=name) from exc
