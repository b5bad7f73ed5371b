"""One rule for every time smsctl reads (``--at``, ``--in``, ``--until``, ``--since``...).

- ISO 8601 with a zone (``2026-07-01T09:00Z``, ``...+02:00``) is that instant.
- ISO 8601 without a zone (``2026-07-01T09:00``, or a date) is a wall-clock time in
  ``--tz`` when the command has one, else in this computer's zone; smsctl says which.
- ``+10m`` (also ``--in 10m``) is that long from now; ``-2h``, or ``2h`` for the search
  filters, is that long ago. Units: s, m, h, d, w.
- ``09:00`` alone is the next 09:00 (today if still ahead, else tomorrow) in ``--tz`` or
  this computer's zone.
- ``now``, ``today`` and ``yesterday`` (local midnight) are understood too.

No GNU ``date -d`` needed. Errors name the flag the person typed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from plumsms_local.cli.errors import UsageError

_DURATION = re.compile(r"^([+-]?)\s*(\d+)\s*([smhdw])$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
FORMS = "ISO 8601 (2026-07-01T09:00, local time if no zone; or ...Z), 09:00, +10m, 2h, 7d, today"


@dataclass(frozen=True, slots=True)
class When:
    """A time read from the command line."""

    text: str
    """ISO 8601: with a zone, or wall-clock when ``zone`` names the zone it is in."""
    zone: str | None = None
    """The IANA zone a wall-clock ``text`` is in (``--tz`` or this computer's)."""
    assumed_zone: bool = False
    """True when the person gave no zone and smsctl took this computer's."""

    def utc(self) -> str:
        """The instant in UTC, ISO 8601 with ``Z``."""
        moment = datetime.fromisoformat(self.text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(self.zone) if self.zone else None)
            if moment.tzinfo is None:
                moment = moment.astimezone()
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def local_zone() -> str | None:
    """This computer's IANA zone name, if it can be told (``TZ``, then /etc/localtime)."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        target = str(Path("/etc/localtime").resolve())
        candidates.append(target.split("zoneinfo/", 1)[1] if "zoneinfo/" in target else "")
    except OSError:
        pass
    for name in candidates:
        if name:
            try:
                ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
            return name
    return None


def zone(value: str, flag: str) -> str:
    """An IANA zone name, checked; ``UsageError`` naming ``flag`` otherwise."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"{flag}: {value!r} is not an IANA time zone (e.g. Europe/Paris, America/New_York)"
        ) from None
    return value


def parse(
    value: str,
    flag: str,
    *,
    tz: str | None = None,
    bare_duration_is_past: bool = False,
    now: datetime | None = None,
) -> When:
    """Read ``value`` by the rule above; ``UsageError`` naming ``flag`` if it breaks it."""
    now = now or datetime.now(UTC)
    text = value.strip()
    lowered = text.lower()
    match = _DURATION.fullmatch(lowered)
    if match:
        sign, amount, unit = match.groups()
        if not sign and not bare_duration_is_past:
            raise UsageError(f"{flag}: {value!r} is ambiguous; write +{text} for {text} from now")
        delta = timedelta(**{_UNITS[unit]: int(amount)})
        moment = now + delta if sign == "+" else now - delta
        return When(moment.astimezone(UTC).isoformat().replace("+00:00", "Z"))
    zone_name = tz or local_zone()
    local: tzinfo | None = ZoneInfo(zone_name) if zone_name else None
    if lowered == "now":
        return When(now.astimezone(UTC).isoformat().replace("+00:00", "Z"))
    clock = _CLOCK.fullmatch(text)
    if clock and int(clock[1]) < 24 and int(clock[2]) < 60:
        wall_now = now.astimezone(local).replace(tzinfo=None)
        moment = wall_now.replace(hour=int(clock[1]), minute=int(clock[2]), second=0, microsecond=0)
        if moment <= wall_now:
            moment += timedelta(days=1)
        return _wall_clock(moment.isoformat(), tz)
    if lowered in {"today", "yesterday"}:
        today = now.astimezone(local).date()
        day = today - timedelta(days=1) if lowered == "yesterday" else today
        return _wall_clock(datetime.combine(day, time()).isoformat(), tz)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = datetime.combine(date.fromisoformat(text), time())
        except ValueError:
            raise UsageError(f"{flag}: {value!r} is not a time; use {FORMS}") from None
    if moment.tzinfo is not None:
        return When(moment.isoformat())
    return _wall_clock(moment.isoformat(), tz)


def _wall_clock(text: str, tz: str | None) -> When:
    if tz:
        return When(text, tz)
    return When(text, local_zone(), assumed_zone=True)


def duration(value: str, flag: str, now: datetime | None = None) -> When:
    """``--in 10m``: that long from now."""
    text = value.strip()
    return parse(text if text.startswith("+") else f"+{text}", flag, now=now)
