"""Send requests: what the API accepts, the rules a send must follow, and its schedule.

Pure: the caller passes the time, the account's SMS numbers and nothing else. The opt-out
check needs the store and happens in ``plumsms.usecases.sending``.

Time zones, in order of preference:

- a ``send_at`` without an offset is a wall time in ``time_zone`` (else in
  ``recurrence.time_zone``); without either it is refused, never guessed;
- quiet hours are in the recipient's zone: ``quiet_hours.time_zone``, else
  ``time_zone``, else the zone of the recipient's number when its prefix maps to
  exactly one zone (phonenumbers' timezone data), else the request is refused;
- a recurrence runs in ``recurrence.time_zone``, else ``time_zone``, else the number's
  zone as above.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from plumsms.domain import pci, scheduling, segments
from plumsms.domain.errors import ValidationFailed
from plumsms.domain.models import MAX_BODY_CHARS, Message, UtcDatetime
from plumsms.domain.phone import E164, PLUM_DESTINATIONS, PLUM_DESTINATIONS_RULE, in_countries
from plumsms.domain.scheduling import QuietHours, Recurrence

MAX_IDEMPOTENCY_KEY = 255
IDEMPOTENCY_TTL = timedelta(hours=24)
"""How long an Idempotency-Key is remembered; a retry after that creates a new message."""
CARD_NUMBER_RULE = (
    "contains what looks like a payment card number; card data must never be sent by SMS"
)


def _plum_can_send_to(number: str) -> str:
    # Refused here, not by Plum at send time: the caller learns it now, with the field.
    if not in_countries(number, PLUM_DESTINATIONS):
        raise ValueError(PLUM_DESTINATIONS_RULE)
    return number


class SendRequest(BaseModel):
    """``POST /messages``: one SMS now, at a time, or on a recurring schedule."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    to: Annotated[E164, AfterValidator(_plum_can_send_to)]
    from_: E164 = Field(alias="from")
    body: str
    send_at: str | None = Field(default=None, max_length=64)
    time_zone: str | None = Field(default=None, max_length=64)
    recurrence: Recurrence | None = None
    quiet_hours: QuietHours | None = None


class EditRequest(BaseModel):
    """``PATCH /messages/{id}``: move a pending message or change its body."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    send_at: str | None = Field(default=None, max_length=64)
    time_zone: str | None = Field(default=None, max_length=64)
    body: str | None = None


class Schedule(BaseModel):
    """How a message's due time was decided; stored with it to plan later occurrences.

    ``anchor`` is the wall time (naive, in ``recurrence.time_zone``) the series counts
    from; ``occurrence`` is this message's position in the series (1-based);
    ``nominal_at`` its time under the rule before quiet hours moved it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    time_zone: str | None = None
    quiet_hours: QuietHours | None = None
    recurrence: Recurrence | None = None
    anchor: datetime | None = None
    occurrence: int = Field(default=1, ge=1)
    series_id: str | None = None
    nominal_at: UtcDatetime | None = None

    def to_json(self) -> str:
        """The stored form."""
        return self.model_dump_json(exclude_none=True)

    @classmethod
    def from_json(cls, raw: str | None) -> Schedule:
        """Rebuild from the stored form (an empty schedule when nothing was stored)."""
        return cls.model_validate_json(raw) if raw else cls()

    def public(self) -> dict[str, Any]:
        """What the API shows of the schedule."""
        shown = self.model_dump(
            mode="json", include={"quiet_hours", "recurrence", "occurrence", "series_id"}
        )
        return {k: v for k, v in shown.items() if v is not None}

    def shown(self) -> dict[str, Any] | None:
        """What the log shows: the public schedule of a series or of a send with quiet
        hours; None for a plain one-off send."""
        if self.recurrence is None and self.quiet_hours is None and self.series_id is None:
            return None
        return self.public()


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """What a request with an ``Idempotency-Key`` created, and the answer it got."""

    key: str
    fingerprint: str
    message_id: str
    response: str
    expires_at: int
    """Unix seconds after which the key is forgotten."""
    taken_at: int
    """Unix seconds when the request took the key (a record that expired before then
    no longer holds it)."""


@dataclass(frozen=True, slots=True)
class SendPlan:
    """When a validated send is due (UTC), and its schedule."""

    due: datetime
    schedule: Schedule


def check_body(body: str, field: str = "body") -> segments.SegmentInfo:
    """Refuse empty, over-long and card-carrying bodies; the body's segment info."""
    if not body or not body.strip():
        raise ValidationFailed(field, "must not be empty")
    if len(body) > MAX_BODY_CHARS:
        raise ValidationFailed(field, f"must be at most {MAX_BODY_CHARS} characters")
    if pci.contains_card_number(body):
        raise ValidationFailed(field, CARD_NUMBER_RULE)
    return segments.analyze(body)


def check_sender(from_: str, sms_numbers: tuple[str, ...]) -> None:
    """Refuse a ``from`` that is not one of the account's SMS numbers."""
    if from_ not in sms_numbers:
        raise ValidationFailed("from", "is not one of this account's SMS numbers")


def check_recipient(to: str, sms_numbers: tuple[str, ...]) -> None:
    """Refuse a ``to`` that is one of the account's own numbers: a loop, never a customer."""
    if to in sms_numbers:
        raise ValidationFailed(
            "to", "is one of this account's own SMS numbers (a message to itself would loop)"
        )


_Zoned = TypeVar("_Zoned", Recurrence, QuietHours)


def _in_recipient_zone(part: _Zoned | None, request: SendRequest, field: str) -> _Zoned | None:
    """``part`` with its time zone settled: its own, else the request's, else the
    recipient's number's (``field`` names it in the error when none applies)."""
    if part is None:
        return None
    name = part.time_zone or request.time_zone or scheduling.zone_for_number(request.to)
    if name is None:
        raise ValidationFailed(
            field,
            "is required: the recipient's number does not map to a single time zone",
        )
    scheduling.zone(name, field)
    return part.model_copy(update={"time_zone": name})


def plan_send(request: SendRequest, now: datetime, sms_numbers: tuple[str, ...]) -> SendPlan:
    """Validate ``request`` at ``now``; the message's due time and schedule."""
    check_sender(request.from_, sms_numbers)
    check_recipient(request.to, sms_numbers)
    check_body(request.body)
    request_zone = scheduling.zone(request.time_zone) if request.time_zone else None
    recurrence = _in_recipient_zone(request.recurrence, request, "recurrence.time_zone")
    quiet = _in_recipient_zone(request.quiet_hours, request, "quiet_hours.time_zone")
    if request.send_at is not None:
        wall_zone = request_zone
        if wall_zone is None and recurrence is not None and recurrence.time_zone:
            wall_zone = scheduling.zone(recurrence.time_zone)
        start = scheduling.check_due(
            scheduling.parse_instant(request.send_at, wall_zone, "send_at"), now
        )
    else:
        start = now
    schedule = Schedule(time_zone=request.time_zone, quiet_hours=quiet, recurrence=recurrence)
    nominal = start
    if recurrence is not None:
        first = recurrence.first(start, scheduling.zone(recurrence.time_zone or "UTC"))
        if first is None:
            raise ValidationFailed("recurrence", "never comes due")
        anchor, nominal = first
        schedule = schedule.model_copy(update={"anchor": anchor, "nominal_at": nominal})
    due = quiet.release(nominal) if quiet is not None else nominal
    if due > now + scheduling.MAX_AHEAD:
        raise ValidationFailed("send_at", "is more than one year ahead")
    return SendPlan(due=due, schedule=schedule)


@dataclass(frozen=True, slots=True)
class EditPlan:
    """The changes a PATCH makes: a new due time, a new body, or both."""

    due: datetime | None
    body: str | None
    segments: segments.SegmentInfo | None


def plan_edit(edit: EditRequest, schedule: Schedule, now: datetime) -> EditPlan:
    """Validate a PATCH against the message's schedule at ``now``.

    A new ``send_at`` moves this message only (a series keeps its rule) and still
    respects the message's quiet hours.
    """
    if edit.time_zone is not None and edit.send_at is None:
        raise ValidationFailed("time_zone", "goes with send_at")
    if edit.send_at is None and edit.body is None:
        raise ValidationFailed("body", "give send_at or body to change")
    info = check_body(edit.body) if edit.body is not None else None
    due: datetime | None = None
    if edit.send_at is not None:
        zone_name = edit.time_zone or schedule.time_zone
        if zone_name is None and schedule.recurrence is not None:
            zone_name = schedule.recurrence.time_zone
        wall_zone = scheduling.zone(zone_name) if zone_name else None
        due = scheduling.check_due(
            scheduling.parse_instant(edit.send_at, wall_zone, "send_at"), now
        )
        if schedule.quiet_hours is not None:
            due = schedule.quiet_hours.release(due)
    return EditPlan(due=due, body=edit.body, segments=info)


def next_occurrence(schedule: Schedule, now: datetime) -> tuple[Schedule, datetime] | None:
    """The schedule and due time of the series' next message, or None when it has ended.

    Occurrences whose time passed while nothing ran (an outage) are skipped and count
    towards the series' ``count``: a late reminder is worse than a missed one.
    """
    rule = schedule.recurrence
    if rule is None or schedule.anchor is None or rule.time_zone is None:
        return None
    tz = scheduling.zone(rule.time_zone)
    index = schedule.occurrence
    for position, nominal in enumerate(rule.occurrences(schedule.anchor, tz), start=1):
        if position <= index:
            continue
        if nominal < now - scheduling.PAST_GRACE:
            continue
        due = schedule.quiet_hours.release(nominal) if schedule.quiet_hours else nominal
        return schedule.model_copy(update={"occurrence": position, "nominal_at": nominal}), due
    return None


def request_fingerprint(payload: object) -> str:
    """A digest of a JSON request body that ignores key order and whitespace."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def check_idempotency_key(key: str) -> str:
    """Refuse keys that are empty, too long or not printable ASCII."""
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isascii() or not key.isprintable():
        raise ValidationFailed(
            "Idempotency-Key", f"must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"
        )
    return key


# -- the outbox's records, shared by the dispatcher and the store adapter -------------


@dataclass(frozen=True, slots=True)
class DueRef:
    """A due message as the outbox lists it: enough to claim it."""

    message_id: str
    to: str
    from_: str
    due_at: datetime
    """When it came due as listed; a claim succeeds only while this is unchanged."""


@dataclass(frozen=True, slots=True)
class DueCursor:
    """Where the next page of due messages starts (after this message in due order).

    Opaque to the dispatcher, which only hands it back to the outbox that made it.
    """

    due_at: datetime
    message_id: str


@dataclass(frozen=True, slots=True)
class DuePage:
    """Due messages in due order, and where the next page starts (None: no more)."""

    items: list[DueRef]
    next_position: DueCursor | None


@dataclass(frozen=True, slots=True)
class HeldLease:
    """The dispatcher's lease, taken, with what the run before left in it: the senders it
    found messages for (the next run's feed reads on until it finds each of them)."""

    senders: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Claim:
    """A message a dispatcher holds: its token, when it was first claimed, tries so far."""

    message: Message
    schedule: Schedule
    token: str
    claimed_at: datetime | None
    attempts: int
