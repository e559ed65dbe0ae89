"""The "GoToAssist recordings" page: a FastAPI app that Airflow's api-server mounts.

The page is rendered on the server from Airflow's metadata database (through Airflow's own models and
session) with a Jinja template that escapes everything it is given; its chart is an inline SVG, so
the page fetches nothing, not even from the api-server, once loaded.

Reading it needs what Airflow's own pages need to show the same things: permission to read the
runs of the nightly DAG and to read assets. The Airflow UI embeds the page in an iframe on the same
origin, so the browser sends the UI's session cookie along; a direct request must carry a token like
any API request (``Authorization: Bearer <token>``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated

import pendulum
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import requires_access_asset, requires_access_dag
from fastapi import Depends, FastAPI, Query
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined
from sqlalchemy.orm import Session

from gotoassist_recordings.day_report import RECORDINGS_ARCHIVED
from gotoassist_recordings.ui import PAGE_TITLE
from gotoassist_recordings.ui.chart import BarPoint, lay_out_bars
from gotoassist_recordings.ui.history import (
    DAG_ID,
    ArchivedWindow,
    RunOutcome,
    archived_windows,
    last_runs,
)

#: The counts of a run shown in the table, in order, with their column headings.
RUN_COUNTS = (
    ("listed", "Listed"),
    ("already_ready", "Ready when listed"),
    ("transcode_requested", "Transcode requested"),
    ("archived", "Archived"),
    ("refused", "Refused"),
    ("list_calls", "List calls"),
)

_templates = Environment(
    loader=PackageLoader("gotoassist_recordings.ui", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


#: Shown where a value is unknown (an en dash, as tables print it).
UNKNOWN = "\N{EN DASH}"


def _thousands(value: int | None) -> str:
    return UNKNOWN if value is None else f"{value:,}"


def _moment(value: datetime | None) -> str:
    return UNKNOWN if value is None else f"{pendulum.instance(value).in_timezone('UTC'):%Y-%m-%d %H:%M} UTC"


def _duration(value: timedelta | None) -> str:
    if value is None:
        return UNKNOWN
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


_templates.filters.update(thousands=_thousands, moment=_moment, duration=_duration)

app = FastAPI(title=PAGE_TITLE, docs_url=None, redoc_url=None, openapi_url=None)


@app.get(
    "/",
    response_class=HTMLResponse,
    dependencies=[
        Depends(requires_access_dag("GET", DagAccessEntity.RUN, param_dag_id=DAG_ID)),
        Depends(requires_access_asset("GET")),
    ],
)
def recordings_page(
    session: SessionDep,
    days: Annotated[int, Query(ge=1, le=92, description="Days the chart shows.")] = 14,
    runs: Annotated[int, Query(ge=1, le=200, description="Runs the table lists.")] = 20,
) -> HTMLResponse:
    """Serve the chart of recordings archived per day and the table of the last runs."""
    last_day, first_day = _chart_days(session, days)
    html = render_page(
        windows=archived_windows(session, since=first_day),
        runs=last_runs(session, limit=runs),
        first_day=first_day,
        last_day=last_day,
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


def render_page(
    *,
    windows: Sequence[ArchivedWindow],
    runs: Sequence[RunOutcome],
    first_day: pendulum.Date,
    last_day: pendulum.Date,
) -> str:
    """Render the page; every value, whatever its source, is escaped by the template.

    :param windows: the announced windows, oldest first.
    :param runs: the runs to list, newest first.
    :param first_day: the first day of the chart.
    :param last_day: the last day of the chart.
    """
    points, total = _daily_points(windows, first_day, last_day)
    return _templates.get_template("recordings.html").render(
        title=PAGE_TITLE,
        dag_id=DAG_ID,
        asset=RECORDINGS_ARCHIVED,
        first_day=first_day,
        last_day=last_day,
        chart=lay_out_bars(points),
        days_archived=sum(1 for point in points if point.value is not None),
        total_archived=total,
        longer_windows=[
            w for w in windows if not w.single_day and w.last_day >= first_day and w.first_day <= last_day
        ],
        runs=runs,
        run_counts=RUN_COUNTS,
    )


def _chart_days(session: Session, days: int) -> tuple[pendulum.Date, pendulum.Date]:
    """The last and first day of the chart: it ends yesterday (UTC), or on a later announced day."""
    yesterday = pendulum.now("UTC").subtract(days=1).date()
    recent = archived_windows(session, since=yesterday)
    last_day = max([yesterday, *(window.last_day for window in recent)])
    return last_day, last_day.subtract(days=days - 1)


def _daily_points(
    windows: Sequence[ArchivedWindow], first_day: pendulum.Date, last_day: pendulum.Date
) -> tuple[list[BarPoint], int]:
    """One bar per day: the recordings archived by the run that announced that single day.

    A day announced by several runs (run again, or run by hand beside the nightly run) shows the run
    that archived the most: runs of one day list and archive the same recordings, so their counts
    overlap and a sum would count recordings twice. Windows of several days (manual runs) cannot be
    split by day; the page lists them apart.

    :return: the bars, and the recordings archived over all of them.
    """
    by_day: dict[pendulum.Date, list[ArchivedWindow]] = defaultdict(list)
    for window in windows:
        if window.single_day:
            by_day[window.first_day].append(window)

    points, total = [], 0
    for day in pendulum.interval(first_day, last_day).range("days"):
        announced = by_day.get(day, [])
        key, label = day.isoformat(), f"{day:%m-%d}"
        if not announced:
            points.append(BarPoint(key, label, None, f"{key}: not announced (no completely archived run)"))
            continue
        best = max(announced, key=lambda window: window.archived)
        total += best.archived
        more = len(announced) - 1
        others = f"; {more} more run{'s' if more > 1 else ''} announced the day too" if more else ""
        points.append(
            BarPoint(
                key,
                label,
                best.archived,
                f"{key}: {best.archived:,} recordings archived ({best.count('transcode_requested'):,} "
                f"sent for transcoding, {best.count('already_ready'):,} ready when listed){others}",
            )
        )
    return points, total
