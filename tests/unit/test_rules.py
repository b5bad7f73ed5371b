from __future__ import annotations

import pytest
from pydantic import ValidationError

from plumsms.domain.guards import Unanswered
from plumsms.domain.keywords import KeywordKind, classify
from plumsms.domain.models import MAX_BODY_CHARS, InboundSms, Reply
from plumsms.domain.rules import MAX_REPLIES, RulesConfig, decide, render

SENDER, NUMBER = "+19998881234", "+12435678910"


def sms(body: str, sender: str = SENDER, to: str = NUMBER) -> InboundSms:
    return InboundSms.model_validate(
        {"sms_message_id": "a" * 32, "to": to, "from": sender, "body": body}
    )


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("STOP", KeywordKind.OPT_OUT), (" stop\n", KeywordKind.OPT_OUT),
        ("Unsubscribe", KeywordKind.OPT_OUT), ("STOPALL", KeywordKind.OPT_OUT),
        ("end", KeywordKind.OPT_OUT), ("quit", KeywordKind.OPT_OUT),
        ("cancel", KeywordKind.OPT_OUT),
        ("START", KeywordKind.OPT_IN), ("unstop", KeywordKind.OPT_IN), ("Yes", KeywordKind.OPT_IN),
        ("help", KeywordKind.HELP), ("INFO", KeywordKind.HELP),
        ("stop it", KeywordKind.OPT_OUT), ("stopp", None), ("", None),
    ],
)  # fmt: skip
def test_carrier_keywords(body: str, kind: KeywordKind | None) -> None:
    assert classify(body) is kind


def test_opt_out_beats_every_rule() -> None:
    rules = RulesConfig.model_validate({"default_reply": "hi", "hook": "x:y"})
    decision = decide(
        sms("STOP"), rules, hook=lambda _: [Reply(to=SENDER, from_=NUMBER, body="no")]
    )
    assert decision.keyword is KeywordKind.OPT_OUT and decision.replies == []


def test_keyword_rule_matches_first_word_case_insensitively() -> None:
    rules = RulesConfig.model_validate(
        {"keywords": [{"keywords": ["Hours"], "reply": "9-5 at {to}"}]}
    )
    decision = decide(sms("  HOURS  today?"), rules)
    assert [r.body for r in decision.replies] == [f"9-5 at {NUMBER}"]
    assert decide(sms("what are your hours"), rules).replies == []


def test_placeholders_are_not_format_strings() -> None:
    rules = RulesConfig.model_validate({"default_reply": "{body}"})
    decision = decide(sms("{from.__class__} {0}"), rules)
    assert decision.replies[0].body == "{from.__class__} {0}"


def test_group_applies_only_to_its_number() -> None:
    rules = RulesConfig.model_validate(
        {"groups": [{"name": "g", "number": "+12435670000", "members": [SENDER, "+19998880001"]}],
         "default_reply": "default"}
    )  # fmt: skip
    assert [r.body for r in decide(sms("hi"), rules).replies] == ["default"]
    grouped = decide(sms("hi", to="+12435670000"), rules)
    assert [(r.to, r.from_) for r in grouped.replies] == [("+19998880001", "+12435670000")]


def test_hook_none_falls_through_to_keywords() -> None:
    rules = RulesConfig.model_validate({"keywords": [{"keywords": ["a"], "reply": "kw"}]})
    assert [r.body for r in decide(sms("a"), rules, hook=lambda _: None).replies] == ["kw"]
    assert decide(sms("a"), rules, hook=lambda _: []).replies == []


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"keywords": [{"keywords": ["stop"], "reply": "x"}]}, "keywords.0.keywords"),
        ({"keywords": [{"keywords": ["two words"], "reply": "x"}]}, "keywords.0.keywords"),
        ({"default_reply": "hi {name}"}, "default_reply"),
        ({"unknown_option": 1}, "unknown_option"),
        ({"groups": [{"name": "g", "members": ["+19998881234"]}]}, "groups.0.members"),
        ({"hook": "not a path"}, "hook"),
        (
            {"keywords": [{"keywords": ["a"], "reply": "1"}, {"keywords": ["A"], "reply": "2"}]},
            "keywords",
        ),
    ],
)
def test_invalid_rules_name_the_problem(data: dict[str, object], where: str) -> None:
    with pytest.raises(ValidationError) as info:
        RulesConfig.model_validate(data)
    locations = {".".join(str(p) for p in e["loc"]) for e in info.value.errors()}
    assert any(
        loc.startswith(where) or (where == "keywords" and "keyword" in str(info.value))
        for loc in locations | {""}
    )


# -- templates are checked wherever they are written --------------------------------------


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"keywords": [{"keywords": ["hours"], "reply": "9-5, {name}"}]}, "keywords.0.reply"),
        (
            {"groups": [{"name": "g", "members": [SENDER, "+19998880001"], "template": "{who}"}]},
            "groups.0.template",
        ),
        ({"help_text": "call {agent}"}, "help_text"),
        ({"opt_in_reply": "welcome back {first_name}"}, "opt_in_reply"),
    ],
)
def test_an_unknown_placeholder_is_refused_where_it_is_written(
    data: dict[str, object], where: str
) -> None:
    # GIVEN a rules file with a placeholder we do not fill
    # WHEN it is loaded, THEN it is refused, naming the field and the placeholders we know
    with pytest.raises(ValidationError) as info:
        RulesConfig.model_validate(data)
    (error,) = info.value.errors()
    assert ".".join(str(part) for part in error["loc"]) == where
    assert "unknown placeholder" in error["msg"] and "{from}, {to} or {body}" in error["msg"]


def test_every_known_placeholder_is_accepted_and_filled() -> None:
    rules = RulesConfig.model_validate(
        {"keywords": [{"keywords": ["echo"], "reply": "{from}>{to}: {body}"}]}
    )
    assert [r.body for r in decide(sms("echo this"), rules).replies] == [
        f"{SENDER}>{NUMBER}: echo this"
    ]


def test_a_reply_is_cut_to_the_longest_body_we_send() -> None:
    rules = RulesConfig.model_validate({"default_reply": "{body}{body}"})
    long_body = "x" * MAX_BODY_CHARS
    (reply,) = decide(sms(long_body), rules).replies
    assert reply.body == "x" * MAX_BODY_CHARS


# -- carrier keywords answer the sender -------------------------------------------------


def test_opt_in_and_help_answer_the_sender_with_their_texts() -> None:
    rules = RulesConfig.model_validate({"opt_in_reply": "welcome back", "help_text": "call us"})
    opt_in = decide(sms("START"), rules)
    assert (opt_in.keyword, opt_in.rule) == (KeywordKind.OPT_IN, "opt_in")
    assert [(r.to, r.from_, r.body) for r in opt_in.replies] == [(SENDER, NUMBER, "welcome back")]
    helped = decide(sms("HELP"), rules)
    assert (helped.keyword, helped.rule, [r.body for r in helped.replies]) == (
        KeywordKind.HELP,
        "help",
        ["call us"],
    )
    # Without texts they answer nothing.
    assert decide(sms("HELP"), RulesConfig()).replies == []


def test_a_reply_that_renders_blank_is_not_sent() -> None:
    rules = RulesConfig.model_validate({"default_reply": "{body}"})
    assert decide(sms("   "), rules).replies == []


def test_the_matching_keyword_rule_is_named_by_its_position() -> None:
    rules = RulesConfig.model_validate(
        {"keywords": [{"keywords": ["a"], "reply": "first"}, {"keywords": ["b"], "reply": "2nd"}]}
    )
    decision = decide(sms("b, please"), rules)
    assert (decision.rule, [r.body for r in decision.replies]) == ("keyword:1", ["2nd"])
    assert decide(sms("?!"), rules).rule == "none"


def test_no_rule_and_no_default_answers_nothing() -> None:
    decision = decide(sms("hello"), RulesConfig())
    assert (decision.replies, decision.keyword, decision.rule) == ([], None, "none")


# -- groups ------------------------------------------------------------------------------

A, B, C = "+19998880001", "+19998880002", "+19998880003"


def test_a_group_without_a_number_takes_messages_to_any_of_our_numbers() -> None:
    rules = RulesConfig.model_validate({"groups": [{"name": "all", "members": [SENDER, A]}]})
    for number in (NUMBER, "+12435670000"):
        decision = decide(sms("hi", to=number), rules)
        assert decision.rule == "group:all"
        assert [(r.to, r.from_, r.body) for r in decision.replies] == [(A, number, f"{SENDER}: hi")]


def test_the_group_whose_number_was_texted_is_chosen() -> None:
    # GIVEN two groups on two numbers, and a message to the second number
    rules = RulesConfig.model_validate(
        {
            "groups": [
                {"name": "first", "number": "+12435670000", "members": [SENDER, A]},
                {"name": "second", "number": NUMBER, "members": [SENDER, B]},
            ]
        }
    )
    decision = decide(sms("hi"), rules)
    # THEN the second group forwards it
    assert decision.rule == "group:second"
    assert [r.to for r in decision.replies] == [B]


def test_a_group_forwards_to_every_other_member_in_listed_order_once_each() -> None:
    # GIVEN members listed C, SENDER, A, C (one listed twice) WHEN SENDER writes
    rules = RulesConfig.model_validate(
        {"groups": [{"name": "g", "members": [C, SENDER, A, C, B], "template": "[{from}] {body}"}]}
    )
    decision = decide(sms("meet at 6"), rules)
    # THEN C, A and B get it, in that order, once each, from the group's number
    assert [r.to for r in decision.replies] == [C, A, B]
    assert {(r.from_, r.body) for r in decision.replies} == {(NUMBER, f"[{SENDER}] meet at 6")}


def test_a_non_member_writing_to_a_group_gets_no_answer() -> None:
    rules = RulesConfig.model_validate(
        {"groups": [{"name": "g", "members": [A, B]}], "default_reply": "default"}
    )
    decision = decide(sms("hi"), rules)
    assert (decision.rule, decision.replies) == ("group:g", [])


def test_a_group_holds_at_most_50_members_one_writer_and_49_recipients() -> None:
    # 49: the inbound, its replies and their senders' counters fit one 100-item transaction.
    members = [f"+1999888{i:04d}" for i in range(MAX_REPLIES + 1)]
    rules = RulesConfig.model_validate({"groups": [{"name": "g", "members": members}]})
    assert len(decide(sms("hi", sender=members[0]), rules).replies) == MAX_REPLIES == 49
    too_many = [*members, "+19998889999"]
    with pytest.raises(ValidationError, match=r"groups\.0\.members"):
        RulesConfig.model_validate({"groups": [{"name": "g", "members": too_many}]})


def test_a_hook_causes_at_most_49_replies() -> None:
    replies = [Reply(to=SENDER, from_=NUMBER, body=f"r{i}") for i in range(MAX_REPLIES + 5)]
    decision = decide(sms("hi"), RulesConfig(), hook=lambda _: replies)
    assert decision.rule == "hook"
    assert [r.body for r in decision.replies] == [f"r{i}" for i in range(49)]


def test_render_leaves_a_placeholder_it_does_not_know_as_written() -> None:
    # GIVEN a template that was not checked (render is also called directly)
    # THEN an unknown placeholder stays as written while known ones are filled
    assert render("{name}, {from} wrote", sms("hi")) == f"{{name}}, {SENDER} wrote"


def test_a_keyword_rule_needs_at_least_one_keyword() -> None:
    with pytest.raises(ValidationError, match=r"keywords\.0\.keywords"):
        RulesConfig.model_validate({"keywords": [{"keywords": [], "reply": "x"}]})
    one = RulesConfig.model_validate({"keywords": [{"keywords": ["a"], "reply": "x"}]})
    assert one.keywords[0].keywords == ["A"]


def test_loaded_rules_cannot_be_altered() -> None:
    rules = RulesConfig.model_validate(
        {"keywords": [{"keywords": ["a"], "reply": "x"}], "default_reply": "d"}
    )
    with pytest.raises(ValidationError, match="frozen"):
        rules.default_reply = "changed"
    with pytest.raises(ValidationError, match="frozen"):
        rules.keywords[0].reply = "changed"


def test_a_keyword_rule_needs_a_reply() -> None:
    with pytest.raises(ValidationError, match=r"keywords\.0\.reply"):
        RulesConfig.model_validate({"keywords": [{"keywords": ["a"], "reply": ""}]})


def test_a_group_template_takes_200_characters_not_more() -> None:
    group = {"name": "g", "members": [SENDER, A]}
    kept = RulesConfig.model_validate({"groups": [{**group, "template": "t" * 200}]})
    assert kept.groups[0].template == "t" * 200
    with pytest.raises(ValidationError, match=r"groups\.0\.template"):
        RulesConfig.model_validate({"groups": [{**group, "template": "t" * 201}]})


def test_a_group_needs_a_name() -> None:
    with pytest.raises(ValidationError, match=r"groups\.0\.name"):
        RulesConfig.model_validate({"groups": [{"name": "", "members": [SENDER, A]}]})


def test_a_group_number_matches_whatever_way_it_is_written() -> None:
    # GIVEN a group whose number is written nationally, and a higher number listed first
    rules = RulesConfig.model_validate(
        {
            "groups": [
                {"name": "other", "number": "+19990000000", "members": [SENDER, A]},
                {"name": "ours", "number": "(243) 567-8910", "members": [SENDER, B]},
            ]
        }
    )
    # WHEN a member texts our number in E.164
    decision = decide(sms("hi", to="+12435678910"), rules)
    # THEN the group on that number, and only it, forwards the message
    assert (decision.rule, [r.to for r in decision.replies]) == ("group:ours", [B])


def test_the_writer_is_left_out_however_the_member_list_writes_them() -> None:
    rules = RulesConfig.model_validate(
        {"groups": [{"name": "g", "members": ["(999) 888-1234", A]}]}
    )
    assert [r.to for r in decide(sms("hi", sender="+19998881234"), rules).replies] == [A]


def test_a_decision_cannot_be_altered() -> None:
    decision = decide(sms("hello"), RulesConfig())
    with pytest.raises(AttributeError):
        decision.rule = "changed"  # type: ignore[misc]


# -- a sender that cannot receive an SMS (short code, alphanumeric) ---------------------


def test_a_short_code_sender_gets_no_answer_and_the_hook_may_still_forward() -> None:
    # GIVEN a text from a short code, and a hook forwarding it to a team (a reply to the
    # short code itself cannot even be made: a reply goes to a phone number)
    team = "+13105550123"
    seen: list[str] = []

    def hook(inbound: InboundSms) -> list[Reply]:
        seen.append(inbound.from_)
        return [Reply(to=team, from_=NUMBER, body="a short code wrote")]

    with pytest.raises(ValidationError):
        Reply(to="22395", from_=NUMBER, body="thanks")
    decision = decide(sms("HELLO", sender="22395"), RulesConfig(), hook=hook)
    # THEN the hook saw it and the forward is kept; the short code is not answered
    assert seen == ["22395"]
    assert [r.to for r in decision.replies] == [team]
    assert decision.rule == "hook"
    assert decision.unanswered is Unanswered.SENDER_CANNOT_RECEIVE


def test_a_short_code_sender_without_a_hook_or_with_a_silent_one_gets_nothing() -> None:
    for hook in (None, lambda _: None, lambda _: []):
        decision = decide(sms("HELP", sender="AMAZON"), RulesConfig(), hook=hook)  # type: ignore[arg-type]
        assert decision.replies == []
        assert decision.rule == "none"
        assert decision.keyword is None
        assert decision.unanswered is Unanswered.SENDER_CANNOT_RECEIVE


def test_a_hook_answering_a_short_code_many_times_is_capped() -> None:
    team = [f"+1310555{i:04d}" for i in range(MAX_REPLIES + 3)]

    def hook(_: InboundSms) -> list[Reply]:
        return [Reply(to=to, from_=NUMBER, body="fwd") for to in team]

    decision = decide(sms("HI", sender="22395"), RulesConfig(), hook=hook)
    assert [r.to for r in decision.replies] == team[:MAX_REPLIES]


def test_a_text_for_review_answers_nobody_but_forwards_still_go() -> None:
    # GIVEN a text that may be a request to stop (a person reads it), and a hook that
    # answers the sender and forwards it to two colleagues
    colleagues = ["+13105550123", "+19998889999"]  # one each side of SENDER's number

    def hook(_: InboundSms) -> list[Reply]:
        return [Reply(to=SENDER, from_=NUMBER, body="we hear you")] + [
            Reply(to=to, from_=NUMBER, body="please read") for to in colleagues
        ]

    decision = decide(sms("please stop texting me right now thank you"), RulesConfig(), hook)
    # THEN no automatic answer goes to the sender; both forwards stay
    assert [r.to for r in decision.replies] == colleagues
    assert decision.unanswered is Unanswered.OPT_OUT_REVIEW
    assert decision.rule == "hook"
