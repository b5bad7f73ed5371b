"""Secret and deploy-time values: environment locally, Secrets Manager / SSM on AWS.

Powertools' parameters utility caches each value for ``secrets_max_age_seconds``, so a
rotated secret is picked up without a redeploy and a warm function makes no extra call.
"""

from __future__ import annotations

import json

from aws_lambda_powertools.utilities import parameters

from plumsms.config import Settings
from plumsms.domain.errors import ConfigurationError, PlumNotConfigured

NOT_CONFIGURED_WARNING = (
    "Plum credentials are not configured: nothing was sent to or asked of Plum. Put the "
    "Plum DEV username and password in the PLUM_CREDENTIALS_SECRET secret (locally "
    "PLUM_USERNAME and PLUM_PASSWORD); waiting messages go out on the next run."
)
"""Logged once per dispatcher or reconciler run that found work but no credentials."""


class SecretValues:
    """Resolves the webhook key, Plum credentials and public base URL for one deployment."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def webhook_key(self) -> str:
        """The shared key Plum must present on the webhooks."""
        if self._settings.webhook_key:
            return self._settings.webhook_key
        if self._settings.webhook_key_secret:
            return self._secret(self._settings.webhook_key_secret)
        raise ConfigurationError("WEBHOOK_KEY or WEBHOOK_KEY_SECRET must be set")

    def cursor_key(self) -> str:
        """The secret page cursors are signed with: random, and used for nothing else.

        Its own value, not one derived from the webhook key, so a cursor (which any API
        caller sees) gives no offline oracle for guessing the key Plum presents.
        """
        if self._settings.cursor_key:
            return self._settings.cursor_key
        if self._settings.cursor_key_secret:
            return self._secret(self._settings.cursor_key_secret)
        raise ConfigurationError("CURSOR_KEY or CURSOR_KEY_SECRET must be set")

    def plum_credentials(self) -> tuple[str, str]:
        """Plum DEV login (username, password) for HTTP Basic auth.

        ``PlumNotConfigured`` when none are set, or the secret still holds the empty
        values a fresh deploy puts there; ``ConfigurationError`` for a malformed secret.
        Call only when Plum is needed: on AWS this reads Secrets Manager.
        """
        s = self._settings
        if s.plum_username and s.plum_password:
            return s.plum_username, s.plum_password
        if s.plum_credentials_secret:
            raw = self._secret(s.plum_credentials_secret)
            try:
                data = json.loads(raw)
                username, password = str(data["username"]), str(data["password"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ConfigurationError(
                    'PLUM_CREDENTIALS_SECRET: must hold {"username": ..., "password": ...}',
                    variable="PLUM_CREDENTIALS_SECRET",
                ) from exc
            if username.strip() and password:
                return username, password
            raise PlumNotConfigured(
                "the Plum credentials secret has no username or password yet",
                variable="PLUM_CREDENTIALS_SECRET",
            )
        raise PlumNotConfigured(
            "PLUM_USERNAME and PLUM_PASSWORD, or PLUM_CREDENTIALS_SECRET, must be set"
        )

    def public_base_url(self) -> str | None:
        """Base URL the webhooks are reachable at (ends with '/'), if known."""
        if self._settings.public_base_url:
            return self._settings.public_base_url
        if self._settings.public_base_url_param:
            value = str(
                parameters.get_parameter(
                    self._settings.public_base_url_param,
                    max_age=self._settings.secrets_max_age_seconds,
                )
            )
            return value if value.endswith("/") else value + "/"
        return None

    def _secret(self, name: str) -> str:
        return str(parameters.get_secret(name, max_age=self._settings.secrets_max_age_seconds))
