"""Plum's answer envelope, JSON and XML: strict parsing, typed errors, no expansion."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plumsms.adapters.plum.envelope import (
    Format,
    parse_envelope,
    read_answer,
    resources_in,
)
from plumsms.domain.plum import (
    InvalidRecipient,
    NotAMobileNumber,
    PlumError,
    PlumRejected,
    PlumSmsResource,
    PlumUnavailable,
    Unauthorized,
    UnexpectedResponse,
    UnsubscribedRecipient,
)

ID_A = "0123456789abcdef0123456789abcdef"
ID_B = "fedcba9876543210fedcba9876543210"


def _resource(sms_message_id: str = ID_A) -> dict[str, object]:
    return {
        "sms_message_id": sms_message_id,
        "to": "19998881234",
        "from": "2435678910",
        "body": "Hello there",
        "request_timestamp": 1_700_000_000,
        "result_url": "http://example.com/status",
        "status": "queued",
    }


def _json(document: object) -> bytes:
    return json.dumps(document).encode()


def _xml_message(sms_message_id: str = ID_A, body: str = "Hello there") -> str:
    return (
        "<sms_message>"
        f"<sms_message_id>{sms_message_id}</sms_message_id>"
        "<to>19998881234</to><from>2435678910</from>"
        f"<body>{body}</body>"
        "<request_timestamp>1700000000</request_timestamp>"
        "<result_url>http://example.com/status</result_url>"
        "<status>queued</status>"
        "</sms_message>"
    )


def _answer(body: bytes, fmt: Format = "json", status: int = 200) -> list[PlumSmsResource]:
    return read_answer(body, fmt=fmt, http_status=status, request_may_have_run=True)


# --- JSON ---------------------------------------------------------------------------


def test_json_queue_success_gives_every_resource() -> None:
    body = _json(
        {
            "status": "success",
            "error": "",
            "result": {"sms_messages": [_resource(ID_A), _resource(ID_B)]},
        }
    )

    resources = _answer(body)

    assert [r.sms_message_id for r in resources] == [ID_A, ID_B]
    assert resources[0].from_ == "2435678910"


@pytest.mark.parametrize(
    "result",
    [
        _resource(),
        {"sms_message": _resource()},
        {"sms_messages": _resource()},
        [_resource()],
    ],
)
def test_json_result_shapes_for_single_resources(result: object) -> None:
    assert [r.sms_message_id for r in resources_in(result)] == [ID_A]


@pytest.mark.parametrize("result", [{"sms_messages": []}, [], {}, ""])
def test_empty_results_are_empty_lists(result: object) -> None:
    assert resources_in(result) == []


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("Invalid 'to' phone number", InvalidRecipient),
        ('"Attempt to send to unsubscribed recipient"', UnsubscribedRecipient),
        ('"To number: +19998881234, is not a mobile number"', NotAMobileNumber),
        ("Unauthorized access to queue service", Unauthorized),
        ("Error sending sms request", PlumRejected),
    ],
)
@pytest.mark.parametrize("http_status", [200, 400, 500])
def test_documented_failures_win_over_http_status(
    error: str, expected: type[PlumError], http_status: int
) -> None:
    body = _json({"status": "failure", "error": error})

    with pytest.raises(expected) as caught:
        _answer(body, status=http_status)

    assert caught.value.http_status == http_status
    assert caught.value.maybe_sent is False


@pytest.mark.parametrize(
    ("http_status", "expected", "maybe_sent"),
    [
        (200, PlumRejected, False),
        (400, PlumRejected, False),
        (401, Unauthorized, False),
        (429, PlumUnavailable, False),
        (503, PlumUnavailable, False),
        (500, PlumUnavailable, True),
        (504, PlumUnavailable, True),
    ],
)
def test_unknown_or_empty_failures_fall_back_to_http_status(
    http_status: int, expected: type[PlumError], maybe_sent: bool
) -> None:
    for error in ("", "Busy, try later"):
        with pytest.raises(expected) as caught:
            _answer(_json({"status": "failure", "error": error}), status=http_status)
        assert caught.value.maybe_sent is maybe_sent


def test_plums_own_json_sample_with_trailing_comma_is_malformed() -> None:
    body = b'{"status":"failure","error":"Unauthorized access to sample service",}'

    with pytest.raises(UnexpectedResponse, match="malformed JSON"):
        parse_envelope(body, "json")
    # With a status code that says it, the meaning survives the malformed body.
    with pytest.raises(Unauthorized):
        _answer(body, status=401)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"null",
        b"[]",
        b'{"error": ""}',
        b'{"status": "maybe"}',
        b'{"status": 1}',
        b'{"status": "failure", "error": ["x"]}',
        b'{"status": "success", "result": NaN}',
        b"\xff\xfe\x00garbage",
        b"[" * 100_000,
        b'{"status": "success", "result": {"sms_messages": [1]}}',
        b'{"status": "success", "result": {"other": 1}}',
        b'{"status": "success", "error": ""}',
    ],
)
def test_malformed_json_answers_are_unexpected_responses(body: bytes) -> None:
    with pytest.raises(UnexpectedResponse):
        _answer(body)


def test_unexpected_response_on_queue_2xx_may_have_sent() -> None:
    with pytest.raises(UnexpectedResponse) as caught:
        _answer(b"<html>proxy error</html>", status=200)
    assert caught.value.maybe_sent is True

    with pytest.raises(UnexpectedResponse) as caught:
        read_answer(b"<html/>", fmt="json", http_status=200, request_may_have_run=False)
    assert caught.value.maybe_sent is False

    with pytest.raises(UnexpectedResponse) as caught:
        _answer(b"<html>not found</html>", status=404)
    assert caught.value.maybe_sent is False


def test_missing_resource_fields_are_named_without_their_values() -> None:
    record = _resource()
    del record["status"]
    record["to"] = ""
    body = _json({"status": "success", "result": {"sms_messages": [record]}})

    with pytest.raises(UnexpectedResponse) as caught:
        _answer(body)

    message = str(caught.value)
    assert "status" in message
    assert "to" in message
    assert "Hello there" not in message
    assert "2435678910" not in message


def test_error_messages_never_carry_the_raw_body() -> None:
    secret = "my card is 4111 1111 1111 1111 and a long private story " * 20
    body = b'{"status": "success", "result": ' + json.dumps(secret).encode()

    with pytest.raises(UnexpectedResponse) as caught:
        _answer(body)

    assert "private story" not in str(caught.value)
    assert len(caught.value.excerpt) <= 60
    assert "4111" not in caught.value.excerpt


# --- XML ----------------------------------------------------------------------------


def test_xml_queue_success() -> None:
    body = (
        '<?xml version="1.0"?><queue><status>success</status><error/>'
        f"<result><sms_messages>{_xml_message(ID_A)}{_xml_message(ID_B)}</sms_messages>"
        "</result></queue>"
    ).encode()

    resources = _answer(body, "xml")

    assert [r.sms_message_id for r in resources] == [ID_A, ID_B]
    assert resources[0].request_timestamp == 1_700_000_000


def test_xml_single_message_escaped_body_comments_and_namespaces() -> None:
    message = _xml_message(body="Fish &amp; chips &lt;3 caf\u00e9")
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<status xmlns="urn:x">\n'
        "  <status> Success </status>\n  <error></error>\n  <!-- a comment -->\n"
        f"  <result>{message}</result>\n"
        "</status>"
    ).encode()

    [resource] = _answer(body, "xml")

    assert resource.body == "Fish & chips <3 caf\u00e9"


def test_xml_failure_maps_the_error_text() -> None:
    body = b"<queue><status>failure</status><error>Invalid 'to' phone number</error></queue>"

    with pytest.raises(InvalidRecipient):
        _answer(body, "xml", status=400)


def test_xml_empty_message_list() -> None:
    body = b"<messages><status>success</status><error/><result><sms_messages/></result></messages>"

    assert _answer(body, "xml") == []


def test_plums_own_xml_sample_with_unclosed_tag_is_malformed() -> None:
    body = (
        "<queue><status>success</status><error/><result><sms_messages><sms_message>"
        f"<sms_message_id>{ID_A}</sms_message_id><to>19998881234</to>"
        "<from>2435678910</from><body>Hi</body>"
        "<request_timestamp>1700000000</request_timestamp>"
        "<result_url>http://example.com/status"
        "<status>queued</status></sms_message></sms_messages></result></queue>"
    ).encode()

    with pytest.raises(UnexpectedResponse, match="malformed XML") as caught:
        _answer(body, "xml")

    assert caught.value.maybe_sent is True  # a 2xx queue answer we cannot read


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE queue [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<queue><status>failure</status><error>&xxe;</error></queue>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<queue><status>failure</status><error>&lol9;</error></queue>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE queue SYSTEM "http://127.0.0.1:9/evil.dtd">
<queue><status>success</status><error/><result/></queue>"""


SMALL_INTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE queue [<!ENTITY e "Invalid 'to' phone number">]>
<queue><status>failure</status><error>&e;</error></queue>"""


@pytest.mark.parametrize("body", [XXE, BILLION_LAUGHS, EXTERNAL_DTD, SMALL_INTERNAL_ENTITY])
def test_xml_with_a_dtd_is_refused_without_expanding_anything(body: bytes) -> None:
    started = time.monotonic()

    with pytest.raises(UnexpectedResponse) as caught:
        _answer(body, "xml")

    assert time.monotonic() - started < 1.0
    # Either our DTD check or libxml2's own amplification / no-network guard refuses it.
    assert "DTD" in str(caught.value) or "malformed XML" in str(caught.value)
    assert type(caught.value) is UnexpectedResponse  # not InvalidRecipient via an entity
    assert "root:" not in str(caught.value)
    assert "lollol" not in str(caught.value)
    assert "lollol" not in caught.value.excerpt


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<queue>",
        b"<queue><status>success</status><error/><result><a></b></result></queue>",
        b"<queue><error/></queue>",
        b"<queue><status>ok</status></queue>",
        b'<?xml version="1.0" encoding="no-such-codec"?><queue/>',
        b"<queue><status>failure</status><error>&undefined;</error></queue>",
        b"<queue><status>success</status><result>" + b"<a>" * 10_000 + b"</result></queue>",
        b"<queue><status>success</status><error/><result><sms_messages><sms_message>"
        b"<to><nested/></to></sms_message></sms_messages></result></queue>",
        b"<queue><status>success</status><error/></queue>",
        b'{"status": "success", "result": []}',
    ],
)
def test_malformed_xml_answers_are_unexpected_responses(body: bytes) -> None:
    with pytest.raises(UnexpectedResponse):
        _answer(body, "xml")


# --- properties ---------------------------------------------------------------------

_json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=40)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)
_fields = st.fixed_dictionaries(
    {},
    optional={
        "sms_message_id": st.sampled_from([ID_A, ID_B.upper(), "x"]) | _json_scalars,
        "to": _json_scalars,
        "from": _json_scalars,
        "body": _json_scalars,
        "request_timestamp": st.integers() | st.text(max_size=12),
        "result_url": _json_scalars,
        "status": _json_scalars,
    },
)
_envelopes = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(["success", "failure", "SUCCESS", ""]) | _json_values,
        "error": st.sampled_from(["", "Invalid 'to' phone number"]) | _json_values,
        "result": st.fixed_dictionaries(
            {"sms_messages": st.lists(_fields | st.builds(_resource), max_size=3)}
        )
        | _json_values,
    },
)
_json_answers = st.one_of(
    st.binary(max_size=512),
    _envelopes.map(lambda doc: json.dumps(doc).encode()),
    st.tuples(_envelopes, st.integers(0, 300)).map(
        lambda pair: json.dumps(pair[0]).encode()[: pair[1]]
    ),
)
_xml_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
_xml_answers = st.one_of(
    st.binary(max_size=512),
    st.tuples(_xml_text, _xml_text, _xml_text).map(
        lambda parts: (
            f"<queue><status>{parts[0]}</status><error>{parts[1]}</error>"
            f"<result><sms_messages>{parts[2]}</sms_messages></result></queue>"
        ).encode("utf-8", "surrogatepass")
    ),
    st.tuples(_xml_text, st.integers(0, 400)).map(
        lambda pair: (
            "<queue><status>success</status><error/><result><sms_messages>"
            + _xml_message(body=pair[0])
            + "</sms_messages></result></queue>"
        ).encode("utf-8", "surrogatepass")[: pair[1]]
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    body=_json_answers,
    http_status=st.integers(100, 599),
    request_may_have_run=st.booleans(),
)
def test_any_json_answer_gives_resources_or_a_plum_error(
    body: bytes, http_status: int, request_may_have_run: bool
) -> None:
    try:
        resources = read_answer(
            body, fmt="json", http_status=http_status, request_may_have_run=request_may_have_run
        )
    except PlumError:
        return
    assert all(isinstance(resource, PlumSmsResource) for resource in resources)


@settings(max_examples=300, deadline=None)
@given(
    body=_xml_answers,
    http_status=st.integers(100, 599),
    request_may_have_run=st.booleans(),
)
def test_any_xml_answer_gives_resources_or_a_plum_error(
    body: bytes, http_status: int, request_may_have_run: bool
) -> None:
    try:
        resources = read_answer(
            body, fmt="xml", http_status=http_status, request_may_have_run=request_may_have_run
        )
    except PlumError:
        return
    assert all(isinstance(resource, PlumSmsResource) for resource in resources)
