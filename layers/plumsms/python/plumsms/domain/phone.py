"""Phone numbers: one place that parses, normalises and formats them.

Numbers are stored and shown in E.164 (``+12435678910``). Plum's REST API and reply XML
take digits; its docs disagree on 10 vs 11 digits for ``to`` but every example uses 11
(leading country code 1), so we send ``to`` as 11 digits and ``from`` (an account SMS
number) as 10 national digits, as Plum's examples do (inferred; see
``plum-dev-sms-api.md`` section 1). Both choices live in the two ``plum_*`` functions.

We check *possible* numbers (length rules), not *valid* ones (assigned ranges): Plum's
own example numbers such as 2435678910 sit in unassigned area codes.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

import phonenumbers
from pydantic import AfterValidator

from plumsms.domain.errors import ValidationFailed, pydantic_check

DEFAULT_REGION = "US"
_NANP_COUNTRY_CODE = 1


# Pure and called for every number read back from the log: caching halves export time.
@lru_cache(maxsize=8192)
def normalize(raw: str, field: str = "number", region: str = DEFAULT_REGION) -> str:
    """Return ``raw`` in E.164, or raise ``ValidationFailed`` naming ``field``.

    Accepts E.164, national formats with punctuation, and Plum's digit forms
    (``2435678910``, ``12435678910``).
    """
    text = raw.strip() if isinstance(raw, str) else ""
    if not text:
        raise ValidationFailed(field, "a phone number is required")
    if len(text) > 32:
        raise ValidationFailed(field, "not a phone number (too long)")
    # Plum writes 11-digit NANP numbers without a plus; phonenumbers would read them as
    # national numbers with a trunk prefix only in some regions, so say what we mean.
    if text.isdigit() and len(text) == 11 and text.startswith("1"):
        text = "+" + text
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise ValidationFailed(field, "not a phone number") from exc
    if not phonenumbers.is_possible_number(parsed):
        raise ValidationFailed(field, "not a possible phone number for its country")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _parse_e164(e164: str) -> phonenumbers.PhoneNumber:
    return phonenumbers.parse(e164, None)


def plum_to_digits(e164: str) -> str:
    """Format a recipient for Plum's ``to``: country code and national digits, no plus."""
    return e164.lstrip("+")


def plum_from_digits(e164: str) -> str:
    """Format an account SMS number for Plum's ``from``: 10 national digits for NANP."""
    parsed = _parse_e164(e164)
    if parsed.country_code == _NANP_COUNTRY_CODE:
        return str(parsed.national_number)
    return e164.lstrip("+")


def same_number(a: str, b: str) -> bool:
    """True when two numbers in any accepted form denote the same E.164 number."""
    try:
        return normalize(a) == normalize(b)
    except ValidationFailed:
        return False


MAX_SENDER_CHARS = 64


def sender_address(raw: str, field: str = "from") -> str:
    """Any sender Plum delivers: E.164 when it is a phone number, otherwise as given.

    Short codes (``22395``, ``611``) and alphanumeric senders (``AMAZON``) are real
    senders: they are kept (control characters dropped, whitespace collapsed, at most 64
    characters), never refused. Only an empty sender raises ``ValidationFailed``.
    """
    text = raw if isinstance(raw, str) else ""
    try:
        return normalize(text, field)
    except ValidationFailed:
        pass
    printable = "".join(c if c.isprintable() else " " for c in text)
    cleaned = " ".join(printable.split())[:MAX_SENDER_CHARS]
    if not cleaned:
        raise ValidationFailed(field, "a sender is required")
    return cleaned


def can_receive_sms(address: str) -> bool:
    """True for a phone number in E.164; False for short codes and alphanumeric senders."""
    try:
        return normalize(address) == address
    except ValidationFailed:
        return False


def calling_code(e164: str) -> str:
    """The country calling code of an E.164 number, as ``+1``, ``+44``..."""
    return f"+{_parse_e164(e164).country_code}"


PLUM_DESTINATIONS = frozenset({"+1"})
"""Where Plum DEV's Queue SMS API can send: North American (+1) numbers.

INFERRED: Plum names no countries; its ``to`` is "10 digits" or "a 1 before the 10
digits" (reference/plum-dev-sms-api.md, Queue parameters), which only a +1 number has.
"""
PLUM_DESTINATIONS_RULE = (
    "is outside the countries Plum DEV sends SMS to (+1 numbers only: the US, Canada and "
    "the other North American Numbering Plan countries)"
)


def in_countries(e164: str, countries: frozenset[str]) -> bool:
    """Whether ``e164`` is in ``countries``: calling codes (``+1``), ISO regions (``CA``), ``*``."""
    if "*" in countries:
        return True
    try:
        parsed = _parse_e164(e164)
    except phonenumbers.NumberParseException:
        return False
    if f"+{parsed.country_code}" in countries:
        return True
    region = phonenumbers.region_code_for_number(parsed)
    return region is not None and region in countries


_pydantic_sender = pydantic_check(sender_address)
_pydantic_phone = pydantic_check(normalize)


E164 = Annotated[str, AfterValidator(_pydantic_phone)]
"""A pydantic field type: any accepted phone form in, E.164 out."""

Address = Annotated[str, AfterValidator(_pydantic_sender)]
"""A pydantic field type for a sender as Plum delivers it: E.164 if a phone number."""
