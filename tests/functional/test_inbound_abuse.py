"""Consent and abuse through InboundSmsFunction (issue 11): every way of saying stop is
honoured, answers cannot loop or be pumped, and every real inbound SMS is stored."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from plumsms.adapters.dynamodb.store import DynamoMessageStore
from plumsms.domain.errors import ConcurrentUpdate
from plumsms.domain.guards import ReplyLimits
from plumsms.domain.models import InboundRecord, InboundSms, Message, derived_id
from plumsms.domain.rules import RulesConfig
from plumsms.usecases.inbound import InboundService
from plumsms_local.lambda_runtime import LocalFunction
from plumsms_local.simulator.testing import accepted_reply
from tests.unit.test_keywords import ROWS

NUMBER_DIGITS = "2435678910"
SMS_NUMBER = "+12435678910"


def new_sender() -> str:
    return f"1999{uuid.uuid4().int % 10**7:07d}"


class Inbound:
    """InboundSmsFunction, invoked as API Gateway would for Plum's POSTs."""

    def __init__(self, function: LocalFunction, event: Any) -> None:
        self.function = function
        self.event = event

    def text(self, sender: str, body: str, to: str = NUMBER_DIGITS) -> tuple[str, list[Any]]:
        sms_id = uuid.uuid4().hex
        fields = {"sms_message_id": sms_id, "to": to, "from": sender, "body": body}
        answer = self.function.invoke(
            self.event("inbound_sms", form=fields, query={"key": "test-webhook-key-0123456789"})
        )
        assert answer["statusCode"] == 200, answer["body"]
        return sms_id, accepted_reply(answer["body"])


@pytest.fixture
def rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    def write(text: str) -> None:
        path = tmp_path / "abuse-rules.yaml"
        path.write_text(text)
        monkeypatch.setenv("RULES_FILE", str(path))

    return write


@pytest.fixture
def inbound(load_function: Callable[[str], LocalFunction], event: Any) -> Callable[[], Inbound]:
    return lambda: Inbound(load_function("inbound_sms"), event)


def item(ddb: Any, table: str, pk: str, sk: str) -> dict[str, Any] | None:
    return ddb.get_item(TableName=table, Key={"PK": {"S": pk}, "SK": {"S": sk}}).get("Item")


def message(ddb: Any, table: str, message_id: str) -> dict[str, Any]:
    found = item(ddb, table, f"MSG#{message_id}", "MSG")
    assert found is not None
    return found


# -- 1. every phrasing of the corpus, end to end ---------------------------------------


def test_every_corpus_phrasing_is_honoured_end_to_end(
    inbound: Callable[[], Inbound], rules: Callable[[str], None], ddb: Any, table_name: str
) -> None:
    # GIVEN a default reply for everything that is not a keyword
    rules("default_reply: 'Thanks!'\n")
    fn = inbound()
    for text, expected, source in ROWS:
        # WHEN each phrasing arrives from its own sender
        sender = new_sender()
        sms_id, replies = fn.text(sender, text)
        opted_out = item(ddb, table_name, f"OPTOUT#+{sender}", "OPTOUT") is not None
        stored = message(ddb, table_name, sms_id)
        # THEN opt-outs are recorded and answered with nothing; the rest are not
        assert opted_out is (expected == "opt_out"), (text, source)
        if expected in {"opt_out", "review"}:
            assert replies == [], (text, source)
        if expected == "review":
            assert stored["unanswered"]["S"] == "opt_out_review", (text, source)
        if expected == "none":
            assert [r.body for r in replies] == ["Thanks!"], (text, source)
            assert "unanswered" not in stored


# -- 2. no loops, no pumping -----------------------------------------------------------


def test_an_auto_responder_gets_at_most_the_hourly_cap(
    inbound: Callable[[], Inbound], rules: Callable[[str], None], ddb: Any, table_name: str
) -> None:
    # GIVEN a default reply, and a machine that answers every answer (a new text each time)
    rules("default_reply: 'Thanks, we got it'\n")
    fn = inbound()
    sender = new_sender()
    answered = []
    last = ""
    for round_ in range(60):
        last, replies = fn.text(sender, f"Auto-reply #{round_}: I am away")
        answered.append(len(replies))
    # THEN the first 20 are answered and the rest only logged, with the reason
    assert answered == [1] * 20 + [0] * 40
    assert message(ddb, table_name, last)["unanswered"]["S"] == "reply_cap"


def test_the_same_text_repeated_within_minutes_is_answered_once(
    inbound: Callable[[], Inbound], rules: Callable[[str], None], ddb: Any, table_name: str
) -> None:
    rules("default_reply: 'Thanks, we got it'\n")
    fn = inbound()
    sender = new_sender()
    first = fn.text(sender, "I am out of the office")[1]
    sms_id, second = fn.text(sender, "I am OUT of the office!")
    assert len(first) == 1 and second == []
    assert message(ddb, table_name, sms_id)["unanswered"]["S"] == "repeated_body"
    # a different text from the same sender is answered as usual
    assert len(fn.text(sender, "Back now, what are your hours?")[1]) == 1


def test_texts_from_the_accounts_own_numbers_are_never_answered(
    inbound: Callable[[], Inbound], rules: Callable[[str], None], ddb: Any, table_name: str
) -> None:
    rules("default_reply: 'Thanks'\n")
    sms_id, replies = inbound().text(NUMBER_DIGITS, "Hello")
    assert replies == []
    assert message(ddb, table_name, sms_id)["unanswered"]["S"] == "own_number"


def test_other_countries_get_no_answer_by_default(
    inbound: Callable[[], Inbound], rules: Callable[[str], None], ddb: Any, table_name: str
) -> None:
    rules("default_reply: 'Thanks'\n")
    fn = inbound()
    sms_id, replies = fn.text("+447700900123", "Hello")
    assert replies == []
    stored = message(ddb, table_name, sms_id)
    assert stored["unanswered"]["S"] == "country_not_allowed"
    assert stored["from"]["S"] == "+447700900123"
    assert len(fn.text(new_sender(), "Hello")[1]) == 1


def test_an_allow_list_opens_other_countries(
    inbound: Callable[[], Inbound], rules: Callable[[str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPLY_COUNTRIES", "+1,GB")
    rules("default_reply: 'Thanks'\n")
    fn = inbound()
    assert len(fn.text("+447400123456", "Hello")[1]) == 1  # GB by region
    assert fn.text("+33612345678", "Hello")[1] == []  # France is not listed


def test_group_forwards_are_capped_per_member_per_hour(
    inbound: Callable[[], Inbound],
    rules: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
    ddb: Any,
    table_name: str,
) -> None:
    # GIVEN a group of three and a cap of 5 forwards per member per hour
    monkeypatch.setenv("FORWARD_LIMIT_PER_HOUR", "5")
    members = ["+19998881234", "+19998881235", "+19998881236"]
    rules(f"groups:\n  - name: team\n    number: '{SMS_NUMBER}'\n    members: {members}\n")
    fn = inbound()
    counts = []
    last = ""
    for round_ in range(8):
        last, replies = fn.text(members[0][1:], f"round {round_}")
        counts.append(len(replies))
    # THEN each other member gets 5 forwards, then none; the reason is logged
    assert counts == [2] * 5 + [0] * 3
    assert message(ddb, table_name, last)["unanswered"]["S"] == "forward_cap"


# -- 3. every real inbound SMS is stored -------------------------------------------------


@pytest.mark.parametrize(
    ("sender", "stored_as"),
    [
        ("22395", "22395"),
        ("611", "611"),
        ("AMAZON", "AMAZON"),
        ("Bank Alert", "Bank Alert"),
        ("+1 (999) 888-1234", "+19998881234"),
        ("1.999.888.1234", "+19998881234"),
    ],
)
def test_short_codes_and_alphanumeric_senders_are_stored_never_answered(
    inbound: Callable[[], Inbound],
    rules: Callable[[str], None],
    ddb: Any,
    table_name: str,
    sender: str,
    stored_as: str,
) -> None:
    rules("default_reply: 'Thanks'\n")
    sms_id, replies = inbound().text(sender, "Your code is 123456")
    stored = message(ddb, table_name, sms_id)
    assert stored["from"]["S"] == stored_as
    if stored_as.startswith("+"):
        assert len(replies) == 1
    else:
        assert replies == []
        assert stored["unanswered"]["S"] == "sender_cannot_receive"


@pytest.mark.parametrize("length", [1601, 5000, 39015])
def test_long_bodies_are_stored_whole(
    inbound: Callable[[], Inbound], ddb: Any, table_name: str, length: int
) -> None:
    body = ("é" * length)[:length]
    sms_id, _ = inbound().text(new_sender(), body)
    assert message(ddb, table_name, sms_id)["body"]["S"] == body


def test_a_stop_from_a_short_code_changes_nothing(
    inbound: Callable[[], Inbound], ddb: Any, table_name: str
) -> None:
    sms_id, replies = inbound().text("22395", "STOP")
    assert replies == []
    assert item(ddb, table_name, "OPTOUT#22395", "OPTOUT") is None
    assert message(ddb, table_name, sms_id)["unanswered"]["S"] == "sender_cannot_receive"


def test_counters_are_written_conditionally_and_a_lost_race_is_retried(
    dynamo_server: Any, table_name: str
) -> None:
    store = DynamoMessageStore(table_name, client=dynamo_server.client())
    sender = "+" + new_sender()
    limits = ReplyLimits(own_numbers=frozenset({SMS_NUMBER}), countries=frozenset({"+1"}))
    service = InboundService(
        log=store,
        rules=RulesConfig(default_reply="hi"),
        status_url=lambda _: None,
        limits=limits,
        clock=lambda: datetime.now(UTC),
    )

    def sms(body: str) -> InboundSms:
        return InboundSms.model_validate(
            {"sms_message_id": uuid.uuid4().hex, "to": SMS_NUMBER, "from": sender, "body": body}
        )

    # GIVEN a state read before another message moved the counters
    stale = store.peer_states({sender})
    assert service.handle(sms("first")).sent == 1
    # WHEN a write based on the stale read is attempted THEN it is refused as a race
    now = datetime.now(UTC)
    late = Message.model_validate(
        {"id": uuid.uuid4().hex, "type": "inbound", "to": SMS_NUMBER, "from": sender,
         "body": "x", "status": "received", "created_at": now, "updated_at": now,
         "segments": 1, "encoding": "GSM-7"}
    )  # fmt: skip
    with pytest.raises(ConcurrentUpdate):
        store.record_inbound(InboundRecord(late, peers=[stale[sender]]))
    # AND a racing handle reads again and counts both replies
    racer = InboundService(
        log=_StaleOnce(store, stale),
        rules=RulesConfig(default_reply="hi"),
        status_url=lambda _: None,
        limits=limits,
    )
    assert racer.handle(sms("second")).sent == 1
    assert len(store.peer_states({sender})[sender].replies) == 2


class _StaleOnce:
    """The store, answering the first counter read with a stale state (a lost race)."""

    def __init__(self, store: Any, stale: dict[str, Any]) -> None:
        self.store = store
        self.stale: dict[str, Any] | None = stale

    def peer_states(self, numbers: Any) -> dict[str, Any]:
        stale, self.stale = self.stale, None
        return dict(stale) if stale is not None else self.store.peer_states(numbers)

    def record_inbound(self, record: InboundRecord) -> None:
        self.store.record_inbound(record)


# -- 4. no card number in any automatic answer ----------------------------------------

CARD = "4111.1111.1111.1111"


def test_a_default_reply_echoing_a_card_number_is_not_sent(
    inbound: Callable[[], Inbound], rules: Callable[[str], None], ddb: Any, table_name: str
) -> None:
    # GIVEN a default reply that quotes the text received, and a keyword reply that
    # itself holds a card number (a mistaken rules file)
    rules(
        "default_reply: 'You said: {body}'\n"
        "keywords:\n  - keywords: [PAY]\n    reply: 'Pay with 4111  1111 - 1111/1111'\n"
    )
    fn = inbound()
    # WHEN a customer texts their card number, and another texts PAY
    quoted, quoted_replies = fn.text(new_sender(), f"my card is {CARD}")
    keyword, keyword_replies = fn.text(new_sender(), "PAY")
    # THEN neither answer is sent, both messages are stored with the reason, and no
    # reply record holds the card number
    assert quoted_replies == [] and keyword_replies == []
    assert message(ddb, table_name, quoted)["unanswered"]["S"] == "card_number"
    assert message(ddb, table_name, keyword)["unanswered"]["S"] == "card_number"
    for sms_id in (quoted, keyword):
        assert item(ddb, table_name, f"MSG#{derived_id(sms_id, 'reply', 0)}", "MSG") is None
    # AND an ordinary text still gets its default reply
    assert [r.body for r in fn.text(new_sender(), "call 555-123-4567 on 12/29")[1]] == [
        "You said: call 555-123-4567 on 12/29"
    ]


def test_a_group_forward_of_a_card_number_is_not_sent(
    inbound: Callable[[], Inbound], rules: Callable[[str], None], ddb: Any, table_name: str
) -> None:
    # GIVEN a group of three
    members = ["+19998881234", "+19998881235", "+19998881236"]
    rules(f"groups:\n  - name: team\n    number: '{SMS_NUMBER}'\n    members: {members}\n")
    # WHEN a member texts a card number to the group
    sms_id, replies = inbound().text(members[0][1:], f"customer card {CARD}")
    # THEN nothing is forwarded and the reason is on the message
    assert replies == []
    assert message(ddb, table_name, sms_id)["unanswered"]["S"] == "card_number"


def test_a_hook_reply_holding_a_card_number_is_not_sent(
    inbound: Callable[[], Inbound],
    rules: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    ddb: Any,
    table_name: str,
) -> None:
    # GIVEN a user hook that answers with a card number
    (tmp_path / "card_hook.py").write_text(
        "def on_inbound(sms):\n"
        f"    return [{{'to': sms.from_, 'from': sms.to, 'body': 'Use {CARD}'}}]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("REPLY_HOOK", "card_hook:on_inbound")
    rules("default_reply: 'Thanks'\n")
    # WHEN a text arrives
    sms_id, replies = inbound().text(new_sender(), "hello")
    # THEN the hook's reply is withheld with the reason
    assert replies == []
    assert message(ddb, table_name, sms_id)["unanswered"]["S"] == "card_number"
