"""Reply guards: which decided replies may go out, so the bundle cannot loop or be pumped.

Pure: the caller reads each recipient's ``PeerState`` (in the same BatchGetItem that
reads opt-outs) and writes back the states ``screen`` returns, in the same transaction as
the inbound message and its replies, conditional on the revision it read.

Checks, in order; the first that withholds something names the message's ``unanswered``:

1. ``card_number``: a reply whose body holds a payment card number never goes out (SMS
   is unencrypted: the same guard as ``POST /messages``, here for rule, hook and
   forwarded bodies);
2. ``own_number``: never answer or forward to one of the account's own numbers;
3. ``country_not_allowed``: a recipient outside the allowed countries (default: the
   countries of the account's numbers) gets nothing (SMS pumping bills every reply);
4. ``opted_out``: a recipient who opted out gets nothing;
5. ``repeated_body``: the sender sent the same text, already answered, within the
   repeat window (an auto-responder echoing itself);
6. ``reply_cap``: the sender already got the most auto-replies allowed in the last hour;
7. ``forward_cap``: a group member already got the most forwards allowed in the last hour.

Limits count what was actually sent; a person's conversation (a few texts an hour) never
reaches them, a machine sending dozens a minute does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from plumsms.domain.keywords import normalize
from plumsms.domain.models import Reply
from plumsms.domain.pci import contains_card_number
from plumsms.domain.phone import calling_code, in_countries

WINDOW = timedelta(hours=1)


class Unanswered(StrEnum):
    """Why an inbound message got no answer (or fewer forwards): stored on the message."""

    OPT_OUT_REVIEW = "opt_out_review"
    """Opt-out words without being an opt-out: for a person to read, not for a robot."""
    SENDER_CANNOT_RECEIVE = "sender_cannot_receive"
    """A short code or alphanumeric sender: no SMS reaches it."""
    CARD_NUMBER = "card_number"
    """The answer would have carried a payment card number."""
    OWN_NUMBER = "own_number"
    """The answer would have gone to one of the account's own numbers (a loop)."""
    COUNTRY_NOT_ALLOWED = "country_not_allowed"
    """The sender's country is not in ``REPLY_COUNTRIES``."""
    OPTED_OUT = "opted_out"
    """The recipient opted out."""
    REPEATED_BODY = "repeated_body"
    """The same text again within ``REPEAT_WINDOW_SECONDS``, already answered."""
    REPLY_CAP = "reply_cap"
    """The sender had its ``REPLY_LIMIT_PER_HOUR`` automatic replies this hour."""
    FORWARD_CAP = "forward_cap"
    """A group member had its ``FORWARD_LIMIT_PER_HOUR`` forwards this hour."""


@dataclass(frozen=True, slots=True)
class ReplyLimits:
    """The abuse limits (settings ``REPLY_LIMIT_PER_HOUR`` and friends)."""

    own_numbers: frozenset[str]
    countries: frozenset[str]
    """Calling codes (``+1``) or ISO regions (``CA``) replies may go to."""
    replies_per_hour: int = 20
    forwards_per_hour: int = 60
    repeat_window: timedelta = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class PeerState:
    """What the log knows about one number the bundle may answer."""

    number: str
    opted_out: bool = False
    replies: tuple[datetime, ...] = ()
    """When it got auto-replies in the last hour."""
    forwards: tuple[datetime, ...] = ()
    """When it got group forwards in the last hour."""
    last_body: str | None = None
    """Digest of the last text it sent that was answered."""
    last_body_at: datetime | None = None
    revision: int = 0
    """The stored revision this state was read at (0: no row yet)."""


@dataclass(frozen=True, slots=True)
class Screened:
    """The replies that may go out, why others did not, and the states to write back."""

    replies: list[Reply]
    reason: Unanswered | None = None
    suppressed: int = 0
    peers: list[PeerState] = field(default_factory=list)


def body_digest(body: str) -> str:
    """A short digest of a body's keyword skeleton: ``STOP!`` and ``stop`` repeat."""
    return hashlib.sha256(normalize(body).encode("utf-8")).hexdigest()[:16]


NANP = "+1"


def default_countries(own_numbers: Sequence[str]) -> frozenset[str]:
    """The calling codes of the account's numbers (``+1`` for NANP numbers).

    Plum DEV numbers are North American; with no numbers configured, ``+1`` it is.
    """
    return frozenset(calling_code(n) for n in own_numbers) or frozenset({NANP})


def screen(
    sender: str,
    replies: Sequence[Reply],
    *,
    peers: Mapping[str, PeerState],
    limits: ReplyLimits,
    now: datetime,
    digest: str,
) -> Screened:
    """Keep the replies the guards allow; ``peers`` holds a state for every recipient."""
    reasons: list[Unanswered] = []
    kept: list[Reply] = []
    suppressed = 0
    since = now - WINDOW
    sender_state = peers.get(sender, PeerState(sender))
    repeated = (
        sender_state.last_body == digest
        and sender_state.last_body_at is not None
        and now - sender_state.last_body_at < limits.repeat_window
    )
    auto_sent = sum(1 for t in sender_state.replies if t > since)
    forwards: dict[str, int] = {}
    for reply in replies:
        state = peers.get(reply.to, PeerState(reply.to))
        to_sender = reply.to == sender
        reason: Unanswered | None = None
        if contains_card_number(reply.body):
            reason = Unanswered.CARD_NUMBER
        elif reply.to in limits.own_numbers:
            reason = Unanswered.OWN_NUMBER
        elif not in_countries(reply.to, limits.countries):
            reason = Unanswered.COUNTRY_NOT_ALLOWED
        elif state.opted_out:
            reason = Unanswered.OPTED_OUT
            suppressed += 1
        elif to_sender and repeated:
            reason = Unanswered.REPEATED_BODY
        elif to_sender and auto_sent >= limits.replies_per_hour:
            reason = Unanswered.REPLY_CAP
        elif not to_sender:
            sent = forwards.get(reply.to, sum(1 for t in state.forwards if t > since))
            if sent >= limits.forwards_per_hour:
                reason = Unanswered.FORWARD_CAP
            else:
                forwards[reply.to] = sent + 1
        if reason is None:
            kept.append(reply)
            if to_sender:
                auto_sent += 1
        else:
            reasons.append(reason)
    return Screened(
        replies=kept,
        reason=min(reasons, key=_ORDER.index) if reasons else None,
        suppressed=suppressed,
        peers=_updated(sender, kept, peers, now, digest),
    )


_ORDER = list(Unanswered)


def _updated(
    sender: str,
    kept: Sequence[Reply],
    peers: Mapping[str, PeerState],
    now: datetime,
    digest: str,
) -> list[PeerState]:
    since = now - WINDOW
    counts: dict[str, int] = {}
    for reply in kept:
        counts[reply.to] = counts.get(reply.to, 0) + 1
    updated = []
    for number, count in counts.items():
        state = peers.get(number, PeerState(number))
        stamps = (now,) * count
        if number == sender:
            state = replace(
                state,
                replies=tuple(t for t in state.replies if t > since) + stamps,
                last_body=digest,
                last_body_at=now,
            )
        else:
            state = replace(state, forwards=tuple(t for t in state.forwards if t > since) + stamps)
        updated.append(state)
    return updated
