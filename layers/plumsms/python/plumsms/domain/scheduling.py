"""When a message is due: time zones, quiet hours and recurrence rules. Pure.

Wall-clock rules (``09:00 every weekday in America/New_York``) are evaluated in their
time zone with ``zoneinfo``, so they keep their local time across daylight-saving
changes. Two DST cases need a decision, made once here (``wall_to_utc``):

- a wall time that does not exist (the spring-forward gap, e.g. 02:30 on the day
  clocks jump from 02:00 to 03:00) happens at the same distance after the gap's start
  in the new offset: 02:30 becomes 03:30;
- a wall time that happens twice (the fall-back hour) happens the first time only, so a
  rule never fires twice in one night.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import cache
from typing import Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)

from plumsms.domain.errors import ValidationFailed

MAX_AHEAD = timedelta(days=365)
"""The latest a message may be due, counted from when it is requested."""
PAST_GRACE = timedelta(seconds=60)
"""A due time this little in the past is taken as "now" (clock skew, slow clients)."""
MAX_OCCURRENCES = 1000
CRON_SEARCH_DAYS = 5 * 366
"""How far a cron rule is searched for its next match before it counts as never."""


# -- time zones ----------------------------------------------------------------------


@cache
def zone(name: str, field: str = "time_zone") -> ZoneInfo:
    """The IANA time zone ``name`` (e.g. ``Europe/Paris``), or ``ValidationFailed``."""
    if not isinstance(name, str) or not name or len(name) > 64 or name.startswith("/"):
        raise ValidationFailed(field, "must be an IANA time zone name such as America/New_York")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationFailed(
            field, "must be an IANA time zone name such as America/New_York"
        ) from exc


def zone_for_number(e164: str) -> str | None:
    """The time zone of a phone number when its prefix maps to exactly one zone."""
    import phonenumbers  # noqa: PLC0415 - the timezone data loads lazily, on first use
    from phonenumbers import timezone as number_zones  # noqa: PLC0415

    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    zones = number_zones.time_zones_for_number(parsed)
    if len(zones) != 1 or zones[0] == number_zones.UNKNOWN_TIMEZONE:
        return None
    return str(zones[0])


def wall_to_utc(wall: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant of a naive wall-clock time in ``tz`` (DST rules: module docstring).

    ``zoneinfo`` with ``fold=0`` already gives both answers: a gap time gets the offset
    before the gap (so it lands after the gap), a repeated time its first occurrence.
    """
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def parse_instant(value: str | datetime, tz: ZoneInfo | None, field: str) -> datetime:
    """An ISO 8601 date-time as a UTC instant.

    With an offset (``Z``, ``+02:00``) the offset decides; without one it is a wall time
    in ``tz``, and without ``tz`` it is refused rather than guessed.
    """
    if isinstance(value, datetime):
        parsed = value
    else:
        text = value.strip() if isinstance(value, str) else ""
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValidationFailed(field, "must be an ISO 8601 date and time") from exc
        if "T" not in text.upper() and " " not in text:
            raise ValidationFailed(field, "must be an ISO 8601 date and time, not a date")
    try:
        if parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
        if tz is None:
            raise ValidationFailed(field, "needs an offset (e.g. Z or -05:00) or a time_zone")
        return wall_to_utc(parsed, tz)
    except OverflowError as exc:  # 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        raise ValidationFailed(field, "is out of range once converted to UTC") from exc


def check_due(due: datetime, now: datetime, field: str = "send_at") -> datetime:
    """``due`` if it is acceptable as a due time at ``now`` (a little past becomes now)."""
    if due < now - PAST_GRACE:
        raise ValidationFailed(field, "is in the past")
    if due > now + MAX_AHEAD:
        raise ValidationFailed(field, "is more than one year ahead")
    return max(due, now)


# -- quiet hours ---------------------------------------------------------------------

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)(:00)?$")


def _check_zone_name(value: str | None) -> str | None:
    """A pydantic check: ``value`` is None or a known time zone name."""
    if value is not None:
        try:
            zone(value)
        except ValidationFailed as exc:
            raise ValueError(exc.rule) from exc
    return value


def _clock_time(value: object) -> time:
    if isinstance(value, time):
        return value.replace(second=0, microsecond=0, tzinfo=None)
    match = _CLOCK.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError("must be a local time HH:MM (24-hour)")
    return time(int(match.group(1)), int(match.group(2)))


class QuietHours(BaseModel):
    """A daily local-time window ``[start, end)`` in which nothing is sent.

    ``start`` after ``end`` spans midnight (``21:00``-``08:00``). A send due inside the
    window moves to the window's end. ``time_zone`` may be left out in requests; the
    resolved zone is then filled in by the caller (see ``plumsms.domain.sending``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: time
    end: time
    time_zone: str | None = None

    @field_validator("start", "end", mode="before")
    @classmethod
    def _hh_mm(cls, value: object) -> time:
        return _clock_time(value)

    @field_serializer("start", "end")
    def _as_hh_mm(self, value: time) -> str:
        return value.strftime("%H:%M")

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return _check_zone_name(value)

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self

    def _tz(self) -> ZoneInfo:
        if self.time_zone is None:
            raise ValidationFailed("quiet_hours.time_zone", "is required")
        return zone(self.time_zone)

    def _inside(self, wall: time) -> bool:
        if self.start < self.end:
            return self.start <= wall < self.end
        return wall >= self.start or wall < self.end

    def contains(self, instant: datetime) -> bool:
        """True when ``instant`` falls inside the window, in the window's time zone."""
        local = instant.astimezone(self._tz())
        return self._inside(local.time().replace(tzinfo=None))

    def release(self, instant: datetime) -> datetime:
        """``instant`` if outside the window, else the window's end (UTC)."""
        tz = self._tz()
        local = instant.astimezone(tz)
        wall = local.time().replace(tzinfo=None)
        if not self._inside(wall):
            return instant
        end_day = local.date()
        if self.start > self.end and wall >= self.start:
            end_day += timedelta(days=1)
        wall_end = datetime.combine(end_day, self.end)
        released = wall_to_utc(wall_end, tz)
        if released <= instant:
            # The end's wall time happens twice tonight and we are in the repeat.
            released = wall_end.replace(tzinfo=tz, fold=1).astimezone(UTC)
        return max(released, instant)


# -- recurrence ----------------------------------------------------------------------


class Weekday(StrEnum):
    """Days of the week, iCalendar style."""

    MO = "MO"
    TU = "TU"
    WE = "WE"
    TH = "TH"
    FR = "FR"
    SA = "SA"
    SU = "SU"

    @property
    def number(self) -> int:
        """Monday 0 .. Sunday 6, as ``date.weekday()``."""
        return list(Weekday).index(self)


class Cron:
    """A five-field cron expression: minute hour day-of-month month day-of-week.

    Supports ``*``, numbers, ranges ``a-b``, steps ``*/n`` and ``a-b/n``, lists, month
    names (JAN..DEC) and weekday names (SUN..SAT; 0 and 7 are Sunday). As in Vixie cron,
    when both day fields are restricted a day matching either one matches.
    """

    _NAMES: dict[str, dict[str, int]] = {  # noqa: RUF012 - read-only lookup table
        "month": {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m},
        "dow": {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])},
    }
    _RANGES: dict[str, tuple[int, int]] = {  # noqa: RUF012
        "minute": (0, 59),
        "hour": (0, 23),
        "dom": (1, 31),
        "month": (1, 12),
        "dow": (0, 7),
    }

    def __init__(self, expression: str) -> None:
        fields = expression.split() if isinstance(expression, str) else []
        if len(fields) != 5:
            raise ValueError("cron needs five fields: minute hour day-of-month month weekday")
        self.expression = " ".join(fields)
        names = ("minute", "hour", "dom", "month", "dow")
        parsed = {name: self._field(name, text) for name, text in zip(names, fields, strict=True)}
        self.minutes = sorted(parsed["minute"])
        self.hours = sorted(parsed["hour"])
        self.days = parsed["dom"]
        self.months = parsed["month"]
        self.weekdays = {d % 7 for d in parsed["dow"]}  # cron: 0 = Sunday
        self.dom_any = fields[2] == "*"
        self.dow_any = fields[4] == "*"

    def _value(self, name: str, text: str) -> int:
        table = self._NAMES.get(name, {})
        if text.upper() in table:
            return table[text.upper()]
        if not text.isdigit():
            raise ValueError(f"cron {name} field: {text!r} is not a number")
        return int(text)

    def _field(self, name: str, text: str) -> set[int]:
        low, high = self._RANGES[name]
        values: set[int] = set()
        for part in text.split(","):
            spec, _, step_text = part.partition("/")
            step = int(step_text) if step_text.isdigit() else (1 if not step_text else 0)
            if step < 1:
                raise ValueError(f"cron {name} field: bad step in {part!r}")
            if spec == "*":
                first, last = low, high
            elif "-" in spec:
                a, _, b = spec.partition("-")
                first, last = self._value(name, a), self._value(name, b)
            else:
                first = self._value(name, spec)
                last = high if step_text else first
            if not (low <= first <= last <= high):
                raise ValueError(f"cron {name} field: {part!r} is outside {low}-{high}")
            values.update(range(first, last + 1, step))
        return values

    def matches_day(self, day: date) -> bool:
        """True when the day fields and the month allow ``day``."""
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.weekday() + 1) % 7 in self.weekdays
        if self.dom_any and self.dow_any:
            return True
        if self.dom_any:
            return dow
        if self.dow_any:
            return dom
        return dom or dow

    def walls_from(self, start: datetime) -> Iterator[datetime]:
        """Matching naive wall times at or after ``start`` (naive), in order."""
        day = start.date()
        idle_days = 0
        while idle_days <= CRON_SEARCH_DAYS and day < date.max:
            if self.matches_day(day):
                for hour in self.hours:
                    for minute in self.minutes:
                        wall = datetime.combine(day, time(hour, minute))
                        if wall >= start:
                            idle_days = 0
                            yield wall
            idle_days += 1
            day += timedelta(days=1)


def _add_months(day: date, months: int) -> date:
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


class Recurrence(BaseModel):
    """A repeating schedule in a time zone, ending after ``count`` sends or at ``until``.

    Either ``frequency`` (daily, weekly or monthly, every ``interval`` units, weekly on
    ``by_weekday`` days) counted from the first due time's wall clock, or ``cron``. A
    monthly rule on the 29th-31st falls on the month's last day in shorter months.
    ``time_zone`` may be left out in requests; the caller fills in the resolved zone.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    frequency: Literal["daily", "weekly", "monthly"] | None = None
    cron: str | None = Field(default=None, max_length=120)
    interval: int = Field(default=1, ge=1, le=366)
    by_weekday: tuple[Weekday, ...] | None = Field(default=None, min_length=1, max_length=7)
    count: int | None = Field(default=None, ge=1, le=MAX_OCCURRENCES)
    until: datetime | date | None = None
    time_zone: str | None = None

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return _check_zone_name(value)

    @field_validator("until", mode="before")
    @classmethod
    def _date_stays_a_date(cls, value: object) -> object:
        # pydantic would read "2025-12-31" as midnight, the start of the day it names.
        if isinstance(value, str) and _DATE_ONLY.match(value.strip()):
            return date.fromisoformat(value.strip())
        return value

    @field_validator("until")
    @classmethod
    def _until_in_range(cls, value: datetime | date | None) -> datetime | date | None:
        # A schedule ends within a few years; the far edges of the calendar overflow
        # once moved to UTC or past the end of their day.
        if value is not None and not 2000 <= value.year <= 9000:
            raise ValueError("is out of range (years 2000 to 9000)")
        return value

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        return None if value is None else Cron(value).expression

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.frequency is None) == (self.cron is None):
            raise ValueError("give exactly one of frequency or cron")
        if self.count is None and self.until is None:
            raise ValueError("give an end: count or until")
        if self.by_weekday is not None and self.frequency != "weekly":
            raise ValueError("by_weekday goes with frequency weekly")
        if self.cron is not None and self.interval != 1:
            raise ValueError("interval goes with frequency, not cron")
        return self

    def _until_utc(self, tz: ZoneInfo) -> datetime | None:
        if self.until is None:
            return None
        if isinstance(self.until, datetime):
            if self.until.tzinfo is None:
                return wall_to_utc(self.until, tz)
            return self.until.astimezone(UTC)
        # A date ends at the end of that day, local time.
        return wall_to_utc(datetime.combine(self.until + timedelta(days=1), time()), tz)

    def _walls(self, anchor: datetime) -> Iterator[datetime]:
        """Nominal wall times from ``anchor`` (naive, local) on, in order."""
        if self.cron is not None:
            yield from Cron(self.cron).walls_from(anchor)
            return
        clock = anchor.time()
        if self.frequency == "daily":
            for k in range(MAX_OCCURRENCES + 1):
                yield anchor + timedelta(days=k * self.interval)
        elif self.frequency == "monthly":
            for k in range(MAX_OCCURRENCES + 1):
                yield datetime.combine(_add_months(anchor.date(), k * self.interval), clock)
        else:
            days = sorted({d.number for d in self.by_weekday or ()} or {anchor.weekday()})
            week_start = anchor.date() - timedelta(days=anchor.weekday())
            for k in range(MAX_OCCURRENCES + 1):
                monday = week_start + timedelta(weeks=k * self.interval)
                for weekday in days:
                    wall = datetime.combine(monday + timedelta(days=weekday), clock)
                    if wall >= anchor:
                        yield wall

    def occurrences(self, anchor: datetime, tz: ZoneInfo) -> Iterator[datetime]:
        """Every nominal due instant (UTC) of the series whose first wall time is ``anchor``.

        Ends after ``count`` instants (and never goes beyond ``MAX_OCCURRENCES``) or past
        ``until``. Wall times that DST maps onto the same or an earlier instant than the
        previous one are skipped.
        """
        until = self._until_utc(tz)
        limit = min(self.count or MAX_OCCURRENCES, MAX_OCCURRENCES)
        produced = 0
        previous: datetime | None = None
        for wall in self._walls(anchor):
            instant = wall_to_utc(wall, tz)
            if previous is not None and instant <= previous:
                continue
            if until is not None and instant > until:
                return
            yield instant
            previous = instant
            produced += 1
            if produced >= limit:
                return

    def first(self, start: datetime, tz: ZoneInfo) -> tuple[datetime, datetime] | None:
        """(anchor wall time, first instant) of a series starting at ``start`` (UTC).

        A frequency rule starts at ``start`` itself; a cron rule at its first match at or
        after ``start``. None when the rule never matches.
        """
        wall = start.astimezone(tz).replace(tzinfo=None)
        if self.cron is None:
            first = next(self.occurrences(wall, tz), None)
            if first is None:
                return None
            if first == wall_to_utc(wall, tz):
                # ``start`` itself, even when its wall time is in a repeated DST hour.
                first = start
            return wall, first
        wall = wall.replace(second=0, microsecond=0)
        while True:
            first = next(self.occurrences(wall, tz), None)
            if first is None or first >= start:
                return None if first is None else (wall, first)
            # A match in the repeated DST hour maps to its first pass, before ``start``.
            wall = first.astimezone(tz).replace(tzinfo=None) + timedelta(minutes=1)

    def next_after(self, anchor: datetime, tz: ZoneInfo, index: int) -> datetime | None:
        """The nominal instant of occurrence ``index + 1`` (1-based), or None at the end."""
        for position, instant in enumerate(self.occurrences(anchor, tz), start=1):
            if position == index + 1:
                return instant
        return None
