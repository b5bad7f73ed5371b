"""The feed simulation of ``bench/bench_feed.py`` measures what it says."""

from __future__ import annotations

from datetime import UTC, datetime

from bench.bench_feed import ListOutbox, campaign

NOW = datetime(2026, 12, 5, tzinfo=UTC)


def test_the_list_outbox_pages_over_the_messages_not_yet_sent() -> None:
    outbox = ListOutbox(["A", "B", "A", "B", "A"])
    outbox.sent[0] = outbox.sent[3] = 1
    first = outbox.due(NOW, 2)
    assert [(r.message_id, r.from_) for r in first.items] == [("1", "B"), ("2", "A")]
    assert first.next_position is not None
    last = outbox.due(NOW, 2, first.next_position)
    assert [r.message_id for r in last.items] == ["4"]
    assert last.next_position is None
    assert outbox.pages == 2


def test_runs_that_know_their_predecessors_senders_leave_none_idle() -> None:
    # The campaign's shape: the pause without the senders is the one the full runs had.
    blind = campaign(5000, 32, known=False)
    knowing = campaign(5000, 32, known=True)
    assert blind.longest_pause >= 8
    assert knowing.longest_pause == 0
    assert knowing.runs <= blind.runs  # no idle sender: the campaign ends sooner
