"""Time windows of the list call: half-open ``[start, end)`` ranges of whole UTC seconds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pendulum

_API_FORMAT = "YYYY-MM-DDTHH:mm:ss[Z]"


def _as_utc_second(moment: datetime, name: str) -> pendulum.DateTime:
    value = pendulum.instance(moment).in_timezone("UTC")
    if value.microsecond:
        raise ValueError(
            f"Window {name} {value.isoformat()} is not a whole second; the API has no milliseconds"
        )
    return value


@dataclass(frozen=True)
class TimeWindow:
    """Recordings that started at or after ``start`` and before ``end``.

    Both ends are kept in UTC, which is how the API expects them.
    """

    start: pendulum.DateTime
    end: pendulum.DateTime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _as_utc_second(self.start, "start"))
        object.__setattr__(self, "end", _as_utc_second(self.end, "end"))
        if self.end <= self.start:
            raise ValueError(
                f"Window end {self.end.isoformat()} must be after its start {self.start.isoformat()}"
            )

    @classmethod
    def for_days(cls, first_day: pendulum.Date, last_day: pendulum.Date, timezone: str) -> TimeWindow:
        """Cover whole local days, midnight to midnight, however long DST makes them."""
        if last_day < first_day:
            raise ValueError(f"First day {first_day} is after last day {last_day}")
        tz = pendulum.timezone(timezone)
        start = pendulum.datetime(first_day.year, first_day.month, first_day.day, tz=tz)
        end = pendulum.datetime(last_day.year, last_day.month, last_day.day, tz=tz).add(days=1)
        return cls(start, end)

    @property
    def seconds(self) -> int:
        """Length of the window in whole seconds."""
        return int((self.end - self.start).total_seconds())

    def api_params(self, *, to_time_inclusive: bool = False) -> dict[str, str]:
        """Render the window as the list call's ``fromTime`` and ``toTime``.

        :param to_time_inclusive: the server counts ``toTime`` itself in; send the last
            second of the window instead, so the window stays half-open either way.
        """
        end = self.end.subtract(seconds=1) if to_time_inclusive else self.end
        return {"fromTime": self.start.format(_API_FORMAT), "toTime": end.format(_API_FORMAT)}

    def split_at(self, moment: pendulum.DateTime) -> tuple[TimeWindow, TimeWindow]:
        """Cut the window in two at ``moment``, which must lie strictly inside it."""
        return TimeWindow(self.start, moment), TimeWindow(moment, self.end)

    def __str__(self) -> str:
        return f"[{self.start.format(_API_FORMAT)}, {self.end.format(_API_FORMAT)})"


def run_window(
    *,
    data_interval_start: datetime | None,
    data_interval_end: datetime | None,
    timezone: str,
    run_after: datetime | None = None,
    first_day: str | None = None,
    last_day: str | None = None,
) -> TimeWindow:
    """Choose the window of one DAG run.

    A run processes its data interval, which for a daily schedule is one whole local day.
    A run given ``first_day`` (and optionally ``last_day``, inclusive) processes those local
    days instead, midnight to midnight in ``timezone``. A run with neither (one triggered
    without a logical date, so without a data interval) processes the local day before
    ``run_after``, as the nightly run at that midnight would.

    :raises ValueError: if the days are not dates, or the first is after the last, or the run
        has no interval, no days and no ``run_after``.
    """
    if first_day or last_day:
        first = _date(first_day or last_day, "first_day")
        last = _date(last_day or first_day, "last_day")
        return TimeWindow.for_days(first, last, timezone)
    if data_interval_start is not None and data_interval_end is not None:
        return TimeWindow(pendulum.instance(data_interval_start), pendulum.instance(data_interval_end))
    if run_after is None:
        raise ValueError("A run without a data interval must name first_day, or say when it runs")
    yesterday = pendulum.instance(run_after).in_timezone(timezone).date().subtract(days=1)
    return TimeWindow.for_days(yesterday, yesterday, timezone)


def look_back_start(window: TimeWindow, days: int, timezone: str) -> pendulum.DateTime | None:
    """Where a sweep for recordings left over by earlier runs starts: ``days`` local days before
    the day ``window`` starts on, at midnight. ``None`` when ``days`` is 0.

    :raises ValueError: if ``days`` is negative.
    """
    if days < 0:
        raise ValueError(f"look_back_days must be 0 or more, got {days}")
    if days == 0:
        return None
    first_day = window.start.in_timezone(timezone).date().subtract(days=days)
    return pendulum.datetime(first_day.year, first_day.month, first_day.day, tz=timezone)


def _date(value: str | None, name: str) -> pendulum.Date:
    try:
        parsed = pendulum.parse(str(value), exact=True)
    except (ValueError, TypeError):
        parsed = None
    if not isinstance(parsed, pendulum.Date) or isinstance(parsed, pendulum.DateTime):
        raise ValueError(f"{name} must be a date like 2026-11-30, got {value!r}")
    return parsed
