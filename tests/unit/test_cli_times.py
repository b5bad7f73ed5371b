"""smsctl's one rule for times: ISO with or without zone, relative times, named flags."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from plumsms_local.cli import times
from plumsms_local.cli.errors import UsageError

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _paris(monkeypatch: pytest.MonkeyPatch) -> None:
    # This computer's zone, for the times written without one.
    monkeypatch.setenv("TZ", "Europe/Paris")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2h", "2024-05-01T10:00:00Z"),
        ("-2h", "2024-05-01T10:00:00Z"),
        ("7d", "2024-04-24T12:00:00Z"),
        ("+10m", "2024-05-01T12:10:00Z"),
        ("now", "2024-05-01T12:00:00Z"),
        ("2024-05-01T09:30:00+02:00", "2024-05-01T07:30:00Z"),
        ("2024-05-01T09:30:00Z", "2024-05-01T09:30:00Z"),
        ("2024-05-01T09:30", "2024-05-01T07:30:00Z"),  # Paris summer time, UTC+2
        ("2024-05-01", "2024-04-30T22:00:00Z"),
        ("yesterday", "2024-04-29T22:00:00Z"),
        ("today", "2024-04-30T22:00:00Z"),
    ],
)
def test_search_times_accept_iso_with_or_without_zone_ages_and_words(
    value: str, expected: str
) -> None:
    assert times.parse(value, "--since", bare_duration_is_past=True, now=NOW).utc() == expected


def test_a_time_without_zone_says_it_was_read_in_this_computers_zone() -> None:
    when = times.parse("2024-05-01T09:30", "--at", now=NOW)
    assert when.assumed_zone and when.zone == "Europe/Paris"


def test_a_time_without_zone_is_in_tz_when_given() -> None:
    when = times.parse("2024-05-01T09:30", "--at", tz="America/New_York", now=NOW)
    assert not when.assumed_zone
    assert when.utc() == "2024-05-01T13:30:00Z"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("15:00", "2024-05-01T13:00:00Z"),
        ("09:00", "2024-05-02T07:00:00Z"),
        ("13:30", "2024-05-02T11:30:00Z"),  # 13:30 Paris has passed (it is 14:00 there)
    ],
)
def test_a_time_of_day_is_the_next_one(value: str, expected: str) -> None:
    # 12:00 UTC is 14:00 in Paris: 15:00 is still today, 09:00 is tomorrow
    assert times.parse(value, "--at", now=NOW).utc() == expected


def test_in_is_from_now() -> None:
    assert times.duration("10m", "--in", now=NOW).utc() == "2024-05-01T12:10:00Z"


@pytest.mark.parametrize(
    ("value", "flag", "words"),
    [
        ("next tuesday", "--at", "--at: 'next tuesday' is not a time"),
        ("10m", "--at", "--at: '10m' is ambiguous; write +10m"),
        ("2024-13-01", "--until", "--until: '2024-13-01' is not a time"),
    ],
)
def test_errors_name_the_flag_typed(value: str, flag: str, words: str) -> None:
    with pytest.raises(UsageError) as raised:
        times.parse(value, flag, now=NOW)
    assert str(raised.value).startswith(words)


def test_an_unknown_zone_names_the_flag() -> None:
    with pytest.raises(UsageError, match=r"^--tz: 'Mars/Olympus' is not an IANA time zone"):
        times.zone("Mars/Olympus", "--tz")
