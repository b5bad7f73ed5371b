"""Reply rules: what the bundle answers to an inbound SMS.

Order of decision, first match wins:

0. a sender that cannot receive an SMS (short code, alphanumeric) gets no answer; only the
   hook's replies to other numbers go out;
1. carrier keywords, read by ``keywords.intent``: opt-out (record it, answer nothing: the
   carrier confirms), opt-in (clear it, answer ``opt_in_reply`` if set), help (answer
   ``help_text`` if set); a text that only mentions an opt-out word is flagged for review
   and its sender gets no automatic answer (forwards to others still go);
2. groups: a message to a group's number from a member goes to every other member;
   anyone else gets no answer (Plum's group-messaging example);
3. the user hook, when it returns a list (``None`` falls through);
4. keyword rules, matched on the first word of the body;
5. the default reply.

Texts may use the placeholders ``{from}``, ``{to}`` and ``{body}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from plumsms.domain.guards import Unanswered
from plumsms.domain.keywords import KeywordKind, classify, intent, normalize_keyword
from plumsms.domain.models import MAX_BODY_CHARS, InboundSms, Reply
from plumsms.domain.phone import E164, can_receive_sms

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_WORD = re.compile(r"[^\W_]+")
PLACEHOLDERS = frozenset({"from", "to", "body"})
MAX_REPLIES = 49
"""Most replies one inbound message may cause: the inbound row, its replies and one
counter row per recipient stay within one 100-item DynamoDB transaction."""


def _check_template(text: str) -> str:
    unknown = {name for name in _PLACEHOLDER.findall(text) if name not in PLACEHOLDERS}
    if unknown:
        names = ", ".join(sorted(unknown))
        raise ValueError(f"unknown placeholder {{{names}}}; use {{from}}, {{to}} or {{body}}")
    return text


def render(template: str, inbound: InboundSms) -> str:
    """Fill a reply template; the result is cut to the longest body we send."""
    values = {"from": inbound.from_, "to": inbound.to, "body": inbound.body}
    text = _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)
    return text[:MAX_BODY_CHARS]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KeywordRule(_Strict):
    """Answer ``reply`` when the body's first word (punctuation ignored) is in ``keywords``."""

    keywords: list[str] = Field(min_length=1)
    reply: str = Field(min_length=1, max_length=MAX_BODY_CHARS)

    @field_validator("keywords")
    @classmethod
    def _normalise(cls, value: list[str]) -> list[str]:
        words = [normalize_keyword(word) for word in value]
        if any(not word or " " in word for word in words):
            raise ValueError("each keyword must be a single word")
        if any(classify(word) is not None for word in words):
            raise ValueError("carrier keywords (STOP, START, HELP, ...) cannot be rules")
        return words

    @field_validator("reply")
    @classmethod
    def _template(cls, value: str) -> str:
        return _check_template(value)


class Group(_Strict):
    """A fixed group: a member's message to ``number`` is forwarded to the others."""

    name: str = Field(min_length=1)
    number: E164 | None = None
    members: list[E164] = Field(min_length=2, max_length=MAX_REPLIES + 1)
    template: str = Field(default="{from}: {body}", max_length=200)

    @field_validator("template")
    @classmethod
    def _template(cls, value: str) -> str:
        return _check_template(value)


class RulesConfig(_Strict):
    """The rules file deployed with the bundle (JSON or YAML), validated at cold start."""

    help_text: str | None = Field(default=None, max_length=MAX_BODY_CHARS)
    opt_in_reply: str | None = Field(default=None, max_length=MAX_BODY_CHARS)
    keywords: list[KeywordRule] = Field(default_factory=list)
    default_reply: str | None = Field(default=None, max_length=MAX_BODY_CHARS)
    groups: list[Group] = Field(default_factory=list)
    hook: str | None = Field(
        default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", description="module:function"
    )

    @field_validator("help_text", "opt_in_reply", "default_reply")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        return None if value is None else _check_template(value)

    @model_validator(mode="after")
    def _unique_keywords(self) -> RulesConfig:
        seen: set[str] = set()
        for rule in self.keywords:
            for word in rule.keywords:
                if word in seen:
                    raise ValueError(f"keyword {word} appears in more than one rule")
                seen.add(word)
        return self


ReplyHook = Callable[[InboundSms], Sequence[Reply] | None]
"""A user hook: gets the inbound message, returns replies, or None to fall through."""


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one inbound message."""

    replies: list[Reply] = field(default_factory=list)
    keyword: KeywordKind | None = None
    rule: str = "none"
    """Which rule decided, for logs and metrics (no personal data)."""
    matched: str | None = None
    """The carrier keyword the text used (``STOP``, ``OPTOUT``...), when ``keyword`` is set."""
    unanswered: Unanswered | None = None
    """Why the sender gets no automatic answer, when the decision itself says so."""


def decide(inbound: InboundSms, rules: RulesConfig, hook: ReplyHook | None = None) -> Decision:
    """Decide the replies to ``inbound``. Pure: no I/O beyond what ``hook`` does."""
    if not can_receive_sms(inbound.from_):
        hooked = hook(inbound) if hook is not None else None
        # A reply goes to a phone number (Reply refuses anything else), so none of these
        # answers this sender: they are forwards.
        others = list(hooked or [])[:MAX_REPLIES]
        return Decision(
            others, rule="hook" if others else "none", unanswered=Unanswered.SENDER_CANNOT_RECEIVE
        )
    found = intent(inbound.body)
    if found.kind is KeywordKind.OPT_OUT:
        return Decision(keyword=found.kind, rule="opt_out", matched=found.keyword)
    if found.kind is KeywordKind.OPT_IN:
        replies = _reply_to_sender(inbound, rules.opt_in_reply)
        return Decision(replies, found.kind, "opt_in", found.keyword)
    if found.kind is KeywordKind.HELP:
        return Decision(
            _reply_to_sender(inbound, rules.help_text), found.kind, "help", found.keyword
        )
    decision = _by_rules(inbound, rules, hook)
    if found.review:
        # Maybe a request to stop, maybe not: a person reads it; no automatic answer.
        others = [r for r in decision.replies if r.to != inbound.from_]
        return Decision(others, rule=decision.rule, unanswered=Unanswered.OPT_OUT_REVIEW)
    return decision


def _by_rules(inbound: InboundSms, rules: RulesConfig, hook: ReplyHook | None) -> Decision:
    group = _group_for(inbound, rules.groups)
    if group is not None:
        return Decision(_forward(inbound, group), rule=f"group:{group.name}")

    if hook is not None:
        hooked = hook(inbound)
        if hooked is not None:
            return Decision(list(hooked)[:MAX_REPLIES], rule="hook")

    first_word = _first_word(inbound.body)
    for index, rule in enumerate(rules.keywords):
        if first_word in rule.keywords:
            return Decision(_reply_to_sender(inbound, rule.reply), rule=f"keyword:{index}")

    if rules.default_reply is not None:
        return Decision(_reply_to_sender(inbound, rules.default_reply), rule="default")
    return Decision()


def _first_word(body: str) -> str:
    """The first run of letters and digits, upper-cased: "Hours?" and "hours, pls" give HOURS."""
    found = _WORD.search(normalize_keyword(body))
    return found.group(0) if found else ""


def _reply_to_sender(inbound: InboundSms, template: str | None) -> list[Reply]:
    text = render(template, inbound) if template else ""
    if not text.strip():  # e.g. "{body}" echoing an empty message: nothing to send
        return []
    return [Reply(to=inbound.from_, from_=inbound.to, body=text)]


def _group_for(inbound: InboundSms, groups: list[Group]) -> Group | None:
    for group in groups:
        if group.number is None or group.number == inbound.to:
            return group
    return None


def _forward(inbound: InboundSms, group: Group) -> list[Reply]:
    if inbound.from_ not in group.members:
        return []
    body = render(group.template, inbound)
    return [
        Reply(to=member, from_=inbound.to, body=body)
        for member in dict.fromkeys(group.members)
        if member != inbound.from_
    ]
