from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from plumsms.domain.errors import ValidationFailed
from plumsms.domain.replyxml import (
    REPLACEMENT,
    ReplyElement,
    build_reply,
    reply_schema,
    safe_parser,
    validate,
    xml_safe,
)
from plumsms_local.simulator.engine import ReplyRejected
from plumsms_local.simulator.testing import ReplyNode, accepted_reply

PROLOGUE = b'<?xml version="1.0" encoding="UTF-8"?>\n'


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


@pytest.mark.parametrize(
    "document",
    [
        b'<reply><sms_message color="red">x</sms_message></reply>',
        b'<reply><sms_message to="call me">x</sms_message></reply>',
        b"<answer/>",
    ],
)
def test_the_bundles_schema_rejects_unknown_attributes_bad_numbers_and_other_roots(
    document: bytes,
) -> None:
    with pytest.raises(ValidationFailed):
        validate(etree.fromstring(document, safe_parser()))


def test_plum_refuses_replies_that_declare_entities() -> None:
    # (The bundle never parses replies; Plum, as the simulator plays it, does.)
    evil = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<reply><sms_message>&x;</sms_message></reply>"
    )
    with pytest.raises(ReplyRejected, match="DTD"):
        accepted_reply(evil)
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><reply><sms_message>&b;</sms_message></reply>'
    )
    with pytest.raises(ReplyRejected):
        accepted_reply(laughs)


@given(st.text())
def test_any_unicode_body_gives_xml_plum_accepts_whose_text_round_trips(body: str) -> None:
    xml = build_reply([ReplyElement(body=body[:1600])])
    parsed = accepted_reply(xml)
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


def test_xml_safe_replaces_exactly_the_characters_xml_1_0_forbids() -> None:
    # XML 1.0's Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]
    allowed = [(0x9, 0x9), (0xA, 0xA), (0xD, 0xD), (0x20, 0xD7FF), (0xE000, 0xFFFD),
               (0x10000, 0x10FFFF)]  # fmt: skip
    every = "".join(map(chr, range(0x110000)))
    expected = "".join(
        c if any(lo <= ord(c) <= hi for lo, hi in allowed) else REPLACEMENT for c in every
    )
    assert xml_safe(every) == expected


# -- the one parser for untrusted XML (replies, Plum's answers, the simulator) -------------


def test_safe_parser_leaves_internal_entities_unexpanded() -> None:
    # GIVEN a document that declares an entity (resolve_entities=False)
    document = b'<!DOCTYPE r [<!ENTITY x "expanded">]><r>&x;</r>'
    # WHEN the shared parser reads it, THEN the entity is left as a reference
    root = etree.fromstring(document, safe_parser())
    assert root.text is None
    assert "expanded" not in etree.tostring(root, encoding="unicode")


def test_safe_parser_never_reads_a_file_through_an_external_entity(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret", encoding="utf-8")
    document = f'<!DOCTYPE r [<!ENTITY x SYSTEM "{secret.as_uri()}">]><r>&x;</r>'.encode()
    root = etree.fromstring(document, safe_parser())
    assert "s3cret" not in etree.tostring(root, encoding="unicode")


def test_safe_parser_does_not_load_an_external_dtd(tmp_path: Path) -> None:
    # GIVEN a DTD on disk that would add a default attribute (load_dtd=False)
    dtd = tmp_path / "r.dtd"
    dtd.write_text('<!ATTLIST r injected CDATA "yes">', encoding="utf-8")
    document = f'<!DOCTYPE r SYSTEM "{dtd.as_uri()}"><r/>'.encode()
    # WHEN the shared parser reads a document naming it, THEN the DTD is not read
    root = etree.fromstring(document, safe_parser())
    assert root.get("injected") is None
    assert root.getroottree().docinfo.externalDTD is None


def test_safe_parser_refuses_documents_nested_deeper_than_256(tmp_path: Path) -> None:
    # GIVEN 300 nested elements (huge_tree=False keeps libxml2's depth and size limits)
    deep = b"<r>" + b"<a>" * 300 + b"</a>" * 300 + b"</r>"
    with pytest.raises(etree.XMLSyntaxError, match="depth"):
        etree.fromstring(deep, safe_parser())


def test_a_doctype_free_reply_cannot_use_entities_either() -> None:
    # GIVEN a reply without DOCTYPE that uses an entity reference
    document = PROLOGUE + b"<reply><sms_message>&x;</sms_message></reply>"
    # THEN Plum refuses it as not well-formed, not expanded or passed through
    with pytest.raises(ReplyRejected, match="not well-formed"):
        accepted_reply(document)


def test_a_doctype_free_reply_cannot_pull_in_remote_content() -> None:
    # GIVEN a reply without DOCTYPE that points at remote content (XInclude)
    document = PROLOGUE + (
        b'<reply xmlns:xi="http://www.w3.org/2001/XInclude">'
        b'<xi:include href="http://127.0.0.1:9/x" parse="text"/></reply>'
    )
    # THEN it is refused by the schema; nothing is fetched (sockets are off in unit tests)
    with pytest.raises(ReplyRejected, match="not valid against the Plum reply schema"):
        accepted_reply(document)
    with pytest.raises(ValidationFailed, match="not valid Plum reply XML"):
        validate(etree.fromstring(document, safe_parser()))


def test_plum_reads_back_every_attribute_and_an_empty_body() -> None:
    document = build_reply(
        [ReplyElement(body="", to="19998881234", from_="2435678910", result_url="https://h/p")]
    )
    assert accepted_reply(document) == [
        ReplyNode(body="", to="19998881234", from_="2435678910", result_url="https://h/p")
    ]


def test_schema_violation_names_the_broken_rule() -> None:
    root = etree.fromstring(b'<reply><sms_message color="red">x</sms_message></reply>')
    with pytest.raises(ValidationFailed) as info:
        validate(root)
    assert info.value.field == "reply"
    assert "color" in str(info.value)


def test_the_schema_is_loaded_once() -> None:
    assert reply_schema() is reply_schema()


def test_a_reply_element_cannot_be_altered() -> None:
    element = ReplyElement(body="hi")
    with pytest.raises(AttributeError):
        element.body = "changed"  # type: ignore[misc]
