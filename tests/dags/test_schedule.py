"""The nightly schedule covers whole local days, across daylight-saving changes, with no gap or overlap."""

from __future__ import annotations

import itertools

import pendulum
import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.serialization.encoders import coerce_to_core_timetable
from airflow.timetables.base import DataInterval, TimeRestriction
from tests.conftest import DAGS_FOLDER

from gotoassist_recordings.windows import TimeWindow, run_window


def _nightly_dag(monkeypatch: pytest.MonkeyPatch, timezone: str):
    monkeypatch.setenv("GOTOASSIST_TIMEZONE", timezone)
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert bag.import_errors == {}
    return bag.dags["gotoassist_recordings"]


def _scheduled_windows(dag, first_day: str, runs: int, timezone: str) -> list[TimeWindow]:
    """The windows of consecutive scheduled runs, as the scheduler would create them."""
    timetable = coerce_to_core_timetable(dag.timetable)
    restriction = TimeRestriction(earliest=pendulum.parse(first_day, tz=timezone), latest=None, catchup=True)
    windows, last = [], None
    for _ in range(runs):
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        last = DataInterval(info.data_interval.start, info.data_interval.end)
        windows.append(
            run_window(data_interval_start=last.start, data_interval_end=last.end, timezone=timezone)
        )
    return windows


@pytest.mark.parametrize(
    ("timezone", "first_day", "hours"),
    [
        pytest.param("UTC", "2026-03-27", [24, 24, 24, 24], id="utc"),
        pytest.param("Europe/Berlin", "2026-03-27", [24, 24, 23, 24], id="berlin-spring-forward"),
        pytest.param("Europe/Berlin", "2026-10-23", [24, 24, 25, 24], id="berlin-fall-back"),
        pytest.param("America/New_York", "2026-11-29", [24, 24, 24, 24], id="new-york"),
    ],
)
def test_scheduled_runs_cover_whole_local_days(monkeypatch, timezone, first_day, hours):
    dag = _nightly_dag(monkeypatch, timezone)

    windows = _scheduled_windows(dag, first_day, len(hours), timezone)

    assert [window.seconds / 3600 for window in windows] == hours
    for window in windows:
        local_start = window.start.in_timezone(timezone)
        assert (local_start.hour, local_start.minute, local_start.second) == (0, 0, 0)
    for earlier, later in itertools.pairwise(windows):
        assert earlier.end == later.start


def test_the_window_is_sent_to_the_api_in_utc(monkeypatch):
    dag = _nightly_dag(monkeypatch, "Europe/Berlin")

    (window,) = _scheduled_windows(dag, "2026-11-30", 1, "Europe/Berlin")

    assert window.api_params() == {"fromTime": "2026-11-29T23:00:00Z", "toTime": "2026-11-30T23:00:00Z"}


def test_a_manual_trigger_for_today_covers_yesterday(monkeypatch):
    dag = _nightly_dag(monkeypatch, "UTC")
    timetable = coerce_to_core_timetable(dag.timetable)

    interval = timetable.infer_manual_data_interval(run_after=pendulum.datetime(2026, 12, 4, 9, 30))

    assert (interval.start, interval.end) == (pendulum.datetime(2026, 12, 3), pendulum.datetime(2026, 12, 4))
