from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from plumsms.domain.errors import ValidationFailed
from plumsms.domain.replyxml import ReplyElement, build_reply, parse_reply, xml_safe


def test_empty_reply_is_plums_do_nothing_document() -> None:
    assert build_reply([]) == b'<?xml version="1.0" encoding="UTF-8"?>\n<reply/>'


def test_attributes_only_where_given_and_escaped() -> None:
    xml = build_reply(
        [
            ReplyElement(body="a & b < c"),
            ReplyElement(
                body="x", to="19998881234", from_="2435678910", result_url="https://h/p?a=1&b=2"
            ),
        ]
    )
    root = etree.fromstring(xml)
    first, second = list(root)
    assert first.attrib == {} and first.text == "a & b < c"
    assert second.attrib == {
        "to": "19998881234",
        "from": "2435678910",
        "result_url": "https://h/p?a=1&b=2",
    }
    assert b"a &amp; b &lt; c" in xml


def test_schema_rejects_unknown_attributes_and_bad_numbers() -> None:
    with pytest.raises(ValidationFailed):
        parse_reply(b'<reply><sms_message color="red">x</sms_message></reply>')
    with pytest.raises(ValidationFailed):
        parse_reply(b'<reply><sms_message to="call me">x</sms_message></reply>')
    with pytest.raises(ValidationFailed):
        parse_reply(b"<answer/>")
    with pytest.raises(ValidationFailed):
        parse_reply(b"<reply><sms_message>unclosed</reply>")


def test_entities_are_not_expanded() -> None:
    evil = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<reply><sms_message>&x;</sms_message></reply>"
    )
    with pytest.raises(ValidationFailed, match="DOCTYPE"):
        parse_reply(evil)
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><reply><sms_message>&b;</sms_message></reply>'
    )
    with pytest.raises(ValidationFailed):
        parse_reply(laughs)


@given(st.text())
def test_any_unicode_body_gives_valid_xml_whose_text_round_trips(body: str) -> None:
    xml = build_reply([ReplyElement(body=body[:1600])])
    parsed = parse_reply(xml)
    assert parsed[0].body == xml_safe(body[:1600])


@given(
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]).filter(
            lambda c: xml_safe(c) == c
        )
    )
)
def test_xml_safe_is_identity_on_allowed_text(text: str) -> None:
    assert xml_safe(text) == text
