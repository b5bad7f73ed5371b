from __future__ import annotations

import pytest
from pydantic import ValidationError

from plumsms.domain.keywords import KeywordKind, classify
from plumsms.domain.models import InboundSms, Reply
from plumsms.domain.rules import RulesConfig, decide

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
