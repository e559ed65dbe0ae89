from __future__ import annotations

import itertools

import pendulum
import pytest

from gotoassist_recordings.windows import TimeWindow, look_back_start, run_window


def test_api_params_are_iso_8601_utc_without_milliseconds():
    window = TimeWindow(
        pendulum.datetime(2026, 11, 30, tz="Europe/Berlin"),
        pendulum.datetime(2026, 12, 1, tz="Europe/Berlin"),
    )
    assert window.api_params() == {"fromTime": "2026-11-29T23:00:00Z", "toTime": "2026-11-30T23:00:00Z"}


def test_api_params_for_a_server_with_inclusive_to_time_end_one_second_early():
    window = TimeWindow(pendulum.datetime(2026, 11, 30), pendulum.datetime(2026, 12, 1))
    assert window.api_params(to_time_inclusive=True)["toTime"] == "2026-11-30T23:59:59Z"


@pytest.mark.parametrize(
    ("day", "timezone", "hours"),
    [
        pytest.param(pendulum.date(2026, 11, 30), "UTC", 24, id="plain-day"),
        pytest.param(pendulum.date(2026, 3, 29), "Europe/Berlin", 23, id="spring-forward"),
        pytest.param(pendulum.date(2026, 10, 25), "Europe/Berlin", 25, id="fall-back"),
        pytest.param(pendulum.date(2026, 3, 8), "America/New_York", 23, id="us-spring-forward"),
    ],
)
def test_for_days_covers_whole_local_days(day, timezone, hours):
    window = TimeWindow.for_days(day, day, timezone)
    assert window.seconds == hours * 3600
    assert window.start.in_timezone(timezone).format("HH:mm") == "00:00"
    assert window.end.in_timezone(timezone).format("HH:mm") == "00:00"


def test_consecutive_days_neither_gap_nor_overlap_across_dst():
    days = [pendulum.date(2026, 10, 24).add(days=n) for n in range(4)]
    windows = [TimeWindow.for_days(day, day, "Europe/Berlin") for day in days]
    for earlier, later in itertools.pairwise(windows):
        assert earlier.end == later.start


def test_run_window_defaults_to_the_data_interval():
    start, end = pendulum.datetime(2026, 11, 30), pendulum.datetime(2026, 12, 1)
    window = run_window(data_interval_start=start, data_interval_end=end, timezone="UTC")
    assert (window.start, window.end) == (start, end)


def test_run_window_uses_named_days_inclusive_in_the_dag_timezone():
    window = run_window(
        data_interval_start=pendulum.datetime(2026, 12, 1),
        data_interval_end=pendulum.datetime(2026, 12, 2),
        timezone="Europe/Berlin",
        first_day="2026-11-01",
        last_day="2026-11-03",
    )
    assert str(window) == "[2026-10-31T23:00:00Z, 2026-11-03T23:00:00Z)"


@pytest.mark.parametrize(
    ("first_day", "last_day", "message"),
    [
        pytest.param("2026-11-31", None, "first_day must be a date", id="impossible-date"),
        pytest.param("yesterday", None, "first_day must be a date", id="not-a-date"),
        pytest.param("2026-11-01T10:00:00", None, "first_day must be a date", id="datetime-not-date"),
        pytest.param("2026-11-05", "2026-11-01", "is after last day", id="reversed"),
    ],
)
def test_run_window_refuses_bad_days(first_day, last_day, message):
    with pytest.raises(ValueError, match=message):
        run_window(
            data_interval_start=pendulum.datetime(2026, 12, 1),
            data_interval_end=pendulum.datetime(2026, 12, 2),
            timezone="UTC",
            first_day=first_day,
            last_day=last_day,
        )


def test_window_refuses_empty_and_fractional_bounds():
    moment = pendulum.datetime(2026, 11, 30)
    with pytest.raises(ValueError, match="must be after its start"):
        TimeWindow(moment, moment)
    with pytest.raises(ValueError, match="not a whole second"):
        TimeWindow(moment, moment.add(microseconds=500))


@pytest.mark.parametrize(
    ("timezone", "days", "expected"),
    [
        pytest.param("UTC", 7, pendulum.datetime(2026, 10, 22), id="a-week-in-utc"),
        # The week before 2026-10-29 in Berlin holds the 25-hour day of 2026-10-25.
        pytest.param(
            "Europe/Berlin", 7, pendulum.datetime(2026, 10, 22, tz="Europe/Berlin"), id="across-fall-back"
        ),
        pytest.param("UTC", 0, None, id="none"),
    ],
)
def test_the_look_back_starts_at_local_midnight_whole_days_before_the_window(timezone, days, expected):
    window = TimeWindow.for_days(pendulum.date(2026, 10, 29), pendulum.date(2026, 10, 29), timezone)

    assert look_back_start(window, days, timezone) == expected


def test_a_negative_look_back_is_refused():
    window = TimeWindow.for_days(pendulum.date(2026, 10, 29), pendulum.date(2026, 10, 29), "UTC")

    with pytest.raises(ValueError, match="look_back_days must be 0 or more, got -1"):
        look_back_start(window, -1, "UTC")


@pytest.mark.parametrize(
    ("timezone", "run_after", "day"),
    [
        pytest.param("UTC", pendulum.datetime(2026, 12, 4, 9, 30), pendulum.date(2026, 12, 3), id="utc"),
        # 01:30 on 4 December in UTC is still 3 December in New York.
        pytest.param(
            "America/New_York",
            pendulum.datetime(2026, 12, 4, 1, 30),
            pendulum.date(2026, 12, 2),
            id="new-york",
        ),
    ],
)
def test_a_run_without_a_data_interval_covers_the_local_day_before_it(timezone, run_after, day):
    window = run_window(
        data_interval_start=None, data_interval_end=None, run_after=run_after, timezone=timezone
    )

    assert window == TimeWindow.for_days(day, day, timezone)
