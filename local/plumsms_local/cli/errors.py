"""The errors every smsctl command may raise; ``main`` turns each into one line and an exit code.

Exit codes: 0 success, 1 the API or simulator refused the request (or a file could not
be written), 2 bad usage, 3 the API or simulator could not be reached.
"""

from __future__ import annotations

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


class CliError(Exception):
    """Something the person can act on; ``str()`` is the whole message."""

    exit_code = EXIT_REFUSED

    def details(self) -> dict[str, object]:
        """Extra members of the ``--json`` error object."""
        return {}


class UsageError(CliError):
    """The command line itself is wrong (exit 2)."""

    exit_code = EXIT_USAGE


class ApiError(CliError):
    """The API answered with an error status: ``{"message", "field", "rule"}``."""

    def __init__(
        self, status: int, message: str, field: str | None = None, rule: str | None = None
    ) -> None:
        super().__init__(f"{message} (HTTP {status})")
        self.status = status
        self.message = message
        self.field = field
        self.rule = rule

    def naming(self, flags: dict[str, str]) -> ApiError:
        """The same error with the API field replaced by the flag the person typed."""
        flag = flags.get(self.field or "")
        if flag is None or self.rule is None:
            return self
        return ApiError(self.status, f"{flag}: {self.rule}", self.field, self.rule)

    def details(self) -> dict[str, object]:
        """HTTP status, field and rule."""
        return {"http_status": self.status, "field": self.field, "rule": self.rule}


class Unreachable(CliError):
    """Nothing answered at ``url``."""

    exit_code = EXIT_UNREACHABLE

    def __init__(self, what: str, url: str, reason: str, hint: str = "") -> None:
        text = f"cannot reach {what} at {url} ({reason})"
        super().__init__(f"{text}; {hint}" if hint else text)
        self.what = what
        self.url = url
        self.reason = reason

    def details(self) -> dict[str, object]:
        """The URL tried."""
        return {"url": self.url}
