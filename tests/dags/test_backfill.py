"""``airflow backfill create`` makes one run per local day, each covering exactly its day.

The runs are created through the command line as a user would, and read back from the metadata
database; running them is the scheduler's part and is covered by the runs of the DAG elsewhere.
"""

from __future__ import annotations

import contextlib
import itertools
import sqlite3

import pendulum

from gotoassist_recordings.windows import TimeWindow, run_window

TIMEZONE = "Europe/Berlin"


def test_a_backfill_runs_each_local_day_of_the_range_once_across_a_dst_change(airflow_home):
    airflow_home.environment["GOTOASSIST_TIMEZONE"] = TIMEZONE
    reserialized = airflow_home.run("dags", "reserialize")
    assert reserialized.returncode == 0, reserialized.stderr[-2000:]

    # Berlin leaves summer time on 2026-10-25, so the range starts at +02:00 and ends at +01:00.
    created = airflow_home.run(
        "backfill",
        "create",
        "--dag-id",
        "gotoassist_recordings",
        "--from-date",
        "2026-10-24T00:00:00+02:00",
        "--to-date",
        "2026-10-26T00:00:00+01:00",
    )
    assert created.returncode == 0, created.stderr[-2000:]

    with contextlib.closing(sqlite3.connect(airflow_home.path / "airflow.db")) as database:
        rows = database.execute(
            "SELECT data_interval_start, data_interval_end, run_type FROM dag_run "
            "WHERE dag_id = 'gotoassist_recordings' ORDER BY data_interval_start"
        ).fetchall()
    windows = [
        run_window(
            data_interval_start=pendulum.parse(start, tz="UTC"),
            data_interval_end=pendulum.parse(end, tz="UTC"),
            timezone=TIMEZONE,
        )
        for start, end, _ in rows
    ]
    assert {run_type for _, _, run_type in rows} == {"backfill"}
    assert windows == [
        TimeWindow.for_days(pendulum.date(2026, 10, day), pendulum.date(2026, 10, day), TIMEZONE)
        for day in (24, 25, 26)
    ]
    assert [window.seconds // 3600 for window in windows] == [24, 25, 24]
    for earlier, later in itertools.pairwise(windows):
        assert earlier.end == later.start
