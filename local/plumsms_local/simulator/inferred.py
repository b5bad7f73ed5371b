"""Every choice the simulator makes that Plum's documentation does not spell out.

All of it is **inferred**: ``shared/reference/plum-dev-sms-api.md`` documents the
services, the envelope, the resource fields and a few failure strings, but not these
names, shapes or codes. Each value below is the most likely shape; they live in this
one module so that a fact learned later changes one line, and nothing else in the
simulator hard-codes any of them.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType
from typing import Final

from plumsms.domain.phone import plum_from_digits, plum_to_digits

QUERY_PARAMS: Final = MappingProxyType(
    {
        # sms/status
        "message_id": "sms_message_id",
        # sms/messages (the documented order: skip, max, sort, start, end, type,
        # phone number, which side that number is on)
        "skip": "offset",
        "max": "limit",
        "sort": "sort",
        "start": "start",
        "end": "end",
        "type": "type",
        "phone_number": "phone_number",
        "number_side": "phone_number_type",
        # sms/conversation (plus skip, max, sort, start and end above)
        "account_number": "account_phone_number",
        "customer_number": "customer_phone_number",
    }
)
"""Meaning -> query parameter name of the GET services.

The names are inferred, and this is the simulator's own reading of Plum's reference,
written apart from the bundle's client (``plumsms.adapters.plum.client.QUERY_PARAMETERS``)
on purpose: a simulator that imported the client's guesses could never catch a wrong
one. The simulator refuses any parameter it does not know (400), so a client whose
names drift from these fails the contract tests.
"""

LIMIT_MIN: Final = 50
LIMIT_MAX: Final = 1000
DEFAULT_LIMIT: Final = 50
SORT_VALUES: Final = ("asc", "desc")
MESSAGES_DEFAULT_SORT: Final = "desc"  # newest first, as a log reads
CONVERSATION_DEFAULT_SORT: Final = "asc"  # oldest first, as a chat reads
TYPE_VALUES: Final = ("inbound", "outbound", "all")  # "outbound" includes replies
NUMBER_SIDES: Final = ("account", "customer")

STATUS_RESULT_KEY: Final = "sms_message"
"""sms/status answers ``{"sms_message": {resource}}``."""
LIST_RESULT_KEY: Final = "sms_messages"
"""sms/queue, sms/messages and sms/conversation answer ``{"sms_messages": [...]}``."""
TOTAL_RESULT_KEY: Final = "total"
"""sms/messages and sms/conversation also say how many matched before paging."""
XML_LIST_ITEMS: Final = MappingProxyType({LIST_RESULT_KEY: STATUS_RESULT_KEY})
"""In XML, a list element's children are named after its singular."""
XML_CONTENT_TYPE: Final = "text/xml; charset=utf-8"
JSON_CONTENT_TYPE: Final = "application/json"

CALLBACK_FIELDS: Final = (
    "sms_message_id",
    "status",
    "to",
    "from",
    "body",
    "request_timestamp",
    "result_url",
)
"""Form fields POSTed to a result URL: the documented two, then the whole resource."""
CALLBACK_ON_QUEUED: Final = True
"""The initial ``queued`` status is POSTed too, not only the changes after it."""


def account_digits(e164: str) -> str:
    """An account SMS number as Plum writes it in resources and POSTs: 10 digits (NANP)."""
    return plum_from_digits(e164)


def customer_digits(e164: str) -> str:
    """A customer's number as Plum writes it: 11 digits with the leading 1, no plus."""
    return plum_to_digits(e164)


class FailureKind(StrEnum):
    """Why a ``/ws/`` call failed; decides the HTTP status (undocumented by Plum)."""

    UNAUTHORIZED = "unauthorized"
    BAD_REQUEST = "bad_request"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"


FAILURE_HTTP_STATUS: Final = MappingProxyType(
    {
        FailureKind.UNAUTHORIZED: 401,
        FailureKind.BAD_REQUEST: 400,
        FailureKind.NOT_FOUND: 404,
        FailureKind.METHOD_NOT_ALLOWED: 405,
    }
)

# Failure strings Plum's documentation does not show. The documented ones
# ("Invalid 'to' phone number", "Attempt to send to unsubscribed recipient",
# "To number: ..., is not a mobile number", "Unauthorized access to ...") are in
# plumsms_local.simulator.engine; only the tail of the last one is inferred here.
UNAUTHORIZED_TEMPLATE: Final = "Unauthorized access to {resource}"
"""``{resource}`` is the service path after ``/ws/``, e.g. ``sms/queue.json``."""
INVALID_FROM: Final = "Invalid 'from' phone number"
MISSING_BODY: Final = "Error sending sms request (missing 'body')"
NOT_FORM_ENCODED: Final = (
    "Error sending sms request (Content-Type must be application/x-www-form-urlencoded)"
)
MESSAGE_NOT_FOUND: Final = "SMS message not found"
INVALID_PARAMETER_TEMPLATE: Final = "Invalid '{name}' parameter ({rule})"
UNKNOWN_SERVICE: Final = "Unknown service"
METHOD_NOT_ALLOWED_TEMPLATE: Final = "Method {method} not allowed on {resource}"

OPT_OUT_CONFIRMATION_DELIVERED: Final = True
"""A reply to an opt-out message, addressed to the phone that opted out, is delivered
(one confirmation, as carriers allow); every later send to that phone is refused."""

HELP_REPLY_TEXT: Final = (
    "Plum SMS simulator: the carrier answers HELP. Reply STOP to unsubscribe, "
    "START to subscribe again."
)
"""What the carrier texts back to HELP/INFO (the message is not forwarded to Plum)."""
