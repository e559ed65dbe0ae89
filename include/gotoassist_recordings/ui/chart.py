"""A bar chart laid out on the server, for an inline SVG: no script and nothing fetched from elsewhere."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class BarPoint:
    """One bar to draw: what it stands for, its axis label, its value (``None`` when there is nothing
    to show) and its tooltip."""

    key: str
    label: str
    value: int | None
    title: str


@dataclass(frozen=True)
class Bar:
    """A bar placed in the SVG's coordinates; a bar without a value has no height.

    ``labelled`` says whether there is room for its axis label and value, or only every few bars'.
    """

    key: str
    label: str
    value: int | None
    title: str
    labelled: bool
    x: float
    y: float
    width: float
    height: float

    @property
    def centre(self) -> float:
        return self.x + self.width / 2


@dataclass(frozen=True)
class Tick:
    """A line of the value axis."""

    y: float
    label: str


@dataclass(frozen=True)
class BarChart:
    """Everything the template needs to draw the chart."""

    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float
    bars: list[Bar]
    ticks: list[Tick]


def lay_out_bars(
    points: Sequence[BarPoint], *, width: int = 880, height: int = 280, left: int = 56, bottom: int = 44
) -> BarChart:
    """Place one bar per point, scaled to a value axis of round steps that starts at zero.

    :param points: the bars, left to right.
    :param width: width of the SVG.
    :param height: height of the SVG.
    :param left: room for the value axis labels.
    :param bottom: room for the bar labels.
    """
    top, right = 16.0, float(width - 12)
    base = float(height - bottom)
    step, axis_top = _value_axis(max((p.value or 0 for p in points), default=0))
    scale = (base - top) / axis_top
    slot = (right - left) / max(len(points), 1)
    bar_width = max(slot * 0.7, 1.0)
    # Labels need about 40 units each; on narrow bars only every few bars get one.
    label_every = max(math.ceil(40 / slot), 1)

    bars = []
    for index, point in enumerate(points):
        bar_height = (point.value or 0) * scale
        x = left + index * slot + (slot - bar_width) / 2
        labelled = (len(points) - 1 - index) % label_every == 0
        bars.append(
            Bar(
                point.key,
                point.label,
                point.value,
                point.title,
                labelled,
                x,
                base - bar_height,
                bar_width,
                bar_height,
            )
        )
    ticks = [Tick(base - value * scale, f"{value:,}") for value in range(0, axis_top + 1, step)]
    return BarChart(width, height, float(left), right, top, base, bars, ticks)


def _value_axis(highest: int) -> tuple[int, int]:
    """A round step (1, 2 or 5 times a power of ten) giving about four lines, and the axis' top."""
    if highest <= 0:
        return 1, 1
    rough = highest / 4
    magnitude = 10 ** math.floor(math.log10(rough)) if rough >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= rough)
    return step, math.ceil(highest / step) * step
