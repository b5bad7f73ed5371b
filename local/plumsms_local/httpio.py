"""HTTP request reading shared by the local gateway and the ``smsctl ui`` proxy."""

from __future__ import annotations

import json


def content_length(value: str | None) -> int | None:
    """The body length a request declares: 0 when absent, None unless a decimal number.

    ``int()`` would take ``-1`` (then ``rfile.read(-1)`` reads to EOF, past any size
    cap) and raise on ``abc``; a caller answers 400 to None instead.
    """
    text = (value or "0").strip()
    if not (text.isascii() and text.isdigit()):
        return None
    return int(text)


BAD_LENGTH_RULE = "Content-Length: must be a non-negative whole number of bytes"
BAD_LENGTH = json.dumps({"message": BAD_LENGTH_RULE, "field": "Content-Length"})
