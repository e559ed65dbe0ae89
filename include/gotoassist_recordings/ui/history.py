"""What the nightly runs did, read from Airflow's metadata database: archived days and last runs.

Two sources, both written by the DAG's ``report_day`` task (see :mod:`gotoassist_recordings.day_report`):

- the events of the asset ``gotoassist_recordings_archived``, one per completely archived window,
  whose ``extra`` holds the run's counts: they give the recordings archived per day;
- the report the task keeps in XCom whatever happened: it gives the counts of failed runs too.

Values that are not what the report writes (an event from elsewhere, an XCom kept by a custom XCom
backend in object storage) are shown as unknown rather than guessed at.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pendulum
from airflow.models.asset import AssetEvent, AssetModel
from airflow.models.dagrun import DagRun
from airflow.models.xcom import XComModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from gotoassist_recordings.day_report import RECORDINGS_ARCHIVED, REPORT_TASK_ID, REPORT_XCOM_KEY

#: The nightly DAG, as ``dags/gotoassist_recordings.py`` names it.
DAG_ID = "gotoassist_recordings"


@dataclass(frozen=True)
class ArchivedWindow:
    """One asset event: a window whose recordings were all archived, with the run's counts."""

    first_day: pendulum.Date
    last_day: pendulum.Date
    counts: Mapping[str, Any]
    announced_at: datetime
    run_id: str | None

    @property
    def archived(self) -> int:
        return self.count("archived")

    def count(self, name: str) -> int:
        """A count of the event's ``extra``; zero when it lacks the count."""
        return _count(self.counts, name) or 0

    @property
    def single_day(self) -> bool:
        return self.first_day == self.last_day


@dataclass(frozen=True)
class RunOutcome:
    """One run of the nightly DAG: its state and times, and the counts its report kept, if any."""

    run_id: str
    run_type: str
    state: str
    logical_date: datetime | None
    data_interval_start: datetime | None
    data_interval_end: datetime | None
    start_date: datetime | None
    end_date: datetime | None
    report: Mapping[str, Any] | None
    announced: bool

    @property
    def duration(self) -> timedelta | None:
        """How long the run took, or has taken so far if it is still running."""
        if self.start_date is None:
            return None
        return (self.end_date or pendulum.now("UTC")) - self.start_date

    @property
    def window(self) -> str:
        """The local days the run covered, from its report, else its data interval in UTC."""
        if self.report and self.report.get("first_day"):
            first, last = self.report["first_day"], self.report.get("last_day")
            zone = self.report.get("timezone") or ""
            days = first if last in (None, first) else f"{first} to {last}"
            return f"{days} {zone}".strip()
        if self.data_interval_start and self.data_interval_end:
            start = pendulum.instance(self.data_interval_start).in_timezone("UTC")
            end = pendulum.instance(self.data_interval_end).in_timezone("UTC")
            return f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
        return ""

    def count(self, name: str) -> int | None:
        """A count of the run's report, or ``None`` when there is no report or it lacks the count."""
        return _count(self.report, name) if self.report else None


def archived_windows(session: Session, *, since: pendulum.Date) -> list[ArchivedWindow]:
    """The asset events of windows that end on or after ``since``, oldest first.

    :param session: a session on Airflow's metadata database.
    :param since: the first day of interest; windows ending before it are left out.
    """
    # An event is recorded after its window ended, so older events cannot concern these days.
    oldest_event = pendulum.datetime(since.year, since.month, since.day, tz="UTC").subtract(days=2)
    rows = session.execute(
        select(AssetEvent.extra, AssetEvent.timestamp, AssetEvent.source_run_id)
        .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
        .where(
            AssetModel.name == RECORDINGS_ARCHIVED.name,
            AssetModel.uri == RECORDINGS_ARCHIVED.uri,
            AssetEvent.timestamp >= oldest_event,
        )
        .order_by(AssetEvent.timestamp)
    ).all()
    windows = []
    for extra, timestamp, run_id in rows:
        first_day, last_day = _day(extra, "first_day"), _day(extra, "last_day")
        if first_day is None or last_day is None or last_day < since:
            continue
        windows.append(ArchivedWindow(first_day, last_day, extra, timestamp, run_id))
    return windows


def last_runs(session: Session, *, limit: int) -> list[RunOutcome]:
    """The latest runs of the nightly DAG, newest first, with the report each kept.

    :param session: a session on Airflow's metadata database.
    :param limit: how many runs to return.
    """
    runs = session.scalars(
        select(DagRun).where(DagRun.dag_id == DAG_ID).order_by(DagRun.run_after.desc()).limit(limit)
    ).all()
    run_ids = [run.run_id for run in runs]
    reports = _reports(session, run_ids)
    announced = set(
        session.scalars(
            select(AssetEvent.source_run_id)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(
                AssetModel.name == RECORDINGS_ARCHIVED.name,
                AssetEvent.source_dag_id == DAG_ID,
                AssetEvent.source_run_id.in_(run_ids),
            )
        )
    )
    return [
        RunOutcome(
            run_id=run.run_id,
            run_type=str(run.run_type),
            state=str(run.state or "none"),
            logical_date=run.logical_date,
            data_interval_start=run.data_interval_start,
            data_interval_end=run.data_interval_end,
            start_date=run.start_date,
            end_date=run.end_date,
            report=reports.get(run.run_id),
            announced=run.run_id in announced,
        )
        for run in runs
    ]


def _reports(session: Session, run_ids: Sequence[str]) -> dict[str, Mapping[str, Any]]:
    rows = session.scalars(
        select(XComModel).where(
            XComModel.dag_id == DAG_ID,
            XComModel.task_id == REPORT_TASK_ID,
            XComModel.key == REPORT_XCOM_KEY,
            XComModel.run_id.in_(run_ids),
        )
    ).all()
    reports = {}
    for row in rows:
        value = XComModel.deserialize_value(row)
        if isinstance(value, Mapping):
            reports[row.run_id] = value
    return reports


def _count(values: Mapping[str, Any] | None, name: str) -> int | None:
    value = values.get(name) if values else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _day(values: Mapping[str, Any], name: str) -> pendulum.Date | None:
    value = values.get(name) if isinstance(values, Mapping) else None
    try:
        return pendulum.Date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
