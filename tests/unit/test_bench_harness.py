"""The benchmark harness: statistics, timing helpers and the runner's pure parts."""

from __future__ import annotations

import math
import os
import statistics
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench import __main__ as runner
from bench.harness import (
    Figure,
    SubprocessFailed,
    Summary,
    _package_of,
    at_most,
    environ,
    interleaved,
    median,
    missing,
    percentile,
    python_env,
    ratio,
    run_in_fresh_python,
    time_calls,
    top_level_packages,
)

samples = st.lists(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=2, max_size=200
)


# -- percentile ---------------------------------------------------------------------------


@given(samples)
def test_percentile_matches_the_inclusive_quantiles_of_the_standard_library(
    xs: list[float],
) -> None:
    # GIVEN any sample of at least two values
    # WHEN the 1st..99th percentiles are computed
    ours = [percentile(xs, p) for p in range(1, 100)]
    # THEN they are the inclusive (numpy "linear") quantiles
    expected = statistics.quantiles(xs, n=100, method="inclusive")
    assert ours == pytest.approx(expected, rel=1e-9, abs=1e-6)


@given(samples, st.floats(min_value=0, max_value=100))
def test_percentile_lies_between_the_extremes_and_grows_with_p(xs: list[float], p: float) -> None:
    value = percentile(xs, p)
    assert min(xs) <= value <= max(xs)
    assert percentile(xs, min(100.0, p + 1)) >= value


def test_percentile_ends_and_middle() -> None:
    # GIVEN an unsorted sample
    xs = [5.0, 1.0, 4.0, 2.0, 3.0]
    # THEN p0 is the minimum, p100 the maximum, p50 the median, p25 interpolates nothing here
    assert percentile(xs, 0) == 1.0
    assert percentile(xs, 100) == 5.0
    assert median(xs) == 3.0
    assert percentile(xs, 25) == 2.0
    # AND between two ranks it interpolates linearly
    assert percentile([0.0, 10.0], 99) == pytest.approx(9.9)
    assert percentile([7.0], 99) == 7.0


@pytest.mark.parametrize("p", [-0.1, 100.1, math.nan])
def test_percentile_refuses_impossible_ranks(p: float) -> None:
    with pytest.raises(ValueError, match=r"within 0\.\.100"):
        percentile([1.0, 2.0], p)


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 50)


def test_summary_of_a_series() -> None:
    summary = Summary.of([float(i) for i in range(1, 101)])
    assert summary.count == 100
    assert summary.p50 == pytest.approx(50.5)
    assert summary.p99 == pytest.approx(99.01)
    assert (summary.minimum, summary.maximum) == (1.0, 100.0)


# -- figures ------------------------------------------------------------------------------


def test_ratio_against_a_missing_or_zero_baseline_is_nan() -> None:
    assert ratio(3.0, 2.0) == 1.5
    assert math.isnan(ratio(3.0, 0.0))
    assert math.isnan(ratio(math.nan, 2.0))


def test_at_most_judges_the_target_and_abstains_without_a_value() -> None:
    met = at_most("r", 1.25, "x", 1.25)
    missed = at_most("r", 1.26, "x", 1.25)
    unknown = at_most("r", math.nan, "x", 1.25)
    assert (met.ok, met.target) == (True, "<= 1.25")
    assert missed.ok is False
    assert unknown.ok is None


def test_figure_keeps_its_positional_constructor_and_serialises_nan_as_null() -> None:
    # GIVEN a figure built positionally, as the colleagues' bench modules do
    figure = Figure("p50", math.nan, "ms", "<= 2", None, "not measured")
    # THEN its JSON form is valid JSON (no NaN) and the runner reads it back
    assert figure.to_json() == {
        "name": "p50",
        "value": None,
        "unit": "ms",
        "target": "<= 2",
        "ok": None,
        "note": "not measured",
    }
    back = runner._figure(figure.to_json())
    assert math.isnan(back.value)
    assert back.name == "p50" and back.note == "not measured"
    measured = Figure("p99", 2.5, "ms", "<= 3", True, "")
    assert runner._figure(measured.to_json()) == measured


def test_missing_figure_says_why() -> None:
    figure = missing("cold import x ratio", "x", "skipped: import failed")
    assert math.isnan(figure.value) and figure.ok is None
    assert "import failed" in figure.note


# -- timing helpers -----------------------------------------------------------------------


def test_time_calls_warms_up_then_times_each_call_with_fresh_indices() -> None:
    seen: list[int] = []
    timings = time_calls(seen.append, 5, warmup=3, start=10)
    assert seen == list(range(10, 18))
    assert len(timings) == 5
    assert all(t >= 0 for t in timings)


def test_interleaved_alternates_blocks_and_gives_each_series_distinct_indices() -> None:
    # GIVEN two series that record the order they are called in
    order: list[tuple[str, int]] = []
    rounds: list[int] = []
    series = {
        "a": lambda i: order.append(("a", i)),
        "b": lambda i: order.append(("b", i)),
    }
    # WHEN 7 calls each are timed in blocks of 3 after 2 warm-up calls
    timings = interleaved(series, 7, block=3, warmup=2, after_round=lambda: rounds.append(1))
    # THEN each series has 7 samples, the blocks alternate, and no index repeats
    assert {name: len(t) for name, t in timings.items()} == {"a": 7, "b": 7}
    names = [name for name, _ in order]
    assert names == ["a"] * 2 + ["b"] * 2 + (["a"] * 3 + ["b"] * 3) * 2 + ["a", "b"]
    for name in series:
        assert [i for n, i in order if n == name] == list(range(9))
    # AND the reset hook ran after the warm-up and after each of the 3 rounds
    assert len(rounds) == 4


def test_environ_sets_then_restores() -> None:
    name = f"BENCH_TEST_{uuid.uuid4().hex}"
    os.environ["HOME_BENCH_KEEP"] = "kept"
    try:
        with environ({name: "1", "HOME_BENCH_KEEP": "changed"}):
            assert os.environ[name] == "1"
            assert os.environ["HOME_BENCH_KEEP"] == "changed"
        assert name not in os.environ
        assert os.environ["HOME_BENCH_KEEP"] == "kept"
    finally:
        os.environ.pop("HOME_BENCH_KEEP", None)


def test_top_level_packages_leave_out_the_standard_library() -> None:
    modules = ["json", "botocore.client", "botocore", "_thread", "plumsms.config", "yaml"]
    assert top_level_packages(modules) == ["botocore", "plumsms", "yaml"]


def test_profile_time_is_charged_to_the_package_of_the_code() -> None:
    assert _package_of("/v/lib/python3.11/site-packages/botocore/client.py") == "botocore"
    assert _package_of("/w/layers/plumsms/python/plumsms/bootstrap.py") == "plumsms"
    assert _package_of("/usr/lib/python3.11/http/client.py") == "stdlib"
    assert _package_of("<frozen importlib._bootstrap>") == "builtins"


# -- fresh interpreters (child processes, no sockets here) --------------------------------


def test_fresh_run_times_the_code_and_lists_what_it_loaded() -> None:
    # GIVEN code that imports a module the interpreter does not load at startup
    run = run_in_fresh_python("import fractions\nx = [[i] for i in range(200000)]", python_env())
    # THEN the run reports its time, the modules it loaded and the collections it caused
    assert run.seconds > 0
    assert run.cpu_seconds > 0
    assert "fractions" in run.modules
    assert sum(run.collections) > 0
    assert 0 <= run.gc_seconds <= run.seconds


def test_fresh_run_refuses_network_io() -> None:
    code = "import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=1)"
    with pytest.raises(SubprocessFailed, match="network I/O during a timed import"):
        run_in_fresh_python(code, python_env())


# -- the runner ---------------------------------------------------------------------------


def test_runner_finds_the_bench_modules_and_selects_by_short_name() -> None:
    available = runner.discover()
    assert "bench_inbound" in available
    assert all(name.startswith("bench_") for name in available)
    assert runner.select(available, ["inbound"]) == ["bench_inbound"]
    assert runner.select(available, None) == available


def test_runner_rejects_an_unknown_module_name() -> None:
    with pytest.raises(SystemExit, match="unknown bench module"):
        runner.select(["bench_inbound"], ["nope"])


@pytest.mark.parametrize(
    ("value", "shown"),
    [(math.nan, "n/a"), (1234.5, "1,234"), (45.67, "45.7"), (1.3456, "1.35"), (0.01234, "0.0123")],
)
def test_runner_formats_values(value: float, shown: str) -> None:
    assert runner.format_value(value) == shown


def test_runner_verdicts() -> None:
    assert runner.verdict(Figure("a", 1.0, "x", "<= 2", True)) == "ok"
    assert runner.verdict(Figure("a", 3.0, "x", "<= 2", False)) == "MISSED"
    assert runner.verdict(Figure("a", 3.0, "x")) == ""
