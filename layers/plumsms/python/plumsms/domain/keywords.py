"""Carrier keywords: opt-out, opt-in and help (plum-dev-sms-api.md section 4)."""

from __future__ import annotations

from enum import StrEnum


class KeywordKind(StrEnum):
    """What a carrier keyword asks for."""

    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


_KEYWORDS: dict[str, KeywordKind] = {
    **dict.fromkeys(
        ("STOP", "CANCEL", "END", "QUIT", "STOPALL", "UNSUBSCRIBE"), KeywordKind.OPT_OUT
    ),
    **dict.fromkeys(("START", "UNSTOP", "YES"), KeywordKind.OPT_IN),
    **dict.fromkeys(("HELP", "INFO"), KeywordKind.HELP),
}


def normalize_keyword(body: str) -> str:
    """The body as a keyword candidate: trimmed, inner whitespace folded, upper case."""
    return " ".join(body.split()).upper()


def classify(body: str) -> KeywordKind | None:
    """The carrier keyword the whole body is, if any (``" stop "`` is, ``"stop it"`` not)."""
    return _KEYWORDS.get(normalize_keyword(body))
