"""The campaign bench's figures read what the Plum stand-in received the way they say."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from bench.bench_campaign import Scale, _dump, _report
from bench.harness import Figure

RATE = 2.0


class RecordedStandIn:
    """What the Plum stand-in received (its ``snapshot()``), without the child process."""

    def __init__(self, arrivals: dict[str, list[float]]) -> None:
        self.arrivals = arrivals
        self.bodies = [f"{sender} {n}" for sender, ts in arrivals.items() for n in range(len(ts))]


def paced(count: int, start: float = 100.0) -> list[float]:
    return [start + n / RATE for n in range(count)]


def figures(stand_in: RecordedStandIn, total: int | None = None) -> dict[str, Figure]:
    received = sum(len(t) for t in stand_in.arrivals.values())
    senders = len(stand_in.arrivals)
    scale = Scale(per_sender=(total or received) // senders, rate=RATE, concurrency=4,
                  store="moto", sender_count=senders)  # fmt: skip
    found = _report(stand_in.arrivals, stand_in.bodies, scale, 60.0, Counter())
    return {f.name: f for f in found}


def test_senders_on_pace_meet_every_target() -> None:
    found = figures(RecordedStandIn({"+1A": paced(121), "+1B": paced(121, 100.2)}))
    assert found["worst 10-s window vs rate"].ok
    assert found["worst 10-s window vs rate"].value == 0
    assert found["busiest 10-s window / rate"].ok
    assert found["slowest sender / rate"].ok
    assert found["longest pause of a sender"].value == pytest.approx(0.5)
    assert found["lost"].value == 0
    assert found["duplicates"].value == 0
    assert found["messages per second"].value == pytest.approx(242 / 60.2)


def test_a_pause_of_one_sender_misses_its_window() -> None:
    late = paced(40) + [t + 2.0 for t in paced(81, 120.0)]  # 2 s lost after 20 s
    found = figures(RecordedStandIn({"+1A": paced(121), "+1B": late}))
    window = found["worst 10-s window vs rate"]
    assert not window.ok
    assert window.value == pytest.approx(4 / 20)  # 16 of 20 in the window with the pause
    assert "...1B" in window.note
    assert found["longest pause of a sender"].value == pytest.approx(2.5)
    assert "...1B at 20 s" in found["longest pause of a sender"].note
    assert found["busiest 10-s window / rate"].ok  # a pause sends nothing too fast


def test_a_burst_exceeds_the_busiest_window_though_every_full_window_looks_fine() -> None:
    # One extra send each side of a window's edge: each full window holds 21 (within
    # one send of 20), a sliding window opening on a send finds 22.
    times = sorted([*paced(121), 109.75, 110.1])
    found = figures(RecordedStandIn({"+1A": times}))
    assert found["worst 10-s window vs rate"].ok
    assert found["busiest 10-s window / rate"].value == pytest.approx(22 / 20)
    assert not found["busiest 10-s window / rate"].ok


def test_lost_and_duplicated_messages_are_counted() -> None:
    stand_in = RecordedStandIn({"+1A": paced(20)})
    stand_in.bodies[3] = stand_in.bodies[4]
    found = figures(stand_in, total=25)
    assert found["lost"].value == 5
    assert not found["lost"].ok
    assert found["duplicates"].value == 1


def test_the_arrivals_are_written_where_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    arrivals = {"+1A": paced(3), "+1B": paced(2, 101.0)}
    monkeypatch.setenv("BENCH_CAMPAIGN_DUMP", str(tmp_path / "arrivals.json"))
    _dump(arrivals)
    written = json.loads((tmp_path / "arrivals.json").read_text())
    assert written == {"clock": "monotonic", "arrivals": arrivals}
