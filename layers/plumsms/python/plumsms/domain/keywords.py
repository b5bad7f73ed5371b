"""Carrier keywords: what an inbound text asks for (opt-out, opt-in, help), read leniently.

One function, ``intent``, decides; ``docs/inbound.md`` publishes the same table. The text
is first reduced to a *keyword skeleton* (``normalize``):

1. format characters (Unicode category Cf: zero-width spaces and joiners, BOM, soft
   hyphen, direction marks) are removed;
2. NFKC folds compatibility forms (fullwidth letters, mathematical bold, circled and
   ligature letters); accents and other combining marks are dropped;
3. letters that look Latin (Cyrillic, Greek, regional-indicator emoji letters, the digit
   zero) are folded to their Latin skeleton with the small table below, after Unicode's
   confusables list (UTS #39), limited to the letters the keywords use and their kin;
4. apostrophes vanish (``don't`` -> ``DONT``), every other character that is not a letter
   or digit (punctuation, quotes, symbols, emoji) becomes a space, and whitespace is
   collapsed; the result is upper case. A text spelt out letter by letter (``S T O P``,
   ``s.t.o.p``) is joined.

The opt-out family (STOP, STOPALL, STOP ALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE,
OPTOUT, OPT OUT: the FCC's 2024 list plus the carriers') is an opt-out when the skeleton is
the keyword, the keyword repeated, or a short request made only of the family, courtesy
words and the words that say *what* to stop (``stop please``, ``please stop``,
``stop texting me``, ``unsubscribe me from this list``). Any other text containing a word
of the family is **not** an opt-out but is flagged for review (``Intent.review``): the
inbound flow answers it with nothing and marks it in the log for a person, because under
the FCC rule consent is revoked by any reasonable means and only a person can judge
``cancel my 3pm, and stop the reminders``. START and HELP are read the same way (whole,
repeated, or with courtesy words), without the review tier.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum


class KeywordKind(StrEnum):
    """What a carrier keyword asks for."""

    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


OPT_OUT_KEYWORDS = (
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
)
OPT_IN_KEYWORDS = ("START", "UNSTOP", "YES")
HELP_KEYWORDS = ("HELP", "INFO")

_KEYWORDS: dict[str, KeywordKind] = {
    **dict.fromkeys(OPT_OUT_KEYWORDS, KeywordKind.OPT_OUT),
    **dict.fromkeys(OPT_IN_KEYWORDS, KeywordKind.OPT_IN),
    **dict.fromkeys(HELP_KEYWORDS, KeywordKind.HELP),
}

# Spellings in several words read as one keyword.
_PHRASES: dict[tuple[str, ...], str] = {
    ("OPT", "OUT"): "OPTOUT",
    ("OPT", "ME", "OUT"): "OPTOUT",
    ("STOP", "ALL"): "STOPALL",
    ("UN", "SUBSCRIBE"): "UNSUBSCRIBE",
}
_LONGEST_PHRASE = max(len(p) for p in _PHRASES)
_PHRASE_STARTS = frozenset(p[0] for p in _PHRASES)

COURTESY_WORDS = frozenset(
    {"PLEASE", "PLS", "PLZ", "PLEASEE", "NOW", "THANKS", "THANK", "YOU", "THX", "TY", "OK"}
    | {"OKAY", "JUST", "ASAP", "IMMEDIATELY", "RIGHT", "AWAY", "KINDLY"}
)
"""Words that make a keyword polite without changing what it asks for."""

OPT_OUT_OBJECT_WORDS = frozenset(
    {"ME", "US", "IT", "THIS", "THAT", "THESE", "THEM", "ALL", "MY", "YOUR", "THE", "TO"}
    | {"FROM", "OF", "ON", "FOR", "ANY", "MORE", "NUMBER", "LIST", "SUBSCRIPTION", "SERVICE"}
    | {"TEXT", "TEXTS", "TEXTING", "MESSAGE", "MESSAGES", "MESSAGING", "MSG", "MSGS", "SMS"}
    | {"SENDING", "CONTACTING", "CALLING", "SPAMMING", "BOTHERING", "CONSENT", "ALERTS"}
    | {"UPDATES", "REMINDERS", "NOTIFICATIONS", "MARKETING", "PROMOS", "PROMOTIONS", "REMOVE"}
)
"""Words that say what to stop (``stop texting me``, ``cancel my subscription``)."""

HELP_EXTRA_WORDS = frozenset({"ME", "US"})
# A help keyword beside an opt-out ("STOP HELP") does not make it less of an opt-out.
_OPT_OUT_EXTRA_WORDS = COURTESY_WORDS | OPT_OUT_OBJECT_WORDS | frozenset(HELP_KEYWORDS)

MAX_REQUEST_WORDS = 7
"""Longest short request: more words and a family word only flags the text for review."""

# Latin skeletons of letters that look Latin (after UTS #39 confusables.txt), for the
# scripts people and spam filters use to disguise keywords. Fullwidth and mathematical
# forms need no entry: NFKC folds them first.
_CONFUSABLES: dict[str, str] = {
    # Cyrillic capitals and small letters
    **dict(zip("АВЕЗІЈКМНОРСТУХЅԚԜҮӀ", "ABE3IJKMHOPCTYXSQWYI", strict=True)),
    **dict(zip("аеіјорсухѕԛԝһԁүӏкмнт", "aeijopcyxsqwhdylkmht", strict=True)),
    # Greek capitals and small letters
    **dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "ABEZHIKMNOPTYX", strict=True)),  # noqa: RUF001
    **dict(zip("αικνορτυχ", "aikvoptux", strict=True)),
    # Regional indicator symbols (the letters of flag emoji) and the digit zero
    **{chr(0x1F1E6 + i): chr(ord("A") + i) for i in range(26)},
    "0": "O",
}
_CONFUSABLES = {k: v.upper() for k, v in _CONFUSABLES.items()}
_APOSTROPHES = frozenset("'’‘ʼ`´′")  # noqa: RUF001 - look-alikes on purpose


# Plain ASCII (most texts) needs no Unicode step: one byte translation does steps 3 and 4.
_ASCII_SKELETON = bytes(
    ord("O") if c == ord("0") else c if chr(c).isalnum() else ord(" ") for c in range(256)
)
_ASCII_APOSTROPHES = b"'`"


def normalize(body: str) -> str:
    """The keyword skeleton of ``body`` (see the module docstring); ``""`` for none."""
    if body.isascii():
        skeleton = body.encode("ascii").translate(_ASCII_SKELETON, _ASCII_APOSTROPHES)
        return _joined(skeleton.decode("ascii").upper().split())
    return _unicode_skeleton(body)


def _unicode_skeleton(body: str) -> str:
    without_format = "".join(c for c in body if unicodedata.category(c) != "Cf")
    # Upper case before decomposing: some capitals (e.g. of the micro sign) are letters
    # the confusables table folds, so the skeleton of a skeleton is itself.
    folded = unicodedata.normalize("NFKC", without_format).upper()
    chars: list[str] = []
    for char in unicodedata.normalize("NFD", folded):
        if unicodedata.category(char) in ("Mn", "Me") or char in _APOSTROPHES:
            continue
        latin = _CONFUSABLES.get(char, char)
        chars.append(latin if latin.isalnum() else " ")
    return _joined(unicodedata.normalize("NFC", "".join(chars)).upper().split())


def _joined(words: list[str]) -> str:
    if len(words) > 1 and all(len(w) == 1 for w in words):
        words = ["".join(words)]  # "S T O P", "s.t.o.p"
    return " ".join(words)


# Kept for the rules file's first-word matching: the same skeleton.
normalize_keyword = normalize


@dataclass(frozen=True, slots=True)
class Intent:
    """What an inbound text asks for.

    ``kind`` is set when the text is a keyword request; ``keyword`` is the family keyword
    it used (``STOP``, ``OPTOUT``, ...). ``review`` is true for a text that is not an
    opt-out but contains a word of the opt-out family: answer nothing, flag it for a person.
    """

    kind: KeywordKind | None = None
    keyword: str | None = None
    review: bool = False


NO_INTENT = Intent()


def _words(skeleton: str) -> list[str]:
    words = skeleton.split()
    if _PHRASE_STARTS.isdisjoint(words):
        return words
    joined: list[str] = []
    index = 0
    while index < len(words):
        for size in range(_LONGEST_PHRASE, 1, -1):
            phrase = _PHRASES.get(tuple(words[index : index + size]))
            if phrase is not None:
                joined.append(phrase)
                index += size
                break
        else:
            joined.append(words[index])
            index += 1
    return joined


def intent(body: str) -> Intent:
    """Read ``body`` as a keyword request: the one decision ``docs/inbound.md`` tabulates."""
    words = _words(normalize(body))
    if not words:
        return NO_INTENT
    opt_out = [w for w in words if _KEYWORDS.get(w) is KeywordKind.OPT_OUT]
    if opt_out:
        extra = _OPT_OUT_EXTRA_WORDS
        clear = len(words) <= MAX_REQUEST_WORDS and all(w in extra or w in opt_out for w in words)
        if clear:
            return Intent(KeywordKind.OPT_OUT, opt_out[0])
        return Intent(review=True)
    for kind, extra in (
        (KeywordKind.OPT_IN, COURTESY_WORDS),
        (KeywordKind.HELP, COURTESY_WORDS | HELP_EXTRA_WORDS),
    ):
        found = [w for w in words if _KEYWORDS.get(w) is kind]
        if (
            found
            and len(words) <= MAX_REQUEST_WORDS
            and all(w in extra or w in found for w in words)
        ):
            return Intent(kind, found[0])
    return NO_INTENT


def classify(body: str) -> KeywordKind | None:
    """The keyword request ``body`` makes, if any (``intent(body).kind``)."""
    return intent(body).kind
