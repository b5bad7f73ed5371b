"""What Plum POSTs to a Result URL: the message id, its latest status, the resource fields.

INFERRED (plum-dev-sms-api.md section 2): form-encoded ``sms_message_id`` and ``status``,
possibly with the other resource fields (``to``, ``from``, ``body``,
``request_timestamp``, ``result_url``); JSON bodies are accepted too, flat or wrapped in
``{"sms_message": {...}}``. This module is the one place that shape is decided.

Only ``sms_message_id`` and ``status`` are required and checked. The other fields are
informative: kept loose, so a field we never use cannot get a real callback rejected.
A status we do not know is accepted as it is (the state machine keeps it in the history).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from plumsms.domain.errors import ValidationFailed
from plumsms.domain.models import PlumMessageId

MAX_STATUS_CHARS = 64
_REF = re.compile(r"[A-Za-z0-9_-]{1,64}")

ReportedStatus = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_lower=True,
        min_length=1,
        max_length=MAX_STATUS_CHARS,
        pattern=r"^[^\x00-\x1f\x7f]+$",
    ),
]
"""A status as Plum wrote it, trimmed and lower-cased; unknown values are allowed."""

_Loose = Annotated[str, StringConstraints(max_length=2048)]


class StatusCallback(BaseModel):
    """One Result URL POST."""

    model_config = ConfigDict(
        frozen=True, extra="ignore", populate_by_name=True, coerce_numbers_to_str=True
    )

    sms_message_id: PlumMessageId
    status: ReportedStatus
    to: _Loose | None = None
    from_: _Loose | None = Field(default=None, alias="from")
    body: str | None = None
    request_timestamp: _Loose | None = None
    result_url: _Loose | None = None


def callback_fields(data: Any) -> dict[str, Any]:
    """The fields of a JSON callback body: a flat object, or one under ``sms_message``."""
    if isinstance(data, dict) and isinstance(data.get("sms_message"), dict):
        data = data["sms_message"]
    if not isinstance(data, dict):
        raise ValidationFailed("body", "must be a JSON object")
    return data


def parse_ref(raw: str | None) -> str | None:
    """Our message id from the Result URL's ``ref`` parameter (optional)."""
    if raw is None or raw == "":
        return None
    if not _REF.fullmatch(raw):
        raise ValidationFailed("ref", "must be a message id (letters, digits, '-' or '_')")
    return raw
