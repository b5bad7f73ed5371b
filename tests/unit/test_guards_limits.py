"""Reply guards at their edges: the documented defaults, exact window and cap boundaries,
which reason a message records, and the counters written back."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from plumsms.domain.guards import (
    PeerState,
    ReplyLimits,
    Screened,
    Unanswered,
    body_digest,
    screen,
)
from plumsms.domain.models import Reply

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
OWN = "+12435678910"
SENDER = "+19998881234"
MEMBER = "+19998885555"
SECURITY_DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def limits(**changes: object) -> ReplyLimits:
    base = ReplyLimits(own_numbers=frozenset({OWN}), countries=frozenset({"+1"}))
    return dataclasses.replace(base, **changes)


def to(number: str, body: str = "Thanks") -> Reply:
    return Reply(to=number, from_=OWN, body=body)


def documented_default(reason: str) -> str:
    """The default column of ``reason``'s row in docs/security.md's guard table."""
    for line in SECURITY_DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[1] == f"`{reason}`":
            return cells[2]
    raise AssertionError(f"no row for {reason} in {SECURITY_DOC}")


def test_the_limits_default_to_what_the_security_page_documents() -> None:
    # GIVEN limits built with nothing but the numbers and countries
    default = limits()
    # THEN the caps and the repeat window are the documented defaults
    assert str(default.replies_per_hour) == documented_default("reply_cap")
    assert str(default.forwards_per_hour) == documented_default("forward_cap")
    seconds = re.fullmatch(r"(\d+) s", documented_default("repeated_body"))
    assert seconds is not None
    assert default.repeat_window == timedelta(seconds=int(seconds.group(1)))


@pytest.mark.parametrize(
    "value",
    [limits(), PeerState(SENDER), Screened(replies=[])],
    ids=["limits", "peer state", "screened"],
)
def test_limits_and_states_are_values_nobody_changes_in_place(value: object) -> None:
    # A state read once is shared by every reply of the message being screened.
    field = dataclasses.fields(value)[0].name  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, field, None)


def test_a_repeat_is_judged_strictly_inside_the_window() -> None:
    # GIVEN a sender answered five minutes ago (the window) for the same text
    digest = body_digest("out of office")
    window = limits().repeat_window
    at_edge = PeerState(SENDER, last_body=digest, last_body_at=NOW - window)
    inside = PeerState(SENDER, last_body=digest, last_body_at=NOW - window + timedelta(seconds=1))
    # WHEN the same text comes again exactly one window later, and one second earlier
    edge = screen(SENDER, [to(SENDER)], peers={SENDER: at_edge}, limits=limits(), now=NOW,
                  digest=digest)  # fmt: skip
    early = screen(SENDER, [to(SENDER)], peers={SENDER: inside}, limits=limits(), now=NOW,
                   digest=digest)  # fmt: skip
    # THEN the window has passed at its edge, and not a second before
    assert edge.replies == [to(SENDER)] and edge.reason is None
    assert early.replies == [] and early.reason is Unanswered.REPEATED_BODY


def test_a_remembered_body_without_a_time_is_not_a_repeat() -> None:
    state = PeerState(SENDER, last_body=body_digest("hi"), last_body_at=None)
    result = screen(SENDER, [to(SENDER)], peers={SENDER: state}, limits=limits(), now=NOW,
                    digest=body_digest("hi"))  # fmt: skip
    assert result.replies == [to(SENDER)]


def test_a_different_text_within_the_window_is_answered() -> None:
    state = PeerState(SENDER, last_body=body_digest("hi"), last_body_at=NOW)
    result = screen(SENDER, [to(SENDER)], peers={SENDER: state}, limits=limits(), now=NOW,
                    digest=body_digest("hello"))  # fmt: skip
    assert result.replies == [to(SENDER)]


def test_a_reply_exactly_an_hour_old_no_longer_counts_against_the_cap() -> None:
    # GIVEN a cap of two, one reply an hour ago to the microsecond and one a minute ago
    state = PeerState(SENDER, replies=(NOW - timedelta(hours=1), NOW - timedelta(minutes=1)))
    # WHEN the sender texts again
    result = screen(SENDER, [to(SENDER)], peers={SENDER: state},
                    limits=limits(replies_per_hour=2), now=NOW, digest="d")  # fmt: skip
    # THEN it is answered, and the hour-old stamp is not written back
    assert result.replies == [to(SENDER)]
    assert result.peers[0].replies == (NOW - timedelta(minutes=1), NOW)


def test_replies_within_one_message_count_against_the_cap() -> None:
    # GIVEN a cap of one and a hook answering the sender twice in one message
    result = screen(SENDER, [to(SENDER, "one"), to(SENDER, "two")], peers={},
                    limits=limits(replies_per_hour=1), now=NOW, digest="d")  # fmt: skip
    # THEN the first goes out and the second is withheld by the cap
    assert result.replies == [to(SENDER, "one")]
    assert result.reason is Unanswered.REPLY_CAP
    assert result.peers[0].replies == (NOW,)


def test_forwards_to_one_member_stop_at_its_hourly_cap_within_one_message() -> None:
    # GIVEN a member forwarded to once an hour-less-a-minute ago, and a cap of two
    state = PeerState(MEMBER, forwards=(NOW - timedelta(minutes=59),))
    forwards = [to(MEMBER, "a"), to(MEMBER, "b"), to(MEMBER, "c")]
    # WHEN one message forwards three texts to it
    result = screen(SENDER, forwards, peers={MEMBER: state},
                    limits=limits(forwards_per_hour=2), now=NOW, digest="d")  # fmt: skip
    # THEN one more goes out (two in the hour), the rest are capped
    assert result.replies == [to(MEMBER, "a")]
    assert result.reason is Unanswered.FORWARD_CAP
    assert result.peers == [PeerState(MEMBER, forwards=(NOW - timedelta(minutes=59), NOW))]


@pytest.mark.parametrize("member", ["+19998880000", MEMBER], ids=["lower", "higher"])
def test_forwards_do_not_use_up_the_senders_reply_cap(member: str) -> None:
    # GIVEN a reply cap of one and a message that forwards to a member (whose number sorts
    # before or after the sender's) and answers the sender
    result = screen(SENDER, [to(member), to(SENDER)], peers={},
                    limits=limits(replies_per_hour=1), now=NOW, digest="d")  # fmt: skip
    # THEN both go out; each number's own counter moves
    assert result.replies == [to(member), to(SENDER)] and result.reason is None
    written = {p.number: p for p in result.peers}
    assert written[member].forwards == (NOW,) and written[member].replies == ()
    assert written[SENDER].replies == (NOW,) and written[SENDER].forwards == ()
    assert written[member].last_body is None and written[SENDER].last_body == "d"


def test_forwards_older_than_an_hour_do_not_count_against_the_cap() -> None:
    # GIVEN a forward cap of one and a member last forwarded to two hours ago
    state = PeerState(MEMBER, forwards=(NOW - timedelta(hours=2), NOW - timedelta(hours=1)))
    # WHEN a new forward goes to it
    result = screen(SENDER, [to(MEMBER)], peers={MEMBER: state},
                    limits=limits(forwards_per_hour=1), now=NOW, digest="d")  # fmt: skip
    # THEN it goes out: neither stamp is inside the last hour
    assert result.replies == [to(MEMBER)] and result.reason is None


def test_a_lowered_cap_applies_at_once_to_a_sender_already_above_it() -> None:
    # GIVEN a sender answered five times this hour, and the cap since lowered to three
    stamps = tuple(NOW - timedelta(minutes=m) for m in (50, 40, 30, 20, 10))
    state = PeerState(SENDER, replies=stamps)
    # WHEN the sender texts again
    result = screen(SENDER, [to(SENDER)], peers={SENDER: state},
                    limits=limits(replies_per_hour=3), now=NOW, digest="d")  # fmt: skip
    # THEN it is not answered
    assert result.replies == [] and result.reason is Unanswered.REPLY_CAP


def test_nothing_screened_means_nothing_withheld() -> None:
    nothing = Screened(replies=[])
    assert (nothing.reason, nothing.suppressed, nothing.peers) == (None, 0, [])


def test_a_withheld_answer_leaves_the_counters_alone() -> None:
    # GIVEN a sender at its cap, with a body remembered from earlier
    earlier = NOW - timedelta(minutes=30)
    state = PeerState(SENDER, replies=(earlier,), last_body="old", last_body_at=earlier)
    result = screen(SENDER, [to(SENDER)], peers={SENDER: state},
                    limits=limits(replies_per_hour=1), now=NOW, digest="new")  # fmt: skip
    # THEN nothing is written back: the cap counts what was sent, not what was asked
    assert result.replies == [] and result.peers == []


def test_the_message_records_the_first_guard_in_the_documented_order() -> None:
    # GIVEN one message whose answers are withheld for different reasons
    opted_out = "+19998887777"
    peers = {opted_out: PeerState(opted_out, opted_out=True)}
    replies = [to(opted_out), to("+33612345678"), to(OWN)]
    # WHEN screened
    result = screen(SENDER, replies, peers=peers, limits=limits(), now=NOW, digest="d")
    # THEN the reason is the earliest in the guards' order, whatever the replies' order
    assert result.replies == []
    assert result.reason is Unanswered.OWN_NUMBER
    assert result.suppressed == 1  # only the opted-out recipient counts as suppressed
    order = list(Unanswered)
    assert order.index(Unanswered.OWN_NUMBER) < order.index(Unanswered.COUNTRY_NOT_ALLOWED)
    assert order.index(Unanswered.COUNTRY_NOT_ALLOWED) < order.index(Unanswered.OPTED_OUT)


def test_an_opted_out_sender_is_not_answered_even_with_a_fresh_text() -> None:
    state = PeerState(SENDER, opted_out=True)
    result = screen(SENDER, [to(SENDER)], peers={SENDER: state}, limits=limits(), now=NOW,
                    digest="d")  # fmt: skip
    assert result.reason is Unanswered.OPTED_OUT and result.peers == []


def test_body_digests_compare_texts_by_their_keyword_skeleton() -> None:
    assert body_digest("STOP!") == body_digest("stop")
    assert body_digest("I am away") != body_digest("I am back")
    assert re.fullmatch(r"[0-9a-f]{16}", body_digest("anything"))


def test_a_message_forwarding_three_texts_to_one_member_sends_up_to_the_cap() -> None:
    # GIVEN a forward cap of two and a member with no forwards this hour, and one stamp
    # exactly an hour old
    state = PeerState(MEMBER, forwards=(NOW - timedelta(hours=1),))
    forwards = [to(MEMBER, "a"), to(MEMBER, "b"), to(MEMBER, "c")]
    # WHEN one message forwards three texts to it
    result = screen(SENDER, forwards, peers={MEMBER: state},
                    limits=limits(forwards_per_hour=2), now=NOW, digest="d")  # fmt: skip
    # THEN two go out, the third is capped, and both sends are written back (the
    # hour-old stamp is dropped)
    assert result.replies == [to(MEMBER, "a"), to(MEMBER, "b")]
    assert result.reason is Unanswered.FORWARD_CAP
    assert result.peers == [PeerState(MEMBER, forwards=(NOW, NOW))]


def test_a_lowered_forward_cap_applies_at_once_to_a_member_already_above_it() -> None:
    stamps = tuple(NOW - timedelta(minutes=m) for m in (50, 40, 30, 20, 10))
    state = PeerState(MEMBER, forwards=stamps)
    result = screen(SENDER, [to(MEMBER)], peers={MEMBER: state},
                    limits=limits(forwards_per_hour=3), now=NOW, digest="d")  # fmt: skip
    assert result.replies == [] and result.reason is Unanswered.FORWARD_CAP


def test_two_answers_to_the_sender_fit_a_cap_of_two() -> None:
    result = screen(SENDER, [to(SENDER, "one"), to(SENDER, "two")], peers={},
                    limits=limits(replies_per_hour=2), now=NOW, digest="d")  # fmt: skip
    assert result.replies == [to(SENDER, "one"), to(SENDER, "two")]
    assert result.peers[0].replies == (NOW, NOW)
