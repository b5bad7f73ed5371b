"""Plum's response envelope, in JSON and in XML.

JSON: ``{"status": "success"|"failure", "error": "...", "result": {...}}``, no ``result``
on failure. XML: a root named after the service (``<queue>``, ``<status>``, ...) holding
``<status>``, ``<error/>`` and ``<result>``; built with lxml, never by concatenation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from lxml import etree

from plumsms_local.simulator import inferred

Format = Literal["json", "xml"]

# XML 1.0 cannot carry most C0 controls or lone surrogates; a body may hold them.
_XML_FORBIDDEN = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True, slots=True)
class Rendered:
    """An HTTP answer body ready to send."""

    content_type: str
    body: bytes


def success(service: str, fmt: Format, result: Mapping[str, Any]) -> Rendered:
    """The envelope of a successful call of ``service`` (``queue``, ``status``, ...)."""
    return _render(service, fmt, {"status": "success", "error": "", "result": result})


def failure(service: str, fmt: Format, error: str) -> Rendered:
    """The envelope of a failed call: status ``failure``, the error text, no result."""
    return _render(service, fmt, {"status": "failure", "error": error})


def _render(service: str, fmt: Format, envelope: Mapping[str, Any]) -> Rendered:
    if fmt == "json":
        return Rendered(inferred.JSON_CONTENT_TYPE, json.dumps(envelope).encode())
    root = etree.Element(service)
    _fill(root, envelope)
    body = etree.tostring(root, encoding="UTF-8", xml_declaration=True)
    return Rendered(inferred.XML_CONTENT_TYPE, body)


def _fill(element: etree._Element, value: Any) -> None:
    """Turn a JSON-shaped value into child elements or text of ``element``."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            _fill(etree.SubElement(element, key), item)
    elif isinstance(value, Sequence) and not isinstance(value, str):
        item_name = inferred.XML_LIST_ITEMS.get(element.tag, "item")
        for item in value:
            _fill(etree.SubElement(element, item_name), item)
    elif value is None or value == "":
        return  # an empty element: <error/>
    else:
        element.text = _XML_FORBIDDEN.sub("\ufffd", str(value))
