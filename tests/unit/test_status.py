"""The status state machine and the write plan: monotonic, duplicate-proof, order-proof."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plumsms.domain import status
from plumsms.domain.models import HistoryEntry, Message, MessageType, Status

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def message(
    state: str = Status.QUEUED, history: list[str] | None = None, plum_id: str | None = "a" * 32
) -> Message:
    names = history if history is not None else ["scheduled", "sending", state]
    return Message(
        id="m" * 32,
        sms_message_id=plum_id,
        type=MessageType.OUTBOUND,
        to="+19998881234",
        from_="+12435678910",
        body="hi",
        status=state,
        created_at=T0,
        updated_at=T0,
        segments=1,
        encoding="GSM-7",
        history=[
            HistoryEntry(status=s, at=T0 + timedelta(seconds=i), source="dispatcher")
            for i, s in enumerate(names)
        ],
    )


def report(state: str, second: int = 100, source: str = "plum-callback") -> HistoryEntry:
    return HistoryEntry(status=state, at=T0 + timedelta(seconds=second), source=source)


def fold(start: Message, reports: list[HistoryEntry]) -> Message:
    """Apply reports one by one, as successive callbacks do (one plan and write each)."""
    current = start
    for entry in reports:
        planned = status.plan(current, [entry])
        current = current.model_copy(
            update={"status": planned.status, "history": [*current.history, *planned.append]}
        )
    return current


# -- transitions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "reported", "expected", "changed"),
    [
        ("queued", "sent", "sent", True),
        ("queued", "delivered", "delivered", True),
        ("sending", "queued", "queued", True),
        ("scheduled", "queued", "queued", True),
        ("sent", "queued", "sent", False),
        ("delivered", "sent", "delivered", False),
        ("delivered", "failed", "delivered", False),
        ("failed", "delivered", "failed", False),
        ("cancelled", "delivered", "cancelled", False),
        ("sent", "sent", "sent", False),
        ("sent", " DELIVERED ", "delivered", True),
    ],
)
def test_reported_statuses_only_move_forward(
    current: str, reported: str, expected: str, changed: bool
) -> None:
    transition = status.apply_reported(current, reported)
    assert (transition.status, transition.changed, transition.known) == (expected, changed, True)


@pytest.mark.parametrize("ours", ["scheduled", "sending", "received", "cancelled", "suppressed"])
def test_statuses_plum_does_not_report_for_sends_never_move_a_message(ours: str) -> None:
    # "received" is inbound-only: reported for an outgoing message it must not end it.
    transition = status.apply_reported("queued", ours)
    assert (transition.status, transition.changed, transition.known) == ("queued", False, True)


def test_unknown_status_is_unknown_and_does_not_move() -> None:
    assert status.apply_reported("sent", "carrier_ack") == status.Transition("sent", False, False)
    assert status.apply("sent", "carrier_ack") == status.Transition("sent", False, False)


def test_internal_transitions_still_use_apply() -> None:
    assert status.apply("scheduled", "cancelled") == status.Transition("cancelled", True, True)
    assert status.apply("cancelled", "sending").changed is False


@given(st.sampled_from(sorted(status.RANK)), st.sampled_from([*sorted(status.RANK), "weird"]))
def test_predecessors_are_exactly_the_statuses_a_report_moves(current: str, reported: str) -> None:
    # The read-free write relies on this: it is conditioned on the predecessors.
    assert (current in status.predecessors(reported)) == status.apply_reported(
        current, reported
    ).changed


def test_predecessors_of_delivered() -> None:
    assert status.predecessors("Delivered") == {"scheduled", "sending", "queued", "sent"}
    assert status.predecessors("received") == frozenset()


# -- the write plan -----------------------------------------------------------------------


def test_plan_of_a_new_status_appends_it_and_moves() -> None:
    planned = status.plan(message("queued"), [report("sent")])
    assert planned.changed and planned.needs_write
    assert (planned.previous, planned.status) == ("queued", "sent")
    assert [(e.status, e.source) for e in planned.append] == [("sent", "plum-callback")]


def test_duplicate_plans_no_write() -> None:
    current = message("sent", ["queued", "sent"])
    planned = status.plan(current, [report("SENT")])
    assert not planned.needs_write and not planned.changed and planned.append == ()


def test_late_status_is_appended_without_moving() -> None:
    planned = status.plan(message("delivered", ["queued", "delivered"]), [report("sent")])
    assert planned.status == "delivered" and not planned.changed
    assert [e.status for e in planned.append] == ["sent"]


def test_unknown_status_is_appended_once() -> None:
    first = fold(message("queued"), [report("Mystery", 1)])
    assert first.status == "queued" and first.history[-1].status == "mystery"
    assert status.plan(first, [report("mystery", 2)]).needs_write is False
    assert status.plan(message("queued"), [report("mystery")]).known is False


def test_plan_records_plum_id_only_when_missing() -> None:
    assert (
        status.plan(message(plum_id=None), [report("queued")], "b" * 32).record_plum_id == "b" * 32
    )
    assert status.plan(message(plum_id="a" * 32), [report("sent")], "b" * 32).record_plum_id is None
    # A duplicate still writes when it teaches us Plum's id.
    assert status.plan(message("queued", plum_id=None), [report("queued")], "b" * 32).needs_write


def test_plan_of_several_reports_folds_them_in_time_order() -> None:
    planned = status.plan(
        message("queued"), [report("delivered", 3), report("sent", 2), report("sent", 4)]
    )
    assert planned.status == "delivered"
    assert [e.status for e in planned.append] == ["sent", "delivered"]


def test_history_is_capped_but_status_changes_always_land() -> None:
    full = message("queued", ["queued"] + [f"noise-{i}" for i in range(status.MAX_HISTORY - 1)])
    assert len(full.history) == status.MAX_HISTORY
    assert status.plan(full, [report("more-noise")]).needs_write is False
    planned = status.plan(full, [report("delivered")])
    assert planned.changed and [e.status for e in planned.append] == ["delivered"]


def test_conflicting_finals_first_one_wins() -> None:
    assert fold(message("sent"), [report("failed", 1), report("delivered", 2)]).status == "failed"
    assert (
        fold(message("sent"), [report("delivered", 1), report("failed", 2)]).status == "delivered"
    )


# -- property: duplication and reordering -------------------------------------------------

FINALS = ["delivered", "undelivered", "failed"]
UNKNOWN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-", min_size=1, max_size=12).filter(
    lambda s: s not in status.RANK
)


@st.composite
def lifecycle(draw: st.DrawFn) -> list[str]:
    """What Plum reports over one message's life: some of queued, sent, one final; maybe noise."""
    steps = [s for s in ("queued", "sent") if draw(st.booleans())]
    if draw(st.booleans()):
        steps.append(draw(st.sampled_from(FINALS)))
    steps += draw(st.lists(UNKNOWN, max_size=3))
    return steps


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    """A lifecycle and one way it may arrive: each report 1-3 times, in any order."""
    steps = draw(lifecycle())
    arrivals = [s for s in steps for _ in range(draw(st.integers(1, 3)))]
    return steps, draw(st.permutations(arrivals))


def expected_final(start: str, steps: list[str]) -> str:
    known = [s for s in steps if s in status.RANK]
    return max([start, *known], key=lambda s: status.RANK[s])


@given(deliveries(), st.sampled_from(["sending", "queued"]))
def test_any_duplication_and_reordering_ends_in_the_same_status_with_full_history(
    case: tuple[list[str], list[str]], start: str
) -> None:
    # GIVEN what Plum reports about a message, and an arbitrary duplicated, reordered arrival
    steps, arrivals = case
    initial = message(
        start, ["scheduled", "sending", start] if start != "sending" else ["scheduled", "sending"]
    )
    # WHEN the arrivals are applied one callback at a time
    ended = fold(initial, [report(s, i) for i, s in enumerate(arrivals)])
    in_order = fold(initial, [report(s, i) for i, s in enumerate(steps)])
    # THEN the status is the furthest one reported, whatever the order and repetitions
    assert ended.status == in_order.status == expected_final(start, steps)
    # AND the history holds every distinct report once, after what was there before
    added = [e.status for e in ended.history[len(initial.history) :]]
    assert sorted(added) == sorted(set(steps) - {e.status for e in initial.history})
    assert len(added) == len(set(added))
    assert all(e.source == "plum-callback" for e in ended.history[len(initial.history) :])


@given(deliveries())
def test_one_plan_over_all_reports_equals_one_write_per_report(
    case: tuple[list[str], list[str]],
) -> None:
    # Attaching orphans folds many reports into one write; it must agree with callbacks.
    _, arrivals = case
    reports = [report(s, i) for i, s in enumerate(arrivals)]
    one_by_one = fold(message("queued"), reports)
    at_once = status.plan(message("queued"), reports)
    assert at_once.status == one_by_one.status
    assert [e.status for e in at_once.append] == [e.status for e in one_by_one.history[3:]]


@given(st.lists(st.sampled_from(["queued", "sent", *FINALS, "weird"]), max_size=8))
def test_status_never_moves_backwards(arrivals: list[str]) -> None:
    current = message("queued")
    for i, state in enumerate(arrivals):
        nxt = fold(current, [report(state, i)])
        assert status.RANK[nxt.status] >= status.RANK[current.status]
        if status.is_final(current.status):
            assert nxt.status == current.status
        current = nxt


# -- metrics and change events ------------------------------------------------------------


def test_queue_to_final_time_reads_the_history() -> None:
    history = [report("queued", 10), report("sent", 12), report("delivered", 40)]
    assert status.queue_to_final_seconds(history, "delivered") == 30.0
    assert status.queue_to_final_seconds(history, "sent") is None
    assert status.queue_to_final_seconds(history[1:], "delivered") is None
    # A late-recorded queued entry never gives a negative time.
    assert (
        status.queue_to_final_seconds([report("failed", 5), report("queued", 9)], "failed") == 0.0
    )


def test_change_of_describes_the_move() -> None:
    before = message("queued", ["scheduled", "queued"])
    planned = status.plan(before, [report("delivered", 61)])
    change = status.change_of(before, planned)
    assert change is not None
    assert (change.message_id, change.previous, change.status, change.final) == (
        before.id,
        "queued",
        "delivered",
        True,
    )
    assert change.at == T0 + timedelta(seconds=61) and change.source == "plum-callback"
    assert change.queue_to_final_seconds == 60.0
    assert (change.to, change.from_, change.type) == ("+19998881234", "+12435678910", "outbound")
    assert status.change_of(before, status.plan(before, [report("mystery")])) is None


def test_a_known_report_is_known() -> None:
    # GIVEN a queued message WHEN Plum reports a status this state machine knows
    planned = status.plan(message("queued"), [report("sent"), report("Delivered", 101)])
    # THEN the plan does not flag it as unknown (no unknown-status metric or warning)
    assert planned.known is True


def test_one_unknown_report_in_a_batch_flags_the_whole_plan() -> None:
    planned = status.plan(message("queued"), [report("sent", 1), report("mystery", 2)])
    assert (planned.status, planned.known) == ("sent", False)


def test_change_event_carries_the_plum_id_the_message_already_had() -> None:
    # GIVEN a message that already has Plum's id
    before = message("queued", ["scheduled", "queued"], plum_id="a" * 32)
    # WHEN a callback moves it, naming the same id
    planned = status.plan(before, [report("delivered")], "a" * 32)
    change = status.change_of(before, planned)
    # THEN the change event names that id
    assert change is not None and change.sms_message_id == "a" * 32


def test_change_event_carries_the_plum_id_learned_from_the_report() -> None:
    before = message("queued", ["scheduled", "queued"], plum_id=None)
    change = status.change_of(before, status.plan(before, [report("sent")], "b" * 32))
    assert change is not None and change.sms_message_id == "b" * 32


def test_change_event_time_and_source_come_from_the_report_that_set_the_status() -> None:
    # GIVEN one batch with two reports from different sources at different times
    before = message("queued", ["scheduled", "queued"])
    batch = [report("sent", 10, source="reconciler"), report("delivered", 20, source="plum")]
    # WHEN the batch moves the message to delivered
    change = status.change_of(before, status.plan(before, batch))
    # THEN the event's time and source are the delivered report's, not the sent one's
    assert change is not None and change.status == "delivered"
    assert (change.at, change.source) == (T0 + timedelta(seconds=20), "plum")


def test_change_event_from_a_late_unknown_report_keeps_the_moving_reports_time() -> None:
    before = message("queued", ["scheduled", "queued"])
    batch = [report("delivered", 10, source="plum"), report("mystery", 30, source="later")]
    change = status.change_of(before, status.plan(before, batch))
    assert change is not None
    assert (change.status, change.at, change.source) == (
        "delivered",
        T0 + timedelta(seconds=10),
        "plum",
    )


def _history_of(length: int) -> Message:
    return message("queued", ["queued"] + [f"noise-{i}" for i in range(length - 1)])


def test_history_one_short_of_the_cap_still_takes_an_unknown_status() -> None:
    # GIVEN a message with 63 history entries WHEN Plum reports an unknown status
    planned = status.plan(_history_of(status.MAX_HISTORY - 1), [report("more-noise")])
    # THEN it is kept: the 64th entry
    assert [e.status for e in planned.append] == ["more-noise"]
    assert status.MAX_HISTORY == 64


def test_status_change_after_a_capped_unknown_report_in_the_same_batch_still_lands() -> None:
    # GIVEN a message whose history is full (64 entries)
    full = _history_of(status.MAX_HISTORY)
    # WHEN one batch holds an unknown status (dropped by the cap) and then a delivery
    planned = status.plan(full, [report("more-noise", 1), report("delivered", 2)])
    # THEN the delivery is still recorded and moves the message
    assert planned.status == "delivered"
    assert [e.status for e in planned.append] == ["delivered"]


@pytest.mark.parametrize(
    ("current", "new", "moves"),
    [
        ("scheduled", "sending", True),  # the dispatcher claims a due message
        ("sending", "queued", True),
        ("sending", "scheduled", False),  # never back to pending
        ("queued", "sending", False),
        ("mystery", "scheduled", True),  # any known status beats one we do not know
    ],
)
def test_our_own_transitions_move_only_forward(current: str, new: str, moves: bool) -> None:
    assert status.apply(current, new).changed is moves


def test_transitions_plans_and_changes_cannot_be_altered() -> None:
    before = message("queued", ["scheduled", "queued"])
    planned = status.plan(before, [report("delivered")])
    change = status.change_of(before, planned)
    assert change is not None
    for record, field in (
        (status.apply("queued", "sent"), "status"),
        (planned, "status"),
        (change, "status"),
    ):
        with pytest.raises(AttributeError):
            setattr(record, field, "failed")


def test_a_batch_near_the_history_cap_keeps_unknown_statuses_only_up_to_64() -> None:
    # GIVEN 62 entries and a batch of four unknown statuses
    planned = status.plan(_history_of(62), [report(f"odd-{i}", i) for i in range(1, 5)])
    # THEN two are kept (entries 63 and 64), the other two dropped
    assert [e.status for e in planned.append] == ["odd-1", "odd-2"]


def test_past_the_cap_unknown_statuses_stay_dropped_after_a_change_lands() -> None:
    # GIVEN a full history, and a batch that moves the status, then reports noise
    planned = status.plan(_history_of(64), [report("sent", 1), report("more-noise", 2)])
    # THEN the change lands as entry 65 and the noise is still dropped
    assert [e.status for e in planned.append] == ["sent"]


def test_queue_to_final_time_runs_to_the_final_status_not_to_sent() -> None:
    history = [report("queued", 0), report("sent", 3), report("undelivered", 9)]
    assert status.queue_to_final_seconds(history, "undelivered") == 9.0


def test_change_event_ignores_an_unknown_status_reported_after_the_move() -> None:
    before = message("queued", ["scheduled", "queued"])
    batch = [report("delivered", 10, source="plum"), report("accepted", 30, source="later")]
    change = status.change_of(before, status.plan(before, batch))
    assert change is not None
    assert (change.status, change.at, change.source) == (
        "delivered",
        T0 + timedelta(seconds=10),
        "plum",
    )
