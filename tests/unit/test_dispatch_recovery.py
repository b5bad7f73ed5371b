"""Recovery of stale claims, against the in-memory outbox and a scripted Plum: a claim
whose dispatcher died (or whose send had no answer) is checked with Plum's list before
anything is sent again."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from plumsms.domain import segments
from plumsms.domain.errors import PlumNotConfigured, StoreUnavailable
from plumsms.domain.models import Message, Status
from plumsms.domain.plum import (
    PlumMessageQuery,
    PlumSmsResource,
    PlumUnavailable,
    Unauthorized,
)
from plumsms.domain.sending import Claim, Schedule
from plumsms.usecases.dispatch import DispatchConfig, RateLimiter
from plumsms.usecases.dispatch.outcomes import Outcomes
from plumsms.usecases.dispatch.recovery import PLUM_PAGE, Recovery, ref_of, same_body
from plumsms.usecases.dispatch.run import DispatchReport, Run
from tests.factories import ACCOUNT, CUSTOMER, outbound_message
from tests.fakes import NOW, FakeOutbox, ScriptedPlum

LATER = NOW + timedelta(minutes=6)
"""When recovery runs: the claims made at ``NOW`` are stale by then."""
CONFIG = DispatchConfig(max_attempts=5, stale_after=timedelta(minutes=5))
NOT_CONFIRMED = "not sent: Plum did not confirm it after every attempt"
LONG = "".join(f"word{i} " for i in range(40))
"""A GSM-7 body of two parts."""


class Outbox(FakeOutbox):
    """The fake outbox, recording take-overs; it can fail listing, fail a take-over, or
    find a claim already taken over by another dispatcher."""

    def __init__(self) -> None:
        super().__init__()
        self.stale_error: Exception | None = None
        self.fail_take_over: set[str] = set()
        self.taken_by_others: set[str] = set()
        self.taken: list[tuple[str, str, datetime]] = []
        self.stale_limits: list[int] = []

    def stale(self, now: datetime, limit: int) -> list[Claim]:
        self.stale_limits.append(limit)
        if self.stale_error is not None:
            raise self.stale_error
        return super().stale(now, limit)

    def take_over(self, claim: Claim, token: str, check_after: datetime) -> Claim | None:
        if claim.message.id in self.fail_take_over:
            raise StoreUnavailable("take_over failed (ProvisionedThroughputExceededException)")
        if claim.message.id in self.taken_by_others:
            return None
        self.taken.append((claim.message.id, token, check_after))
        return super().take_over(claim, token, check_after)


class Log:
    """A logger that keeps what was logged with ``exception``."""

    def __init__(self) -> None:
        self.exceptions: list[tuple[str, dict[str, Any] | None]] = []

    def exception(self, message: str, *args: Any, extra: dict[str, Any] | None = None) -> None:
        self.exceptions.append((message, extra))


def our(index: int, body: str = "Message 1") -> Message:
    return outbound_message(NOW, message_id=f"{index:032x}", body=body)


def stale_claim(
    outbox: FakeOutbox,
    index: int = 1,
    *,
    attempts: int = 0,
    claimed_at: datetime | None = NOW,
    body: str = "Message 1",
) -> Message:
    """A message claimed at ``claimed_at`` by a dispatcher that never finished it."""
    message = our(index, body)
    outbox.add(message)
    outbox.rows[message.id].update(
        status=Status.SENDING,
        token="dead",
        claimed_at=claimed_at,
        check_after=NOW + timedelta(minutes=5),
        attempts=attempts,
    )
    return message


def claim_of(message: Message, *, attempts: int = 0, claimed_at: datetime | None = NOW) -> Claim:
    return Claim(message, Schedule(), "t", claimed_at, attempts)


def listed(
    sms_message_id: str,
    *,
    ref: str | None = None,
    to: str = CUSTOMER.lstrip("+"),
    from_: str = ACCOUNT.lstrip("+"),
    body: str = "Message 1",
) -> PlumSmsResource:
    """A message as Plum's list shows it (numbers without ``+``, our ref in its URL)."""
    url = f"https://sms.example.test/plum/status?key=k&ref={ref}" if ref else None
    return PlumSmsResource(
        sms_message_id=sms_message_id,
        to=to,
        from_=from_,
        body=body,
        request_timestamp=int(NOW.timestamp()),
        result_url=url,
        status="sent",
    )


def plum_id(index: int) -> str:
    return f"{index:032x}".replace("0", "a")


def a_run(plum: ScriptedPlum | None, remaining: Iterator[int] | None = None) -> Run:
    """A run with a minute left (or ``remaining`` milliseconds, one value per question)."""

    def provider() -> ScriptedPlum:
        if plum is None:
            raise PlumNotConfigured("PLUM_USERNAME and PLUM_PASSWORD must be set")
        return plum

    left = remaining if remaining is not None else iter(lambda: 60_000, None)
    return Run(
        plum_provider=provider,
        remaining_ms=lambda: next(left),
        limiter=RateLimiter(1000.0, time.monotonic, time.sleep),
        report=DispatchReport(),
        margin_seconds=0.0,
        monotonic=time.monotonic,
    )


def recovery(
    outbox: FakeOutbox, config: DispatchConfig = CONFIG, log: Log | None = None
) -> Recovery:
    outcomes = Outcomes(outbox, config, lambda: LATER, lambda: 1.0, None)
    return Recovery(outbox, outcomes, config, lambda: LATER, log or Log())


def recovered(outbox: Outbox, plum: ScriptedPlum | None, **config: Any) -> Run:
    run = a_run(plum)
    recovery(outbox, DispatchConfig(**({"max_attempts": 5} | config))).recover(run)
    return run


# -- found at Plum: recorded, never sent again ------------------------------------------


def test_a_stale_claim_plum_has_by_our_ref_is_recorded_as_queued_not_sent_again() -> None:
    outbox, plum = Outbox(), ScriptedPlum()
    message = stale_claim(outbox, attempts=1)
    plum.listed = [listed(plum_id(1), ref=message.id)]
    run = recovered(outbox, plum)
    assert run.report.counts == {"reconciled": 1, "sent": 1}
    row = outbox.rows[message.id]
    assert (row["status"], row["plum_ids"], row["token"]) == (Status.QUEUED, [plum_id(1)], None)
    assert plum.queued == []


def test_a_message_listed_as_its_parts_under_our_ref_is_recorded_with_every_parts_id() -> None:
    # GIVEN our two-part message listed as its parts under our ref, between two other
    # messages of the same content whose refs sort before and after ours
    parts = segments.split(LONG)
    assert len(parts) == 2
    message = our(1, LONG)
    plum = ScriptedPlum()
    plum.listed = [
        listed(plum_id(7), ref="0" * 32, body=parts[0]),
        listed(plum_id(1), ref=message.id, body=parts[0]),
        listed(plum_id(2), ref=message.id, body=parts[1]),
        listed(plum_id(8), ref="f" * 32, body=parts[1]),
    ]
    # THEN both parts are ours, and only they
    found = recovery(FakeOutbox()).find_at_plum(plum, claim_of(message), LATER)
    assert found == [plum_id(1), plum_id(2)]


def test_a_stale_claim_plum_lists_without_a_ref_is_matched_by_recipient_sender_and_body() -> None:
    outbox, plum = Outbox(), ScriptedPlum()
    message = stale_claim(outbox)
    plum.listed = [listed(plum_id(1))]
    run = recovered(outbox, plum)
    assert run.report.counts == {"reconciled": 1, "sent": 1}
    assert outbox.rows[message.id]["plum_ids"] == [plum_id(1)]


def test_a_content_match_is_taken_only_if_its_plum_id_is_not_already_one_of_ours() -> None:
    # GIVEN Plum lists two messages of the same content without a ref; the first one's id
    # is already recorded on another of our messages
    outbox, plum = Outbox(), ScriptedPlum()
    stale_claim(outbox)
    other = our(2)
    outbox.add(other)
    outbox.rows[other.id].update(status=Status.QUEUED, plum_ids=[plum_id(1)])
    plum.listed = [listed(plum_id(1)), listed(plum_id(2))]
    # THEN the second is ours
    assert recovery(outbox).find_at_plum(plum, claim_of(our(1)), LATER) == [plum_id(2)]


def test_a_listed_message_with_another_messages_ref_is_never_matched_by_content() -> None:
    plum = ScriptedPlum()
    plum.listed = [listed(plum_id(1), ref="0" * 32), listed(plum_id(2), ref="f" * 32)]
    assert recovery(FakeOutbox()).find_at_plum(plum, claim_of(our(1)), LATER) == []


@pytest.mark.parametrize(
    "difference",
    [
        {"to": "12125550001"},
        {"from_": "12125550002"},
        {"body": "Message 0"},
        {"body": "Message 2"},
    ],
    ids=["another recipient", "another sender", "a body before ours", "a body after ours"],
)
def test_a_listed_message_without_a_ref_must_match_recipient_sender_and_body(
    difference: dict[str, str],
) -> None:
    plum = ScriptedPlum()
    plum.listed = [listed(plum_id(1), **difference)]
    assert recovery(FakeOutbox()).find_at_plum(plum, claim_of(our(1)), LATER) == []


def test_a_long_message_listed_whole_or_as_any_of_its_parts_is_the_same_body() -> None:
    whole = "".join(list(LONG))  # equal to LONG, another string object
    assert whole is not LONG
    assert same_body(whole, LONG)
    assert all(same_body(part, LONG) for part in segments.split(LONG))
    assert same_body("Message 1", "Message 1")
    assert not same_body(LONG[:10], LONG)
    assert not same_body("Message 0", "Message 1")
    assert not same_body("Message 2", "Message 1")


@pytest.mark.parametrize(
    ("url", "ref"),
    [
        (None, None),
        ("", None),
        ("https://sms.example.test/plum/status", None),
        ("https://sms.example.test/plum/status?key=k", None),
        ("https://sms.example.test/plum/status?key=k&ref=abc", "abc"),
        ("https://sms.example.test/plum/status?ref=abc&ref=def", "abc"),
    ],
)
def test_our_ref_is_read_from_the_result_url_the_first_one_when_repeated(
    url: str | None, ref: str | None
) -> None:
    assert ref_of(url) == ref


# -- how Plum's list is searched --------------------------------------------------------


def test_the_search_window_is_the_claim_time_less_the_slack_to_now_plus_the_slack() -> None:
    outbox, plum = Outbox(), ScriptedPlum()
    message = stale_claim(outbox, claimed_at=NOW)
    recovered(outbox, plum, window_slack=timedelta(minutes=3))
    assert plum.queries == [
        PlumMessageQuery(
            type="outbound",
            number=message.to,
            number_side="customer",
            start=NOW - timedelta(minutes=3),
            end=LATER + timedelta(minutes=3),
            sort="asc",
            limit=1000,
            offset=0,
        )
    ]


def test_a_claim_without_its_claim_time_is_searched_from_now() -> None:
    plum = ScriptedPlum()
    recovery(FakeOutbox()).find_at_plum(plum, claim_of(our(1), claimed_at=None), LATER)
    [query] = plum.queries
    assert (query.start, query.end) == (LATER - timedelta(minutes=2), LATER + timedelta(minutes=2))


def test_plums_list_is_read_a_thousand_at_a_time_until_a_short_page() -> None:
    # GIVEN Plum lists 2,005 messages in the window, ours (by ref) the last but one
    assert PLUM_PAGE == 1000
    plum = ScriptedPlum()
    plum.listed = [listed(f"{i:032x}", ref="f" * 32, body="other") for i in range(2005)]
    plum.listed[2003] = listed(plum_id(1), ref=our(1).id)
    found = recovery(FakeOutbox()).find_at_plum(plum, claim_of(our(1)), LATER)
    # THEN every page is read, the offset advancing by the page read
    assert found == [plum_id(1)]
    assert [(q.offset, q.limit) for q in plum.queries] == [(0, 1000), (1000, 1000), (2000, 1000)]


def test_a_full_last_page_is_followed_by_an_empty_one() -> None:
    plum = ScriptedPlum()
    plum.listed = [listed(f"{i:032x}", ref="f" * 32, body="other") for i in range(1000)]
    assert recovery(FakeOutbox()).find_at_plum(plum, claim_of(our(1)), LATER) == []
    assert [q.offset for q in plum.queries] == [0, 1000]


def test_a_page_longer_than_asked_does_not_end_the_search() -> None:
    # GIVEN a Plum that answers one more than the limit
    plum = ScriptedPlum()
    plum.extra = 1
    plum.listed = [listed(f"{i:032x}", ref="f" * 32, body="other") for i in range(1004)]
    plum.listed[1002] = listed(plum_id(1), ref=our(1).id)
    # THEN only a short page ends the search, the next one starting after what was read
    assert recovery(FakeOutbox()).find_at_plum(plum, claim_of(our(1)), LATER) == [plum_id(1)]
    assert [q.offset for q in plum.queries] == [0, 1001]


# -- not found at Plum, or Plum cannot say -----------------------------------------------


@pytest.mark.parametrize("attempts", [5, 6])
def test_a_claim_with_every_attempt_spent_and_nothing_at_plum_fails_with_the_reason(
    attempts: int,
) -> None:
    outbox, plum = Outbox(), ScriptedPlum()
    message = stale_claim(outbox, attempts=attempts)
    run = recovered(outbox, plum, max_attempts=5)
    assert run.report.counts == {"failed": 1}
    row = outbox.rows[message.id]
    assert (row["status"], row["error"]) == (Status.FAILED, NOT_CONFIRMED)
    assert plum.queued == []


@pytest.mark.parametrize("attempts", [0, 4])
def test_a_claim_with_attempts_left_and_nothing_at_plum_is_due_again_now_and_counted_as_resent(
    attempts: int,
) -> None:
    outbox, plum = Outbox(), ScriptedPlum()
    message = stale_claim(outbox, attempts=attempts)
    run = recovered(outbox, plum, max_attempts=5)
    assert run.report.counts == {"resent": 1}
    row = outbox.rows[message.id]
    assert (row["status"], row["due"], row["attempts"], row["error"], row["token"]) == (
        Status.SCHEDULED,
        LATER,
        attempts,
        None,
        None,
    )


def test_a_plum_error_while_searching_keeps_the_claim_for_a_later_check() -> None:
    outbox, plum = Outbox(), ScriptedPlum()
    message = stale_claim(outbox, attempts=2)
    plum.list_error = PlumUnavailable("HTTP 503")
    run = recovered(outbox, plum, check_delay=timedelta(seconds=60))
    assert run.report.counts == {"to_check": 1}
    row = outbox.rows[message.id]
    [(_, token, _)] = outbox.taken
    assert (row["status"], row["token"], row["check_after"], row["attempts"]) == (
        Status.SENDING,
        token,
        LATER + timedelta(seconds=60),
        2,
    )
    assert row["error"] == "Plum unavailable: HTTP 503"


def test_refused_credentials_while_searching_stop_the_run_and_keep_every_claim() -> None:
    # GIVEN three stale claims and a Plum that refuses the credentials
    outbox, plum = Outbox(), ScriptedPlum()
    messages = [stale_claim(outbox, index) for index in (1, 2, 3)]
    plum.list_error = Unauthorized("HTTP 401")
    run = recovered(outbox, plum)
    # THEN Plum is asked once, the run stops as on the send path, and the first claim is
    # kept for a later check; the two others are not even taken over
    assert run.report.stopped == "unauthorized"
    assert run.report.counts == {"to_check": 1}
    assert len(outbox.taken) == 1
    assert [outbox.rows[m.id]["token"] for m in messages[1:]] == ["dead", "dead"]
    assert outbox.rows[messages[0].id]["status"] == Status.SENDING


# -- taking claims over ------------------------------------------------------------------


def test_a_stale_claim_is_taken_over_with_a_new_token_until_now_plus_the_stale_delay() -> None:
    outbox, plum = Outbox(), ScriptedPlum()
    message = stale_claim(outbox)
    recovered(outbox, plum, stale_after=timedelta(minutes=7), stale_batch=30)
    [(message_id, token, check_after)] = outbox.taken
    assert (message_id, check_after) == (message.id, LATER + timedelta(minutes=7))
    assert len(token) == 32 and token != "dead"
    assert outbox.stale_limits == [30]


def test_a_claim_another_dispatcher_took_over_is_left_alone() -> None:
    outbox, plum = Outbox(), ScriptedPlum()
    message = stale_claim(outbox)
    outbox.taken_by_others.add(message.id)
    run = recovered(outbox, plum)
    assert run.report.counts == {}
    assert plum.queries == []
    assert outbox.rows[message.id]["token"] == "dead"


def test_a_failure_to_list_stale_claims_counts_an_error_and_the_run_goes_on() -> None:
    outbox, plum, log = Outbox(), ScriptedPlum(), Log()
    stale_claim(outbox)
    outbox.stale_error = StoreUnavailable("stale failed")
    run = a_run(plum)
    recovery(outbox, log=log).recover(run)
    assert run.report.counts == {"errors": 1}
    assert log.exceptions == [("listing stale claims failed", None)]
    assert run.may_claim()


def test_a_failure_on_one_claim_does_not_stop_the_others() -> None:
    # GIVEN two stale claims, the store failing the take-over of the first
    outbox, plum, log = Outbox(), ScriptedPlum(), Log()
    first, second = stale_claim(outbox, 1), stale_claim(outbox, 2)
    outbox.fail_take_over.add(first.id)
    run = a_run(plum)
    recovery(outbox, log=log).recover(run)
    # THEN the second is recovered; the error is counted and logged with the id only
    assert run.report.counts == {"errors": 1, "resent": 1}
    assert outbox.status(second.id) == Status.SCHEDULED
    assert outbox.status(first.id) == Status.SENDING
    assert log.exceptions == [("reconciling a claim failed", {"message_id": first.id})]


def test_recovery_stops_taking_over_claims_when_the_run_runs_out_of_time() -> None:
    # GIVEN two stale claims and a run whose time is up after the first
    outbox, plum = Outbox(), ScriptedPlum()
    first, second = stale_claim(outbox, 1), stale_claim(outbox, 2)
    run = a_run(plum, iter([60_000, 0]))
    recovery(outbox).recover(run)
    # THEN the first is recovered, the second left for a later run
    assert run.report.counts == {"resent": 1}
    assert run.report.stopped == "time"
    assert [taken[0] for taken in outbox.taken] == [first.id]
    assert outbox.rows[second.id]["token"] == "dead"


def test_recovery_takes_over_nothing_once_the_run_may_no_longer_claim() -> None:
    outbox, plum = Outbox(), ScriptedPlum()
    stale_claim(outbox)
    run = a_run(plum)
    run.halt("unauthorized")
    recovery(outbox).recover(run)
    assert outbox.taken == []
    assert plum.queries == []


def test_recovery_takes_over_nothing_without_plums_credentials() -> None:
    outbox = Outbox()
    message = stale_claim(outbox)
    run = a_run(None)
    recovery(outbox).recover(run)
    assert run.report.stopped == "not_configured"
    assert run.report.counts == {}
    assert outbox.taken == []
    assert outbox.rows[message.id]["token"] == "dead"


def test_a_recovery_keeps_the_outbox_and_settings_it_was_made_with() -> None:
    made = recovery(Outbox())
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.config = DispatchConfig(max_attempts=1)  # type: ignore[misc]
