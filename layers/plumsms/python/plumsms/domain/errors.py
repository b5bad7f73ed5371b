"""The domain's own exceptions. Adapters translate their systems' errors into these."""

from __future__ import annotations

from collections.abc import Callable


class PlumSmsError(Exception):
    """Base class of every error this package raises on purpose."""


class ValidationFailed(PlumSmsError):
    """Input broke a rule. ``field`` names what was wrong, ``rule`` says why."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


def pydantic_check(parse: Callable[[str], str]) -> Callable[[str], str]:
    """``parse`` as a pydantic validator: its ``ValidationFailed`` becomes the
    ``ValueError`` pydantic reports (with the rule; pydantic names the field itself)."""

    def check(value: str) -> str:
        try:
            return parse(value)
        except ValidationFailed as exc:
            raise ValueError(exc.rule) from exc

    return check


class ConfigurationError(PlumSmsError):
    """The deployment's configuration is unusable. ``variable`` names the setting to fix,
    when one is to blame (never its value: it may be a secret); ``variables`` every one
    found wrong at once (the first is ``variable``)."""

    def __init__(
        self, message: str, variable: str | None = None, variables: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message)
        self.variable = variable
        self.variables = variables or ((variable,) if variable else ())


class PlumNotConfigured(ConfigurationError):
    """No Plum credentials yet (a fresh deploy): sends wait, nothing is wrong with them."""


class NotFound(PlumSmsError):
    """A looked-up record does not exist."""


class Conflict(PlumSmsError):
    """The record exists but is in a state that forbids the change."""


class StoreUnavailable(PlumSmsError):
    """The message store could not be reached or refused the request."""


class Forbidden(PlumSmsError):
    """The caller did not present the right key or credentials."""


class DuplicateInbound(PlumSmsError):
    """The inbound message was recorded before; ``reply_xml`` is the answer given then."""

    def __init__(self, reply_xml: bytes) -> None:
        super().__init__("inbound message already recorded")
        self.reply_xml = reply_xml


class ConcurrentUpdate(PlumSmsError):
    """A row changed between our read and our conditional write: read again and retry."""
