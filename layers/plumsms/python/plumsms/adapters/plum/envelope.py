"""Plum's answer envelope (JSON or XML) turned into resources or a typed ``PlumError``.

Every SMS service answers ``{"status": "success"|"failure", "error": "...", "result":
{...}}`` in JSON, or in XML a root element named after the service holding ``<status>``,
``<error/>`` and ``<result>``. Parsing is strict (no trailing commas, no unclosed tags,
no DTDs); anything malformed becomes ``UnexpectedResponse``, never another exception.

Inferred (Plum documents only the queue result, ``{"sms_messages": [...]}``): the
other services' results are found by ``resources_in``, which accepts a
``sms_messages`` list, a ``sms_message`` object, a bare resource or a bare list. In
XML, ``<sms_messages>`` holds one ``<sms_message>`` per resource and each field is a
child element. The root element's name is not checked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal, NoReturn

from lxml import etree
from pydantic import ValidationError

from plumsms.domain.plum import (
    PlumError,
    PlumRejected,
    PlumSmsResource,
    PlumUnavailable,
    Unauthorized,
    UnexpectedResponse,
    failure_from_reason,
    is_known_failure,
    redact_numbers,
)
from plumsms.domain.replyxml import safe_parser

Format = Literal["json", "xml"]

MAX_ANSWER_BYTES = 1 << 20
"""Answers longer than this are refused: Plum's pages hold at most 1000 short records."""

_EXCERPT_CHARS = 60
_PARSE_FAILURES = (etree.LxmlError, ValueError, LookupError, RecursionError)
"""What parsing untrusted bytes may raise (LookupError: an unknown declared encoding)."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """The three parts of every answer; ``result`` is None when the answer has none."""

    status: Literal["success", "failure"]
    error: str
    result: object


def excerpt(body: bytes) -> str:
    """A short, single-line, number-redacted start of ``body`` for error messages."""
    text = " ".join(body[: _EXCERPT_CHARS * 4].decode("utf-8", "replace").split())
    return redact_numbers(text)[:_EXCERPT_CHARS]


def parse_envelope(body: bytes, fmt: Format) -> Envelope:
    """Parse an answer strictly; raise ``UnexpectedResponse`` if it is not an envelope."""
    if fmt == "json":
        status, error, result = _json_parts(body)
    else:
        status, error, result = _xml_parts(body)
    normalised = status.strip().lower() if isinstance(status, str) else None
    if error is None:
        error = ""
    if not isinstance(error, str):
        _unexpected("answer's error is not text", body)
    if normalised == "success":
        return Envelope(status="success", error=error, result=result)
    if normalised == "failure":
        return Envelope(status="failure", error=error, result=result)
    _unexpected("answer has no status of success or failure", body)


def resources_in(result: object) -> list[PlumSmsResource]:
    """The SMS message resources inside a success ``result`` (see module doc)."""
    if isinstance(result, dict) and "sms_messages" in result:
        records = _records(result["sms_messages"])
    elif isinstance(result, dict) and "sms_message" in result:
        records = _records(result["sms_message"])
    else:
        records = _records(result)
    resources = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise UnexpectedResponse(f"sms_messages[{index}] is not an object")
        try:
            resources.append(PlumSmsResource.model_validate(record))
        except ValidationError as exc:
            raise UnexpectedResponse(_describe(exc, index)) from None
    return resources


def read_answer(
    body: bytes, *, fmt: Format, http_status: int, request_may_have_run: bool
) -> list[PlumSmsResource]:
    """Resources from a complete HTTP answer, or the ``PlumError`` it stands for.

    Plum does not document the HTTP status of failures, so the envelope decides first
    (a documented failure text wins over any status code); the status code decides
    when the body is no envelope or the failure text is unknown or empty.
    ``request_may_have_run`` is true for queue calls: a 2xx answer we cannot read then
    means the SMS may be queued (``maybe_sent``).
    """
    answered_ok = 200 <= http_status < 300
    try:
        envelope = parse_envelope(body, fmt)
    except UnexpectedResponse as exc:
        by_status = _error_for_http_status(http_status, "", request_may_have_run)
        if by_status is not None:
            raise by_status from exc
        exc.http_status = http_status
        exc.maybe_sent = request_may_have_run and answered_ok
        raise
    if envelope.status == "failure":
        reason = envelope.error.strip()
        if reason and is_known_failure(reason):
            raise failure_from_reason(reason, http_status=http_status)
        by_status = _error_for_http_status(http_status, reason, request_may_have_run)
        if by_status is not None:
            raise by_status
        raise PlumRejected(reason or "failure without a reason", http_status=http_status)
    if envelope.result is None:
        raise UnexpectedResponse(
            "success without a result",
            excerpt=excerpt(body),
            http_status=http_status,
            maybe_sent=request_may_have_run,
        )
    try:
        return resources_in(envelope.result)
    except UnexpectedResponse as exc:
        exc.http_status = http_status
        exc.maybe_sent = request_may_have_run
        raise


def _error_for_http_status(
    http_status: int, reason: str, request_may_have_run: bool
) -> PlumError | None:
    if http_status in (401, 403):
        return Unauthorized(reason or f"HTTP {http_status}", http_status=http_status)
    if http_status == 429 or http_status >= 500:
        # 429 and 503 say the request was turned away; other 5xx (a gateway timeout,
        # a crash mid-way) leave a queue request's fate unknown.
        return PlumUnavailable(
            reason or f"HTTP {http_status}",
            http_status=http_status,
            maybe_sent=request_may_have_run and http_status not in (429, 503),
        )
    return None


def _records(value: object) -> list[object]:
    if value is None or value in ("", {}):
        return []  # XML writes an empty list as an empty element
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        if "sms_message" in value:
            return _records(value["sms_message"])
        if "sms_message_id" in value:
            return [value]
    raise UnexpectedResponse("result holds no SMS message resources")


def _describe(exc: ValidationError, index: int) -> str:
    # Never include pydantic's input values: they are phone numbers and bodies.
    problems = [
        ".".join(str(part) for part in error["loc"]) + ": " + error["msg"]
        for error in exc.errors(include_input=False, include_url=False)
    ]
    return f"sms_messages[{index}] " + "; ".join(problems[:3])


def _unexpected(reason: str, body: bytes) -> NoReturn:
    raise UnexpectedResponse(reason, excerpt=excerpt(body))


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"non-standard JSON constant {name}")


def _json_parts(body: bytes) -> tuple[object, object, object]:
    try:
        document = json.loads(body, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        _unexpected(f"malformed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", body)
    except UnicodeDecodeError:
        _unexpected("malformed JSON: not UTF-8 text", body)
    except _PARSE_FAILURES as exc:
        _unexpected(f"malformed JSON: {type(exc).__name__}", body)
    if not isinstance(document, dict):
        _unexpected("JSON answer is not an object", body)
    return document.get("status"), document.get("error"), document.get("result")


def _xml_parts(body: bytes) -> tuple[object, object, object]:
    try:
        root = etree.fromstring(body, safe_parser())
    except etree.XMLSyntaxError as exc:
        _unexpected(f"malformed XML: {exc.msg}", body)
    except _PARSE_FAILURES as exc:
        _unexpected(f"malformed XML: {type(exc).__name__}", body)
    # Plum never sends a DTD; one here can only be an entity-expansion or XXE attempt.
    if root.getroottree().docinfo.internalDTD is not None:
        _unexpected("XML answer carries a DTD", body)
    parts = {_local_name(child): child for child in _elements(root)}
    status = parts.get("status")
    error = parts.get("error")
    result = parts.get("result")
    return (
        status.text if status is not None else None,
        (error.text or "") if error is not None else None,
        _xml_value(result) if result is not None else None,
    )


def _elements(element: etree._Element) -> list[etree._Element]:
    return [child for child in element if isinstance(child.tag, str)]


def _local_name(element: etree._Element) -> str:
    return etree.QName(element).localname


def _xml_value(element: etree._Element) -> object:
    """Element to plain data: leaves to text, repeated children to lists."""
    children = _elements(element)
    if not children:
        return element.text or ""
    grouped: dict[str, list[object]] = {}
    for child in children:
        grouped.setdefault(_local_name(child), []).append(_xml_value(child))
    return {name: values[0] if len(values) == 1 else values for name, values in grouped.items()}
