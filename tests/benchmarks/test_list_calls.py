"""The listing benchmark's baseline: plain halving must count the calls a client that splits every
full window in two would make, or the comparison with the planner means nothing."""

from __future__ import annotations

import pytest
from benchmarks.list_calls import DAY, SimulatedListCall, halving_calls, measure

START = int(DAY.start.timestamp())
HALF = DAY.seconds // 2


def day_of(*groups: tuple[int, int]) -> SimulatedListCall:
    """A day holding ``count`` recordings at each given offset from its start."""
    return SimulatedListCall([(START + offset, "", False) for offset, count in groups for _ in range(count)])


@pytest.mark.parametrize(
    ("groups", "calls"),
    [
        pytest.param([], 1, id="empty day"),
        pytest.param([(0, 499)], 1, id="one list short of full"),
        # The whole day comes back full, each half holds 300.
        pytest.param([(10, 300), (HALF + 10, 300)], 3, id="two halves"),
        # Full: the day, its first half, its first quarter; then the two eighths of that quarter and
        # the second quarter and the second half each once.
        pytest.param([(10, 300), (HALF // 4 + 10, 300)], 7, id="all in the first quarter"),
    ],
)
def test_halving_splits_every_window_whose_list_came_back_full(
    groups: list[tuple[int, int]], calls: int
) -> None:
    assert halving_calls(day_of(*groups), DAY) == calls


def test_a_full_second_is_not_split_further() -> None:
    fetch = day_of((0, 600))

    # The 17 windows from the whole day down to its first second all come back full; the 16 of them
    # longer than a second are split, each leaving an empty second half to list.
    assert halving_calls(fetch, DAY) == 17 + 16


def test_the_table_counts_both_ways_over_the_same_day() -> None:
    run = measure("uniform", 1234, seed=7)

    assert run.list_calls >= run.minimum
    assert run.halving_calls >= run.minimum
