"""What a run did to its window, for the people reading its log and for the DAGs waiting on it.

The nightly DAG ends with one task that adds up the counts its other tasks left in XCom: the window
from ``resolve_window``, the chunk descriptors and the number of list calls from ``list_recordings``,
and whatever numbers each step of the chunk group returned (``transcode_requested``, ``archived``
and the like, plus the ``refused`` counts a failing step pushes before it fails). The task logs one
summary line, keeps the report in XCom and, only when every chunk of the window was archived, lets
Airflow record an event of the asset :data:`RECORDINGS_ARCHIVED` with the report as its ``extra``.

A failed run therefore never announces its window: the report task fails too, naming what was left,
so the run ends failed. Clearing the failed chunk tasks together with their downstream tasks finishes
the window and, once every chunk is archived, announces it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.sdk import Asset
from pydantic import BaseModel, ConfigDict, Field

from gotoassist_recordings.exceptions import GoToAssistError

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.types import RuntimeTaskInstanceProtocol

log = logging.getLogger(__name__)

#: Updated once per run whose whole window was archived; its ``extra`` is a :class:`DayReport`.
RECORDINGS_ARCHIVED = Asset(
    name="gotoassist_recordings_archived", uri="gotoassist://recordings/archived", group="gotoassist"
)
#: The task of the nightly DAG that writes the report, and the XCom key it keeps the report under.
REPORT_TASK_ID = "report_day"
REPORT_XCOM_KEY = "day_report"
#: XCom keys the operators push next to their return values.
LIST_CALLS_KEY = "list_calls"
REFUSED_KEY = "refused"
#: Counts every report carries, even when no step returned them.
STEP_COUNTS = ("transcode_requested", "archived", REFUSED_KEY)


class DayReport(BaseModel):
    """The counts of one run over its window, as kept in XCom and in the asset event's ``extra``.

    ``listed`` is ``None`` when the listing did not finish; every other count is then zero.
    ``steps`` holds what the chunk steps returned, summed over chunks, e.g. ``transcode_requested``,
    ``archived`` and ``refused``; in ``extra`` these sit beside the other fields.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    window_start: str | None = Field(description="First moment of the window, ISO 8601 in UTC.")
    window_end: str | None = Field(description="End of the window (excluded), ISO 8601 in UTC.")
    first_day: str | None = Field(description="First local day of the window, YYYY-MM-DD.")
    last_day: str | None = Field(description="Last local day of the window, inclusive.")
    timezone: str = Field(description="The DAG's timezone, in which the days are counted.")
    listed: int | None = Field(description="Recordings listed, or None if the listing did not finish.")
    already_ready: int = Field(description="Recordings already ready for download when listed.")
    list_calls: int = Field(description="List calls the listing needed.")
    chunks: int = Field(description="Chunks the listing cut the recordings into.")
    chunks_archived: int = Field(description="Chunks whose archive step succeeded.")
    steps: dict[str, int] = Field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Every recording listed in the window was archived (trivially so when none was listed)."""
        return self.listed is not None and self.chunks_archived == self.chunks

    def as_extra(self) -> dict[str, Any]:
        """Flatten the report into the JSON object kept in XCom and in the asset event's ``extra``."""
        extra = self.model_dump(exclude={"steps"})
        extra.update(self._step_items())
        extra["complete"] = self.complete
        return extra

    def summary(self) -> str:
        """One line a person can read in the task log, whatever happened."""
        window = f"The window {_describe_window(self)}"
        if self.listed is None:
            return f"{window}: the listing did not finish, so no chunk was transcoded or archived"
        counts = ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in self._step_items())
        outcome = (
            "every chunk archived, so the window is announced"
            if self.complete
            else f"{_plural(self.chunks - self.chunks_archived, 'chunk')} not archived, "
            "so the window is not announced"
        )
        listed = f"{_plural(self.listed, 'recording')} listed in {_plural(self.list_calls, 'list call')}"
        chunks = f"cut into {_plural(self.chunks, 'chunk')}"
        return (
            f"{window}: {listed} ({self.already_ready} already ready for download) and {chunks}; "
            f"{self.chunks_archived} of {self.chunks} archived; {counts}; {outcome}"
        )

    def _step_items(self) -> list[tuple[str, int]]:
        named = [(name, self.steps.get(name, 0)) for name in STEP_COUNTS]
        return named + sorted((name, value) for name, value in self.steps.items() if name not in STEP_COUNTS)


def collect_day_report(
    ti: RuntimeTaskInstanceProtocol,
    *,
    window_task_id: str,
    list_task_id: str,
    chunk_task_ids: Iterable[str],
    archive_task_id: str,
    timezone: str,
) -> DayReport:
    """Add up what the run's tasks left in XCom into a :class:`DayReport`.

    :param ti: the running task instance of the report task, to pull XCom with.
    :param window_task_id: the task that returned the window as ``{"start": ..., "end": ...}``.
    :param list_task_id: the task that returned the chunk descriptors and pushed the list calls.
    :param chunk_task_ids: every task of the mapped chunk group; the numbers their results hold
        are summed over chunks, as are the ``refused`` counts they pushed.
    :param archive_task_id: the task whose result marks a chunk archived.
    :param timezone: the DAG's timezone, in which the window's days are named.
    """
    window = _one(ti, window_task_id)
    start = window.get("start") if isinstance(window, Mapping) else None
    end = window.get("end") if isinstance(window, Mapping) else None
    first_day, last_day = _local_days(start, end, timezone)

    chunk_descriptors = _one(ti, list_task_id)
    listed = already_ready = 0
    if isinstance(chunk_descriptors, list):
        for chunk in chunk_descriptors:
            size = len(chunk["recording_ids"])
            listed += size
            already_ready += size if chunk["already_ready"] else 0

    steps: dict[str, int] = {}
    for task_id in chunk_task_ids:
        for result in _all(ti, task_id):
            if isinstance(result, Mapping):
                _add_counts(steps, result)
        for refused in _all(ti, task_id, key=REFUSED_KEY):
            _add_counts(steps, {REFUSED_KEY: refused})

    return DayReport(
        window_start=start,
        window_end=end,
        first_day=first_day,
        last_day=last_day,
        timezone=timezone,
        listed=listed if isinstance(chunk_descriptors, list) else None,
        already_ready=already_ready,
        list_calls=sum(c for c in _all(ti, list_task_id, key=LIST_CALLS_KEY) if isinstance(c, int)),
        chunks=len(chunk_descriptors) if isinstance(chunk_descriptors, list) else 0,
        chunks_archived=sum(1 for result in _all(ti, archive_task_id) if result is not None),
        steps=steps,
    )


def publish_day_report(context: Context, report: DayReport, *, asset: Asset = RECORDINGS_ARCHIVED) -> None:
    """Log and keep the report; announce the window on ``asset`` only if it was archived completely.

    The report is pushed to XCom under :data:`REPORT_XCOM_KEY` whatever happened. The report task
    must declare ``asset`` among its outlets: Airflow records the event, with the ``extra`` set
    here, when the task succeeds.

    :raises GoToAssistError: the window is not completely archived, so the task fails and no
        asset event is recorded.
    """
    extra = report.as_extra()
    log.log(logging.INFO if report.complete else logging.WARNING, "%s", report.summary())
    context["ti"].xcom_push(key=REPORT_XCOM_KEY, value=extra)
    if not report.complete:
        if report.window_start is None:
            # Clearing cannot mend a run whose parameters are wrong: it would fail the same way.
            raise GoToAssistError(
                "The run has no window: resolve_window failed, most likely on the run's parameters "
                f"(its log says why). No {asset.name} asset event is recorded; trigger a new run with "
                "corrected parameters."
            )
        left = (
            "the listing did not finish"
            if report.listed is None
            else f"{report.chunks - report.chunks_archived} of {report.chunks} chunks were not archived"
        )
        raise GoToAssistError(
            f"The window {_describe_window(report)} is not completely archived: {left}. No "
            f"{asset.name} asset event is recorded; clear the failed tasks with their downstream tasks "
            "to finish the window."
        )
    context["outlet_events"][asset].extra = extra


def _one(ti: RuntimeTaskInstanceProtocol, task_id: str) -> Any:
    """The return value of an unmapped task, or ``None`` when it has none (it did not succeed)."""
    values = _all(ti, task_id)
    return values[0] if values else None


def _all(ti: RuntimeTaskInstanceProtocol, task_id: str, *, key: str = "return_value") -> list[Any]:
    """Every value of ``key`` that ``task_id`` left in this run, over all its map indexes."""
    # Asking for a list of task IDs always answers with a list, also for one value or none.
    return [value for value in ti.xcom_pull(task_ids=[task_id], key=key) if value is not None]


def _add_counts(totals: dict[str, int], counts: Mapping[str, Any]) -> None:
    for name, value in counts.items():
        if isinstance(value, int) and not isinstance(value, bool):
            totals[name] = totals.get(name, 0) + value


def _local_days(start: str | None, end: str | None, timezone: str) -> tuple[str | None, str | None]:
    """Name the local days a half-open window covers: its first day and its last, inclusive."""
    if not start or not end:
        return None, None
    first = pendulum.parse(start).in_timezone(timezone)
    last = pendulum.parse(end).in_timezone(timezone).subtract(microseconds=1)
    return first.date().isoformat(), last.date().isoformat()


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _describe_window(report: DayReport) -> str:
    if report.first_day is None:
        return "(unknown: it was never resolved)"
    if report.first_day == report.last_day:
        return f"{report.first_day} ({report.timezone})"
    return f"{report.first_day} to {report.last_day} ({report.timezone})"
