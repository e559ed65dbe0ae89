"""The end-to-end benchmark's yardstick and its own figures: the plain script must process a day as
the DAG does, and the benchmark must count what the server saw, or its ratios mean nothing."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from benchmarks.end_to_end import BenchmarkError, busiest_second, time_sequential
from benchmarks.sequential_script import ORDERS, run_script

COUNT = 1001
CHUNKS = 3


def test_the_busiest_second_counts_calls_in_any_one_second_span() -> None:
    # 0.99 ... 1.95 fall within one second, though no second of the clock holds more than four.
    assert busiest_second([0.0, 0.5, 0.99, 1.0, 1.5, 1.9, 1.95, 3.2]) == 5
    assert busiest_second([0.6, 1.4]) == 2
    assert busiest_second([0.0, 1.0, 2.0]) == 1
    assert busiest_second([]) == 0


@pytest.mark.parametrize("order", ORDERS)
def test_the_sequential_script_archives_the_whole_day_only_once_ready(order: str, tmp_path: Path) -> None:
    settings = argparse.Namespace(transcode_delay=0.3, latency=0.0, rate_limit=10, poll_interval=0.1)

    timing = time_sequential(COUNT, order, settings, tmp_path)

    # time_sequential itself fails unless every recording of the day was archived, none before it was
    # ready, and no other day touched.
    assert timing.archived == COUNT
    assert timing.refused == 0
    assert timing.busiest_second <= 10
    # One list call, then per chunk a transcode, one readiness check at least, and an archive.
    assert timing.calls >= 1 + 3 * CHUNKS


def test_an_unknown_order_is_refused_before_any_call() -> None:
    with pytest.raises(ValueError, match="order must be one of per-chunk, transcode-first, got 'random'"):
        run_script("gotoassist_nowhere", None, order="random")  # type: ignore[arg-type]


def test_a_day_left_half_done_stops_the_benchmark(tmp_path: Path) -> None:
    from benchmarks.end_to_end import _checked_day

    with pytest.raises(BenchmarkError, match="left the day of 10 recordings in a wrong state"):
        _checked_day(
            10,
            "sequential, per-chunk",
            {"archived": 9, "archived_before_ready": 0, "touched_on_other_days": 0},
        )
