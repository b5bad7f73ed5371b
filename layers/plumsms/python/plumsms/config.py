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
from typing import Annotated

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

from plumsms import constants as env
from plumsms.domain.errors import ConfigurationError, ValidationFailed
from plumsms.domain.phone import normalize

_BASE_PATH = re.compile(r"^(/[A-Za-z0-9._~$!*'()+-]+)+$")
"""One or more path segments of the characters API Gateway allows in a base path."""

CommaList = Annotated[tuple[str, ...], NoDecode]
"""A comma-separated variable (never JSON), as a tuple of its non-empty items."""


class _Environment(EnvSettingsSource):
    """The variables of ``environ`` (the process environment when None), and nothing
    else: no ``.env`` file, no secrets directory. An empty variable counts as unset."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str] | None) -> None:
        self._environ = environ
        super().__init__(settings_cls, case_sensitive=True, env_ignore_empty=True)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        source = os.environ if self._environ is None else self._environ
        return parse_env_vars(source, case_sensitive=True, ignore_empty=True)


class Settings(BaseSettings):
    """Everything the functions need from the environment; each field names its variable."""

    model_config = SettingsConfigDict(frozen=True, case_sensitive=True, extra="ignore")

    table_name: str = Field(min_length=3, max_length=255, alias=env.TABLE_NAME)
    plum_api_url: str = Field(default=env.DEFAULT_PLUM_API_URL, alias=env.PLUM_API_URL)
    plum_username: str | None = Field(default=None, alias=env.PLUM_USERNAME)
    plum_password: str | None = Field(default=None, alias=env.PLUM_PASSWORD)
    plum_credentials_secret: str | None = Field(default=None, alias=env.PLUM_CREDENTIALS_SECRET)
    webhook_key: str | None = Field(default=None, min_length=16, alias=env.WEBHOOK_KEY)
    webhook_key_secret: str | None = Field(default=None, alias=env.WEBHOOK_KEY_SECRET)
    public_base_url: str | None = Field(default=None, alias=env.PUBLIC_BASE_URL)
    public_base_url_param: str | None = Field(default=None, alias=env.PUBLIC_BASE_URL_PARAM)
    api_base_path: str | None = Field(default=None, alias=env.API_BASE_PATH)
    """``/sms`` or ``/sms/v2``: the custom domain's base path, stripped before routing."""
    sms_numbers: CommaList = Field(default=(), alias=env.SMS_NUMBERS)
    """As written in ``SMS_NUMBERS``; ``account_numbers()`` checks them where they are used."""
    rules_file: Path | None = Field(default=None, alias=env.RULES_FILE)
    reply_hook: str | None = Field(default=None, alias=env.REPLY_HOOK)
    retention_days: int = Field(default=0, ge=0, le=3650, alias=env.RETENTION_DAYS)
    secrets_max_age_seconds: int = Field(default=300, ge=0, alias=env.SECRETS_MAX_AGE_SECONDS)
    event_bus_name: str | None = Field(default=None, alias=env.EVENT_BUS_NAME)
    events_endpoint_url: str | None = Field(default=None, alias=env.EVENTS_ENDPOINT_URL)
    reconcile_after_minutes: float = Field(
        default=30.0, ge=0, le=7 * 24 * 60, alias=env.RECONCILE_AFTER_MINUTES
    )
    reconcile_max_messages: int = Field(
        default=100, ge=1, le=1000, alias=env.RECONCILE_MAX_MESSAGES
    )
    scheduled_send_function: str | None = Field(default=None, alias=env.SCHEDULED_SEND_FUNCTION)
    function_name: str | None = Field(default=None, alias=env.LAMBDA_FUNCTION_NAME)
    """The running function's own name (Lambda sets it): the dispatcher hands over to it."""
    send_rate_per_second: float = Field(default=1.0, gt=0, le=1000, alias=env.SEND_RATE_PER_SECOND)
    send_concurrency: int = Field(default=8, ge=1, le=64, alias=env.SEND_CONCURRENCY)
    send_max_attempts: int = Field(default=5, ge=1, le=20, alias=env.SEND_MAX_ATTEMPTS)
    plum_retry_backoff_seconds: float = Field(
        default=0.5, ge=0, le=10, alias=env.PLUM_RETRY_BACKOFF_SECONDS
    )
    """urllib3's backoff factor of the Plum client's in-call retries."""
    reply_limit_per_hour: int = Field(default=20, ge=0, le=10_000, alias=env.REPLY_LIMIT_PER_HOUR)
    forward_limit_per_hour: int = Field(
        default=60, ge=0, le=10_000, alias=env.FORWARD_LIMIT_PER_HOUR
    )
    repeat_window_seconds: int = Field(
        default=300, ge=0, le=86_400, alias=env.REPEAT_WINDOW_SECONDS
    )
    reply_countries: CommaList = Field(default=(), alias=env.REPLY_COUNTRIES)
    """Calling codes (``+1``) or ISO regions (``CA``), or ``*``; empty: the SMS numbers'."""
    cursor_key: str | None = Field(default=None, min_length=16, alias=env.CURSOR_KEY)
    cursor_key_secret: str | None = Field(default=None, alias=env.CURSOR_KEY_SECRET)

    @field_validator("sms_numbers", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        return tuple(item.strip() for item in value.split(",") if item.strip())

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
        """Read and validate the environment (``os.environ`` unless ``environ`` is given).

        Raises one ``ConfigurationError`` naming every variable that is wrong, each with
        its rule (never its value: it may be a secret).
        """
        try:
            return cls(_build_sources=((_Environment(cls, environ),), {}))
        except ValidationError as exc:
            problems = [
                (str(error["loc"][0]) if error["loc"] else env.TABLE_NAME, error["msg"])
                for error in exc.errors()
            ]
            raise ConfigurationError(
                "; ".join(f"{name}: {message}" for name, message in problems),
                variable=problems[0][0],
                variables=tuple(dict.fromkeys(name for name, _ in problems)),
            ) from exc

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The environment only (``Settings()`` reads it as ``from_env()`` does)."""
        return (_Environment(settings_cls, None),)
