"""Keyword requests at their edges: the word limit, phrases in the middle of a text,
which keyword is recorded, and every word that says what to stop."""

from __future__ import annotations

import dataclasses

import pytest

from plumsms.domain.keywords import (
    MAX_REQUEST_WORDS,
    OPT_OUT_OBJECT_WORDS,
    Intent,
    KeywordKind,
    intent,
    normalize,
)

OPT_OUT, HELP, OPT_IN = KeywordKind.OPT_OUT, KeywordKind.HELP, KeywordKind.OPT_IN


def test_a_request_is_short_at_seven_words_and_a_sentence_at_eight() -> None:
    # GIVEN the documented limit of seven words for a short request
    assert MAX_REQUEST_WORDS == 7
    # THEN seven words around STOP are an opt-out; eight only flag the text for a person
    assert intent("please stop texting me right now thanks") == Intent(OPT_OUT, "STOP")
    assert intent("please stop texting me right now thank you") == Intent(review=True)


@pytest.mark.parametrize(
    ("text", "kind", "keyword"),
    [
        ("help me please thank you right now", HELP, "HELP"),
        ("start please thank you right now ok", OPT_IN, "START"),
    ],
)
def test_help_and_start_requests_stop_at_seven_words(
    text: str, kind: KeywordKind, keyword: str
) -> None:
    assert len(text.split()) == 7
    assert intent(text) == Intent(kind, keyword)
    # one courtesy word more, and it is no longer a request
    assert intent(text + " kindly") == Intent()


@pytest.mark.parametrize(
    "text", ["please opt me out", "ok opt out", "kindly un subscribe me", "pls stop all"]
)
def test_a_phrase_after_the_first_word_is_still_the_keyword(text: str) -> None:
    assert intent(text).kind is OPT_OUT


@pytest.mark.parametrize("word", sorted(OPT_OUT_OBJECT_WORDS))
def test_every_word_that_says_what_to_stop_keeps_stop_an_opt_out(word: str) -> None:
    # ("stop all" is itself the STOPALL keyword)
    assert intent(f"stop {word.lower()} please").kind is OPT_OUT


@pytest.mark.parametrize(
    ("text", "keyword"),
    [("stop unsubscribe", "STOP"), ("unsubscribe stop", "UNSUBSCRIBE"), ("help info", "HELP")],
)
def test_the_first_keyword_of_the_text_is_the_one_recorded(text: str, keyword: str) -> None:
    assert intent(text).keyword == keyword


def test_two_spaced_letters_read_as_one_word() -> None:
    assert normalize("o k") == "OK"
    assert normalize("s t o p") == "STOP"


@pytest.mark.parametrize(
    "text",
    [
        "stop updates",
        "stop reminders",
        "stop notifications",
        "stop marketing",
        "stop promos",
        "stop promotions please",
        "stop texting me",
        "stop sending me alerts",
        "stop remove me",
    ],
)
def test_what_people_ask_to_stop_is_written_out_here_too(text: str) -> None:
    # The words spelled here, not read from the module: a word dropped from its table
    # must fail this test.
    assert intent(text).kind is OPT_OUT


def test_every_flag_letter_reads_as_its_latin_letter() -> None:
    # GIVEN the 26 regional indicator symbols (the letters of flag emoji), A to Z
    flags = "".join(chr(0x1F1E6 + i) for i in range(26))
    # THEN each reads as its letter, Z included
    assert normalize(flags) == "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def test_an_intent_cannot_be_changed_once_read() -> None:
    # An intent is a value: the answer decided from it cannot be altered on the way.
    found = intent("STOP")
    with pytest.raises(dataclasses.FrozenInstanceError):
        found.kind = None  # type: ignore[misc]
