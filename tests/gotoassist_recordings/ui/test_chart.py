"""The bar chart's layout: a value axis of round steps from zero, and bars that fit their values."""

from __future__ import annotations

import itertools

import pytest

from gotoassist_recordings.ui.chart import BarPoint, lay_out_bars


def _points(*values: int | None) -> list[BarPoint]:
    return [BarPoint(f"day-{n}", f"{n}", value, f"day {n}") for n, value in enumerate(values)]


@pytest.mark.parametrize(
    ("highest", "ticks"),
    [
        pytest.param(1300, ["0", "500", "1,000", "1,500"], id="thousands"),
        pytest.param(7, ["0", "2", "4", "6", "8"], id="small"),
        pytest.param(1, ["0", "1"], id="one"),
        pytest.param(0, ["0", "1"], id="nothing-archived"),
        pytest.param(40_000, ["0", "10,000", "20,000", "30,000", "40,000"], id="round-top"),
    ],
)
def test_the_value_axis_has_round_steps_from_zero_past_the_highest(highest: int, ticks: list[str]) -> None:
    chart = lay_out_bars(_points(highest, None))

    assert [tick.label for tick in chart.ticks] == ticks
    assert chart.ticks[0].y == chart.bottom


def test_bar_heights_follow_their_values_and_days_without_one_have_none() -> None:
    chart = lay_out_bars(_points(1000, None, 500), width=400, height=200, left=40, bottom=40)

    full, missing, half = chart.bars
    assert (missing.value, missing.height) == (None, 0)
    assert full.height == pytest.approx(2 * half.height)
    for bar in chart.bars:
        assert bar.y + bar.height == pytest.approx(chart.bottom)
        assert chart.left <= bar.x < bar.x + bar.width <= chart.right
    assert full.x < missing.x < half.x


def test_narrow_bars_are_labelled_every_few_days_counting_back_from_the_last() -> None:
    wide = lay_out_bars(_points(*range(14)))
    narrow = lay_out_bars(_points(*range(90)))

    assert all(bar.labelled for bar in wide.bars)
    assert narrow.bars[-1].labelled
    labelled = [index for index, bar in enumerate(narrow.bars) if bar.labelled]
    assert 10 <= len(labelled) < 45
    assert len({b - a for a, b in itertools.pairwise(labelled)}) == 1
