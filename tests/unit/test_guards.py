"""Reply guards: own numbers, countries, opt-outs, repeats and hourly caps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from plumsms.domain.guards import (
    PeerState,
    ReplyLimits,
    Unanswered,
    body_digest,
    default_countries,
    screen,
)
from plumsms.domain.models import Reply

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
OWN = "+12435678910"
SENDER = "+19998881234"
LIMITS = ReplyLimits(own_numbers=frozenset({OWN}), countries=default_countries([OWN]))


def reply(to: str = SENDER) -> Reply:
    return Reply(to=to, from_=OWN, body="Thanks")


def test_default_countries_are_the_own_numbers_calling_codes() -> None:
    assert default_countries([OWN, "+447400123456"]) == {"+1", "+44"}
    assert default_countries([]) == {"+1"}


def test_a_reply_goes_out_and_is_counted() -> None:
    result = screen(SENDER, [reply()], peers={}, limits=LIMITS, now=NOW, digest="d")
    assert result.replies == [reply()] and result.reason is None
    (state,) = result.peers
    assert state.replies == (NOW,) and state.last_body == "d" and state.revision == 0


def test_own_numbers_and_other_countries_get_nothing() -> None:
    result = screen(OWN, [reply(OWN)], peers={}, limits=LIMITS, now=NOW, digest="d")
    assert result.replies == [] and result.reason is Unanswered.OWN_NUMBER
    result = screen(
        "+33612345678", [reply("+33612345678")], peers={}, limits=LIMITS, now=NOW, digest="d"
    )
    assert result.replies == [] and result.reason is Unanswered.COUNTRY_NOT_ALLOWED
    assert result.peers == []


def test_the_cap_counts_only_the_last_hour() -> None:
    old = tuple(NOW - timedelta(minutes=61 + i) for i in range(50))
    recent = tuple(NOW - timedelta(minutes=i + 1) for i in range(19))
    state = PeerState(SENDER, replies=old + recent, revision=7)
    result = screen(SENDER, [reply()], peers={SENDER: state}, limits=LIMITS, now=NOW, digest="d")
    assert len(result.replies) == 1
    assert result.peers[0].replies == (*recent, NOW)  # old stamps pruned
    state = PeerState(SENDER, replies=(*recent, NOW - timedelta(seconds=1)))
    result = screen(SENDER, [reply()], peers={SENDER: state}, limits=LIMITS, now=NOW, digest="d")
    assert result.replies == [] and result.reason is Unanswered.REPLY_CAP


def test_a_repeated_body_is_answered_once_per_window() -> None:
    digest = body_digest("I am away!")
    state = PeerState(SENDER, last_body=digest, last_body_at=NOW - timedelta(minutes=4))
    peers = {SENDER: state}
    same = screen(
        SENDER, [reply()], peers=peers, limits=LIMITS, now=NOW, digest=body_digest("i am AWAY")
    )
    assert same.replies == [] and same.reason is Unanswered.REPEATED_BODY
    later = NOW + timedelta(minutes=2)
    again = screen(SENDER, [reply()], peers=peers, limits=LIMITS, now=later, digest=digest)
    assert len(again.replies) == 1


def test_opted_out_recipients_are_counted_as_suppressed() -> None:
    peers = {SENDER: PeerState(SENDER, opted_out=True)}
    result = screen(SENDER, [reply()], peers=peers, limits=LIMITS, now=NOW, digest="d")
    assert result.replies == [] and result.suppressed == 1
    assert result.reason is Unanswered.OPTED_OUT


@settings(deadline=None)  # a loaded CI machine must not fail a pure test
@given(
    replies_per_hour=st.integers(0, 30),
    arrivals=st.lists(st.integers(0, 7200), min_size=1, max_size=80),
)
def test_no_sliding_hour_ever_holds_more_replies_than_the_cap(
    replies_per_hour: int, arrivals: list[int]
) -> None:
    # GIVEN a sender texting at arbitrary times (seconds from NOW), each text different
    limits = ReplyLimits(
        own_numbers=frozenset({OWN}), countries=frozenset({"+1"}), replies_per_hour=replies_per_hour
    )
    state = PeerState(SENDER)
    sent: list[datetime] = []
    for index, offset in enumerate(sorted(arrivals)):
        now = NOW + timedelta(seconds=offset)
        result = screen(
            SENDER, [reply()], peers={SENDER: state}, limits=limits, now=now, digest=str(index)
        )
        if result.replies:
            sent.append(now)
            state = result.peers[0]
    # THEN no hour-long window holds more replies than the cap
    for start in sent:
        assert sum(1 for t in sent if start <= t < start + timedelta(hours=1)) <= replies_per_hour


def test_a_members_forward_log_keeps_only_the_last_hour_plus_this_forward() -> None:
    # GIVEN a group member forwarded to two hours ago and ten minutes ago
    member = "+19998885555"
    old, recent = NOW - timedelta(hours=2), NOW - timedelta(minutes=10)
    peers = {member: PeerState(member, forwards=(old, recent))}
    forward = Reply(to=member, from_=OWN, body="Sam: running late")
    # WHEN another forward goes to it
    screened = screen(SENDER, [forward], peers=peers, limits=LIMITS, now=NOW, digest="d")
    # THEN the state written back drops the old stamp and keeps the recent one and this one
    [written] = [p for p in screened.peers if p.number == member]
    assert written.forwards == (recent, NOW)
    assert written.replies == ()


def test_a_reply_holding_a_card_number_is_withheld_whoever_gets_it() -> None:
    # GIVEN a reply to the sender and a forward to a group member, both quoting a card
    # number written with dots (rules, hooks and forwards build bodies from the texts)
    card = "4111.1111.1111.1111"
    member = "+19998885678"
    replies = [
        Reply(to=SENDER, from_=OWN, body=f"You said {card}"),
        Reply(to=member, from_=OWN, body=f"{SENDER}: {card}"),
        Reply(to=member, from_=OWN, body="Call 555-123-4567 on 12/29"),
    ]
    # WHEN the guards screen them
    result = screen(SENDER, replies, peers={}, limits=LIMITS, now=NOW, digest="d")
    # THEN only the card-free forward goes out, the reason is card_number, and the
    # withheld reply is not counted against the sender
    assert [r.body for r in result.replies] == ["Call 555-123-4567 on 12/29"]
    assert result.reason is Unanswered.CARD_NUMBER
    assert [p.number for p in result.peers] == [member]


def test_a_card_number_outranks_the_recipient_guards() -> None:
    # GIVEN a reply with a card number to one of the account's own numbers
    result = screen(
        OWN,
        [Reply(to=OWN, from_=OWN, body="4111 1111 1111 1111")],
        peers={},
        limits=LIMITS,
        now=NOW,
        digest="d",
    )
    # THEN the card number is the reason given (the first check)
    assert result.reason is Unanswered.CARD_NUMBER
