"""Plum DEV's SMS REST API as the domain sees it: the resource, the port and its errors.

Pure: no HTTP, no boto3, no environment reads. The HTTP adapter
(``plumsms.adapters.plum.client.PlumClient``) implements ``PlumGateway``; tests and the
local simulator can implement it too.

Phone numbers cross this port in E.164; resources hold numbers exactly as Plum wrote
them (digits), because Plum's own formats are what reconciliation compares against.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal, Protocol, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from plumsms.domain.errors import PlumSmsError
from plumsms.domain.models import PlumMessageId
from plumsms.domain.phone import E164

_LAST_UNIX_SECOND = 253_402_300_799
"""9999-12-31T23:59:59Z: beyond it ``datetime`` cannot represent the timestamp."""

SmsMessageId = PlumMessageId
"""A pydantic field type for Plum's 128-bit ``sms_message_id``, kept lowercase."""

PLUM_LIMIT_MIN = 50
PLUM_LIMIT_MAX = 1000
"""Bounds Plum documents for the ``sms/messages`` page size."""


class PlumSmsResource(BaseModel):
    """Plum's SMS message resource, field for field (``from`` is ``from_`` in Python).

    Unknown statuses are kept as given: Plum may report states we do not list.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        # Plum may write numbers as JSON numbers; they are still digit strings to us.
        coerce_numbers_to_str=True,
    )

    sms_message_id: SmsMessageId
    to: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    from_: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] = Field(
        alias="from"
    )
    body: str
    request_timestamp: int = Field(ge=0, le=_LAST_UNIX_SECOND)
    result_url: str | None = None
    status: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

    @field_validator("result_url")
    @classmethod
    def _empty_url_is_none(cls, value: str | None) -> str | None:
        # XML writes an absent URL as an empty element.
        if value is None or not value.strip():
            return None
        return value.strip()


class PlumPageQuery(BaseModel):
    """Paging and time window shared by ``sms/messages`` and ``sms/conversation``."""

    model_config = ConfigDict(frozen=True)

    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=PLUM_LIMIT_MIN, ge=PLUM_LIMIT_MIN, le=PLUM_LIMIT_MAX)
    sort: Literal["asc", "desc"] = "desc"
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None

    @model_validator(mode="after")
    def _window_in_order(self) -> Self:
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError("end must not be before start")
        return self


class PlumMessageQuery(PlumPageQuery):
    """Filters of ``sms/messages``.

    Plum requires ``number_side`` (``account`` = your SMS number, ``customer`` = the
    other party) when a ``number`` is given with type ``inbound`` or ``outbound``, and
    accepts it only then.
    """

    type: Literal["inbound", "outbound", "all"] = "all"
    number: E164 | None = None
    number_side: Literal["account", "customer"] | None = None

    @model_validator(mode="after")
    def _side_goes_with_number(self) -> Self:
        directional = self.type != "all"
        if self.number_side is not None and (self.number is None or not directional):
            raise ValueError("number_side needs a number and type inbound or outbound")
        if self.number is not None and directional and self.number_side is None:
            raise ValueError("number_side is required with a number and a type")
        return self


class PlumGateway(Protocol):
    """What the bundle needs from Plum DEV's SMS REST API.

    Every method raises a ``PlumError`` subclass on failure and ``ValidationFailed`` for
    arguments that break a rule before anything is sent.
    """

    def queue(
        self, to: str, from_: str, body: str, result_url: str | None = None
    ) -> list[PlumSmsResource]:
        """Queue one SMS (E.164 numbers); Plum may answer with several resources."""
        ...

    def status(self, sms_message_id: str) -> PlumSmsResource:
        """The current resource of one message."""
        ...

    def messages(self, query: PlumMessageQuery | None = None) -> list[PlumSmsResource]:
        """One page of the account's messages matching ``query``."""
        ...

    def conversation(
        self, account_number: str, customer_number: str, query: PlumPageQuery | None = None
    ) -> list[PlumSmsResource]:
        """One page of the messages exchanged between two numbers (E.164)."""
        ...


# --- errors -------------------------------------------------------------------------

_NUMBER_LIKE = re.compile(r"\+?\(?\d[\d\s().-]{5,}\d")


def redact_numbers(text: str) -> str:
    """``text`` with anything that looks like a phone number replaced by ``[number]``."""
    return _NUMBER_LIKE.sub("[number]", text)


class PlumError(PlumSmsError):
    """Plum refused a call, could not be reached, or answered something unusable.

    ``reason`` is Plum's own text (it may name the recipient's number: store it, do not
    log it above DEBUG); ``str(error)`` is the same with numbers redacted.
    ``transient`` says whether trying again later can succeed. ``maybe_sent`` is true
    when a queue request may have been accepted although no usable answer came back:
    the caller must reconcile (``sms/messages``) before sending again.
    """

    transient: ClassVar[bool] = False
    summary: ClassVar[str] = "Plum refused the request"

    def __init__(
        self, reason: str = "", *, http_status: int | None = None, maybe_sent: bool = False
    ) -> None:
        self.reason = reason
        self.http_status = http_status
        self.maybe_sent = maybe_sent
        detail = redact_numbers(reason)
        super().__init__(f"{self.summary}: {detail}" if detail else self.summary)


class InvalidRecipient(PlumError):
    """Plum rejected the ``to`` number."""

    summary = "invalid recipient number"


class UnsubscribedRecipient(PlumError):
    """The recipient opted out (texted STOP earlier); Plum will not send to it."""

    summary = "recipient unsubscribed"


class NotAMobileNumber(PlumError):
    """The recipient is a landline or otherwise cannot receive SMS."""

    summary = "recipient is not a mobile number"


class Unauthorized(PlumError):
    """Plum refused the credentials."""

    summary = "Plum refused the credentials"


class PlumRejected(PlumError):
    """Any other failure Plum reported."""

    summary = "Plum rejected the request"


class PlumUnavailable(PlumError):
    """Plum could not be reached or was overloaded (after the client's own retries)."""

    transient = True
    summary = "Plum unavailable"


class UnexpectedResponse(PlumError):
    """Plum's answer could not be understood (malformed JSON/XML, missing fields).

    ``excerpt`` is a short, number-redacted start of the answer, for diagnosis.
    """

    summary = "unexpected answer from Plum"

    def __init__(
        self,
        reason: str = "",
        *,
        excerpt: str = "",
        http_status: int | None = None,
        maybe_sent: bool = False,
    ) -> None:
        super().__init__(reason, http_status=http_status, maybe_sent=maybe_sent)
        self.excerpt = excerpt


_QUOTES = "\"'`\u2018\u2019\u201c\u201d"


def _normalise_reason(reason: str) -> str:
    # Plum's samples wrap the text in doubled quotes; its wording may vary in case.
    without_quotes = re.sub(f"[{_QUOTES}]", "", reason)
    return " ".join(without_quotes.split()).lower()


_FAILURE_PATTERNS: tuple[tuple[re.Pattern[str], type[PlumError]], ...] = (
    (re.compile(r"\bunauthori[sz]ed\b"), Unauthorized),
    (re.compile(r"\bunsubscribed\b"), UnsubscribedRecipient),
    (re.compile(r"\bnot an? mobile number\b"), NotAMobileNumber),
    (re.compile(r"\binvalid to (phone )?number\b"), InvalidRecipient),
    # Also seen after an opt-out, so it says nothing certain about the recipient.
    (re.compile(r"\berror sending sms request\b"), PlumRejected),
)
"""Plum's documented failure texts, matched after ``_normalise_reason``."""


def failure_from_reason(reason: str, *, http_status: int | None = None) -> PlumError:
    """The ``PlumError`` for one of Plum's failure texts (``PlumRejected`` if unknown).

    Matching ignores case, surrounding or embedded quotes and extra whitespace.
    """
    normalised = _normalise_reason(reason)
    text = reason.strip().strip(_QUOTES).strip()
    for pattern, error_class in _FAILURE_PATTERNS:
        if pattern.search(normalised):
            return error_class(text, http_status=http_status)
    return PlumRejected(text, http_status=http_status)


def is_known_failure(reason: str) -> bool:
    """True when ``reason`` is one of Plum's documented failure texts."""
    normalised = _normalise_reason(reason)
    return any(pattern.search(normalised) for pattern, _ in _FAILURE_PATTERNS)
