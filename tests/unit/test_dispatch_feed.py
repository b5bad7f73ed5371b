"""The due messages of a pass, queued per sender and read ahead: no sender idles while
pages are left, however far down the due order its messages lie."""

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


def one_worker(outbox: FakeOutbox, plum: ScriptedPlum) -> Dispatcher:
    """A dispatcher with one worker (sends leave in the order taken) and pages of four."""
    return Dispatcher(
        outbox=outbox,
        plum=lambda: plum,
        result_url=lambda ref: None,
        config=DispatchConfig(rate_per_second=1000.0, concurrency=1, page_size=4),
        clock=lambda: NOW,
    )


def read_wanted(feed: DueFeed) -> int:
    """Read pages as long as the feed wants them; how many were read."""
    reads = 0
    while feed.wants_page():
        feed.read_page()
        reads += 1
    return reads


def ids(refs: list) -> list[int]:  # type: ignore[type-arg]
    return [int(r.message_id, 16) for r in refs]


def test_turns_take_one_message_of_each_sender_in_due_order() -> None:
    feed = DueFeed(outbox_with("AABAB"), lambda: NOW, page=10, cap=40)
    assert feed.wants_page()
    feed.read_page()
    assert feed.exhausted
    assert [ids(feed.turn(set())) for _ in range(4)] == [[0, 2], [1, 4], [3], []]


def test_pages_are_read_ahead_until_cap_messages_are_held_and_again_below_it() -> None:
    # GIVEN pages of five and a cap of ten
    feed = DueFeed(outbox_with("AAAAB" + "ABABA" + "BBBBB" + "AB"), lambda: NOW, page=5, cap=10)
    reads = read_wanted(feed)
    # THEN two pages are read before any turn
    assert reads == 2 and feed.left() == 10
    # AND once a turn takes the held messages below the cap, the next page is wanted
    assert ids(feed.turn(set())) == [0, 4]
    assert feed.wants_page()
    feed.read_page()
    assert feed.left() == 13
    # AND none once every page is read
    feed.read_page()
    assert feed.exhausted and not feed.wants_page()


def test_a_sender_first_seen_on_a_later_page_takes_turns_from_the_first() -> None:
    # GIVEN a due list whose first page holds only A's messages (as a run taking over
    # finds it: the senders its predecessor fell behind on come first)
    feed = DueFeed(outbox_with("AAAAA" + "AAAAB" + "BBBB"), lambda: NOW, page=5, cap=20)
    read_wanted(feed)
    # THEN B takes its turn alongside A's first message, not after A's fifth
    assert ids(feed.turn(set())) == [0, 9]


def test_a_sender_out_of_slots_takes_no_turns() -> None:
    feed = DueFeed(outbox_with("AAAAB" + "AAAAA"), lambda: NOW, page=5, cap=40)
    feed.read_page()
    assert ids(feed.turn({B})) == [0]
    assert ids(feed.turn({A})) == [4]  # B's only message
    assert ids(feed.turn({B})) == [1]
    assert feed.left() == 2


def test_no_page_is_read_while_cap_messages_are_held() -> None:
    # GIVEN a sender with one message only, and many more of another sender's
    feed = DueFeed(outbox_with("B" + "A" * 24), lambda: NOW, page=5, cap=10)
    feed.read_page()
    assert ids(feed.turn(set())) == [0, 1]  # B's one message: B is dry for good
    # WHEN pages are read as long as they are wanted
    read_wanted(feed)
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


def test_the_dispatcher_serves_a_sender_whose_messages_lie_past_the_first_page() -> None:
    # GIVEN pages of four: the first holds only A's messages, B's come after; one
    # worker, so the sends leave in the order they were taken
    outbox = outbox_with("AAAA" + "AAAB" + "BBB")
    plum = ScriptedPlum()
    dispatcher = one_worker(outbox, plum)
    dispatcher.run(lambda: 600_000)
    # THEN B's messages take turns with A's from the first, instead of waiting until
    # A's first page ran out
    order = [int(body.split()[1]) for _, _, body, _ in plum.queued]
    assert order == [0, 7, 1, 8, 2, 9, 3, 10, 4, 5, 6]


def test_due_messages_outlast_a_run_while_pages_are_left_or_a_sender_has_more_queued() -> None:
    # GIVEN two pages of five: A has seven messages, B three
    feed = DueFeed(outbox_with("AABAA" + "BABAA"), lambda: NOW, page=5, cap=5)
    # THEN nothing is known before the first page
    assert not feed.outlasts(0)
    # AND with a page left, the messages outlast any number of sends
    feed.read_page()
    assert feed.outlasts(1000)
    # AND once every page is read, only a sender with more queued than it can send
    feed.read_page()
    assert feed.exhausted
    assert feed.outlasts(6)  # A has seven
    assert not feed.outlasts(7)  # exactly what A can send: nothing left after


def test_while_a_sender_seen_has_nothing_queued_pages_are_read_past_the_cap() -> None:
    # GIVEN a due list where B's second message lies three pages past its first (A's
    # messages drifted ahead of B's), pages of five, a cap of ten and a reach of twenty
    feed = DueFeed(
        outbox_with("ABAAA" + "AAAAA" + "AAAAA" + "AAAAB" + "AAAAA"),
        lambda: NOW,
        page=5,
        cap=10,
        reach=20,
    )
    read_wanted(feed)
    assert feed.left() == 10
    # WHEN B's first message takes its turn
    assert ids(feed.turn(set())) == [0, 1]
    # THEN the feed reads on past the cap until B has a message queued again, and
    # takes it in B's next turn (not once A's eight messages ahead of it are sent)
    reads = read_wanted(feed)
    assert reads == 2 and feed.left() == 18
    assert not feed.dry()
    assert ids(feed.turn(set())) == [2, 19]


def test_reading_for_a_dry_sender_stops_at_the_reach() -> None:
    # GIVEN B's only message first, then A's: B is dry for good after its turn
    feed = DueFeed(outbox_with("BA" + "A" * 30), lambda: NOW, page=5, cap=5, reach=13)
    read_wanted(feed)
    assert ids(feed.turn(set())) == [0, 1]
    read_wanted(feed)
    # THEN it stops reading once it holds the reach (3 held after the turn, then pages
    # of five up to 13)
    assert feed.dry() and feed.left() == 13


def test_without_a_dry_sender_no_page_is_read_past_the_cap() -> None:
    feed = DueFeed(outbox_with("AB" * 20), lambda: NOW, page=5, cap=10, reach=40)
    read_wanted(feed)
    assert feed.left() == 10
    assert ids(feed.turn(set())) == [0, 1]
    assert not feed.dry()
    assert feed.wants_page()  # below the cap again
    feed.read_page()
    assert not feed.wants_page() and feed.left() == 13


def test_the_dispatcher_reads_on_for_a_sender_whose_next_message_lies_past_the_cap() -> None:
    # GIVEN pages of four (16 messages held) and B's second message 21 places after its
    # first; one worker, so the sends leave in the order they were taken
    outbox = outbox_with("AB" + "A" * 20 + "B" + "A" * 5)
    plum = ScriptedPlum()
    dispatcher = one_worker(outbox, plum)
    report = dispatcher.run(lambda: 600_000)
    # THEN B's second message takes B's second turn, and the pages read past the cap
    # for it are counted
    order = [int(body.split()[1]) for _, _, body, _ in plum.queued]
    assert order[:4] == [0, 1, 2, 22]
    assert sorted(order) == list(range(28))
    assert report["pages_for_dry_senders"] >= 1


def test_a_known_sender_makes_the_feed_read_on_before_any_turn() -> None:
    # GIVEN a run taking over: its predecessor found messages of A and B, and B's next
    # message lies past the cap (pages of five, a cap of ten, a reach of twenty)
    feed = DueFeed(
        outbox_with("AAAAA" + "AAAAA" + "AB" + "A" * 8),
        lambda: NOW,
        page=5,
        cap=10,
        reach=20,
        known={A, B},
    )
    # THEN nothing is known to outlast the run before a page is read
    assert not feed.outlasts(0)
    # AND the feed reads on past the cap until B has a message queued
    reads = read_wanted(feed)
    assert reads == 3 and feed.left() == 15
    # AND B's message takes the first turn with A's first
    assert sorted(ids(feed.turn(set()))) == [0, 11]
    assert feed.found == {A, B}


def test_reading_on_reads_at_most_the_cap_between_two_turns_and_never_past_the_reach() -> None:
    # GIVEN a known sender that has nothing due any more (its campaign ended), pages of
    # five, a cap of five and a reach of fifteen
    found: set[str] = set()
    feed = DueFeed(
        outbox_with("A" * 30), lambda: NOW, page=5, cap=5, reach=15, known={B}, found=found
    )
    reads_between_turns = []
    for turn in range(4):
        reads_between_turns.append(read_wanted(feed))
        assert ids(feed.turn(set())) == [turn]
    # THEN the cap's page, then one page read on (five messages: the cap) per turn, so
    # A takes its turns meanwhile; none once the reach is held
    assert reads_between_turns == [2, 1, 1, 0]
    assert feed.left() == 16  # 20 read (the reach, 15, passed by the last page) less 4
    # AND only A is found (into the set given)
    assert found == {A} and feed.found is found


def test_without_known_senders_the_feed_stops_at_the_cap() -> None:
    # The control for the first test above: the same due list and sizes, nobody known.
    feed = DueFeed(outbox_with("AAAAA" + "AAAAA" + "AB" + "A" * 8), lambda: NOW, 5, 10, 20)
    assert read_wanted(feed) == 2
    assert feed.left() == 10
    assert ids(feed.turn(set())) == [0]


def test_reading_on_stops_once_the_cap_was_read_on_since_the_last_turn() -> None:
    # GIVEN pages of three and a cap of seven (the pages read on pass the cap: 3, 6, 9),
    # and a known sender with nothing due
    feed = DueFeed(outbox_with("A" * 60), lambda: NOW, page=3, cap=7, reach=40, known={B})
    reads = []
    for turn in range(2):
        reads.append(read_wanted(feed))
        assert ids(feed.turn(set())) == [turn]
    # THEN three pages to reach the cap, then three read on (nine messages, the first
    # count past seven), and three again after the turn
    assert reads == [6, 3]


def test_reading_on_stops_at_exactly_the_reach() -> None:
    # GIVEN pages of four, a cap of eight and a reach of fourteen: B is dry after its
    # turn, and the burst (eight) does not bind before the reach does
    feed = DueFeed(outbox_with("BA" + "A" * 30), lambda: NOW, page=4, cap=8, reach=14)
    read_wanted(feed)
    assert ids(feed.turn(set())) == [0, 1]
    read_wanted(feed)
    # THEN it holds exactly the reach, and reads no page more
    assert feed.left() == 14 and feed.dry()
