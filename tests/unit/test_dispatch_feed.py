"""The due messages of a pass, queued per sender: no sender runs dry while pages are left."""

from __future__ import annotations

from datetime import timedelta

from plumsms.usecases.dispatch import DispatchConfig, Dispatcher
from plumsms.usecases.dispatch.feed import DueFeed
from tests.factories import outbound_message
from tests.fakes import NOW, FakeOutbox, ScriptedPlum

A, B = "+12435678910", "+12435678911"


def outbox_with(senders: str) -> FakeOutbox:
    """Due messages from the senders in ``senders`` ('A'/'B'), in that due order."""
    outbox = FakeOutbox()
    for index, letter in enumerate(senders):
        message = outbound_message(
            NOW - timedelta(seconds=len(senders) - index),
            message_id=f"{index:032x}",
            to=f"+1212555{index:04d}",
            from_=A if letter == "A" else B,
            body=f"Message {index}",
        )
        outbox.add(message)
    return outbox


def ids(refs: list) -> list[int]:  # type: ignore[type-arg]
    return [int(r.message_id, 16) for r in refs]


def test_turns_take_one_message_of_each_sender_in_due_order() -> None:
    feed = DueFeed(outbox_with("AABAB"), lambda: NOW, page=10, cap=40)
    assert feed.wants_page(set())
    feed.read_page()
    assert feed.exhausted
    assert [ids(feed.turn(set())) for _ in range(4)] == [[0, 2], [1, 4], [3], []]


def test_a_sender_that_runs_dry_gets_the_next_page_read_before_its_next_turn() -> None:
    # GIVEN a first page of four A and one B, and more of B on the next page
    feed = DueFeed(outbox_with("AAAAB" + "BBBBB"), lambda: NOW, page=5, cap=40)
    feed.read_page()
    assert ids(feed.turn(set())) == [0, 4]
    # THEN B ran dry: the next page is wanted before another turn
    assert feed.wants_page(set())
    feed.read_page()
    assert ids(feed.turn(set())) == [1, 5]
    # AND once every page is read, none is wanted
    assert feed.exhausted and not feed.wants_page(set())


def test_a_sender_out_of_slots_neither_takes_turns_nor_asks_for_pages() -> None:
    feed = DueFeed(outbox_with("AAAAB" + "AAAAA"), lambda: NOW, page=5, cap=40)
    feed.read_page()
    assert ids(feed.turn({B})) == [0]
    # B is out of slots: its running dry asks for nothing while A still has messages
    feed.turn({A})  # B's only message
    assert not feed.wants_page({B})
    assert feed.left() == 3
    assert feed.held({A}) == 0


def test_no_page_is_read_while_cap_messages_are_held() -> None:
    # GIVEN a sender with one message only, and many more of another sender's
    feed = DueFeed(outbox_with("B" + "A" * 24), lambda: NOW, page=5, cap=10)
    feed.read_page()
    assert ids(feed.turn(set())) == [0, 1]  # B's one message: B is dry for good
    # WHEN pages are read as long as they are wanted (B stays dry)
    while feed.wants_page(set()):
        feed.read_page()
    # THEN reading stopped at the first page that took the held messages to the cap
    assert feed.left() == 13
    assert not feed.exhausted


def test_opted_out_recipients_of_every_page_are_known() -> None:
    outbox = outbox_with("AB" + "AB")
    outbox.opted = {"+12125550003"}
    feed = DueFeed(outbox, lambda: NOW, page=2, cap=10)
    feed.read_page()
    feed.read_page()
    assert feed.blocked == {"+12125550003"}


def test_the_dispatcher_reads_ahead_for_a_sender_that_ran_dry_on_its_page() -> None:
    # GIVEN pages of four: the first has three of A's messages and one of B's, the
    # second four of B's; one worker, so the sends leave in the order they were taken
    outbox = outbox_with("AAAB" + "BBBB")
    plum = ScriptedPlum()
    dispatcher = Dispatcher(
        outbox=outbox,
        plum=lambda: plum,
        result_url=lambda ref: None,
        config=DispatchConfig(rate_per_second=1000.0, concurrency=1, page_size=4),
        clock=lambda: NOW,
    )
    dispatcher.run(lambda: 600_000)
    # THEN B's next messages take turns with A's instead of waiting for A's to finish
    order = [int(body.split()[1]) for _, _, body, _ in plum.queued]
    assert order == [0, 3, 1, 4, 2, 5, 6, 7]
