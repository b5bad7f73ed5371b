"""Opt-out, opt-in and help intent: the published table, a corpus and properties."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plumsms.domain.keywords import (
    HELP_KEYWORDS,
    OPT_IN_KEYWORDS,
    OPT_OUT_KEYWORDS,
    Intent,
    KeywordKind,
    intent,
    normalize,
)

CORPUS = Path(__file__).parents[1] / "data" / "opt_out_corpus.csv"
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})|\\n|\\t")


def unescape(text: str) -> str:
    """The corpus keeps invisible and non-ASCII characters as \\uXXXX escapes."""

    def one(match: re.Match[str]) -> str:
        code = match.group(1) or match.group(2)
        if code:
            return chr(int(code, 16))
        return "\n" if match.group(0) == "\\n" else "\t"

    return _ESCAPE.sub(one, text)


def corpus() -> list[tuple[str, str, str]]:
    with CORPUS.open(newline="", encoding="ascii") as handle:
        return [(unescape(r["text"]), r["expected"], r["source"]) for r in csv.DictReader(handle)]


ROWS = corpus()
EXPECTED = {
    "opt_out": KeywordKind.OPT_OUT,
    "opt_in": KeywordKind.OPT_IN,
    "help": KeywordKind.HELP,
    "review": None,
    "none": None,
}


def test_corpus_is_large_and_sourced() -> None:
    # GIVEN the shipped corpus THEN it has at least 100 phrasings, each with a source
    assert len(ROWS) >= 100
    assert all(source.strip() for _, _, source in ROWS)
    assert {expected for _, expected, _ in ROWS} == set(EXPECTED)
    assert sum(1 for _, e, _ in ROWS if e == "opt_out") >= 60


@pytest.mark.parametrize(("text", "expected", "source"), ROWS, ids=[repr(r[0]) for r in ROWS])
def test_corpus_phrasing(text: str, expected: str, source: str) -> None:
    # WHEN the phrasing is read THEN it asks for what the corpus says
    found = intent(text)
    assert found.kind is EXPECTED[expected], source
    assert found.review is (expected == "review"), source


# -- properties ------------------------------------------------------------------------

INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u200e", "\u200f"]
SPACES = [" ", "\t", "\n", "\u00a0", "\u3000", "\u2009"]
PUNCTUATION = [*".!?,;:\"'()[]-*~", "\u201c", "\u201d", "\u2019", "\U0001f6d1", "\U0001f64f"]
PHRASES = {
    **{k: KeywordKind.OPT_OUT for k in OPT_OUT_KEYWORDS},
    "STOP ALL": KeywordKind.OPT_OUT,
    "OPT OUT": KeywordKind.OPT_OUT,
    **{k: KeywordKind.OPT_IN for k in OPT_IN_KEYWORDS},
    **{k: KeywordKind.HELP for k in HELP_KEYWORDS},
}

noise = st.lists(st.sampled_from(INVISIBLE + SPACES + PUNCTUATION), max_size=6).map("".join)


@st.composite
def disguised(draw: st.DrawFn, phrase: str) -> str:
    """``phrase`` in random case, with noise around it and invisible characters inside."""
    chars = []
    for char in phrase:
        chars.append(char.lower() if draw(st.booleans()) else char)
        if char != " " and draw(st.integers(0, 4)) == 0:
            chars.append(draw(st.sampled_from(INVISIBLE)))
    spaced = "".join(chars).replace(" ", draw(st.sampled_from(SPACES)))
    return draw(noise) + spaced + draw(noise)


@settings(deadline=None)  # a loaded CI machine must not fail a pure test
@given(data=st.data(), phrase=st.sampled_from(sorted(PHRASES)))
def test_every_keyword_survives_case_punctuation_spacing_and_invisibles(
    data: st.DataObject, phrase: str
) -> None:
    text = data.draw(disguised(phrase))
    assert intent(text).kind is PHRASES[phrase], repr(text)


@settings(deadline=None)  # a loaded CI machine must not fail a pure test
@given(data=st.data(), phrase=st.sampled_from(OPT_OUT_KEYWORDS), times=st.integers(2, 4))
def test_a_repeated_opt_out_keyword_is_an_opt_out(
    data: st.DataObject, phrase: str, times: int
) -> None:
    text = " ".join(data.draw(disguised(phrase)) for _ in range(times))
    assert intent(text).kind is KeywordKind.OPT_OUT, repr(text)


@settings(deadline=None)  # a loaded CI machine must not fail a pure test
@given(
    data=st.data(),
    phrase=st.sampled_from(OPT_OUT_KEYWORDS),
    polite=st.sampled_from(["please", "PLEASE", "now", "thanks", "thank you"]),
    before=st.booleans(),
)
def test_a_polite_opt_out_is_an_opt_out(
    data: st.DataObject, phrase: str, polite: str, before: bool
) -> None:
    keyword = data.draw(disguised(phrase))
    text = f"{polite} {keyword}" if before else f"{keyword} {polite}"
    assert intent(text).kind is KeywordKind.OPT_OUT, repr(text)


@settings(deadline=None)  # a loaded CI machine must not fail a pure test
@given(
    phrase=st.sampled_from(OPT_OUT_KEYWORDS),
    sentence=st.sampled_from(
        ["Is the bus {} near the store?", "Don't {} the music", "why did you {} the show so early"]
    ),
)
def test_a_family_word_inside_a_sentence_is_only_flagged(phrase: str, sentence: str) -> None:
    found = intent(sentence.format(phrase.lower()))
    assert found == Intent(review=True)


@settings(deadline=None)  # a loaded CI machine must not fail a pure test
@given(st.text(max_size=200))
def test_normalize_never_fails_and_is_idempotent(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once
    assert once == once.upper().strip()
    assert "  " not in once


@settings(deadline=None)  # a loaded CI machine must not fail a pure test
@given(st.text(alphabet=st.characters(categories=["Lu", "Ll", "Nd", "Zs", "Po"]), max_size=80))
def test_intent_never_fails(text: str) -> None:
    found = intent(text)
    assert not (found.review and found.kind is not None)


@settings(deadline=None)  # a loaded CI machine must not fail a pure test
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=60))
def test_the_ascii_fast_path_agrees_with_the_unicode_steps(text: str) -> None:
    from plumsms.domain.keywords import _unicode_skeleton  # noqa: PLC0415

    assert normalize(text) == _unicode_skeleton(text)
