"""
### GoToAssist recordings: list, transcode, wait, archive

Every night this DAG takes the GoToAssist Remote Support session recordings of the
previous day (midnight to midnight in the DAG's timezone) through their lifecycle:

1. **resolve_window** decides which start times the run covers: its data interval, or
   the days named in the run's parameters (`first_day`, `last_day`).
2. **list_recordings** lists every recording of that window that is not archived yet,
   narrowing the window wherever a list comes back full (the API returns at most 500
   IDs per list), and cuts the result into chunks of at most 500 IDs. It also sweeps
   the days before the window (`look_back_days`, default 7) for recordings an earlier
   run left ready for download but unarchived, and adds them as chunks of their own.
3. **process_chunk** runs once per chunk: *transcode* asks for transcoding and waits,
   in Airflow's triggerer, until the API reports every recording of the chunk ready for
   download (it is skipped for chunks that were already ready), and *archive* marks them
   archived. When downloads are on, *download* stores every recording's files between
   transcoding and archiving, and a chunk is archived only once all of its files are
   stored and verified.

4. **report_day** runs whatever happened: it logs one line counting what the run listed,
   transcoded and archived, and, only when every chunk was archived, updates the asset
   `gotoassist_recordings_archived` with those counts in the event's `extra`, so other DAGs
   can be scheduled on a completely archived day.

A failure in one chunk stops only that chunk. No recording is archived before the API
reports it ready for download, and every step can be cleared and run again safely.

Settings read from the environment when the DAG is parsed: `GOTOASSIST_TIMEZONE`
(default `UTC`), `GOTOASSIST_CONN_ID` (default `gotoassist_default`),
`GOTOASSIST_READY_POKE_INTERVAL` (seconds from the transcoding request to the first readiness
check, and from the first to the second, default 300), `GOTOASSIST_DEFERRABLE` (default `true`: *transcode*
waits in Airflow's triggerer, which must be running, checking at growing intervals of up to 15
minutes; `false`: for setups without a triggerer, *transcode* only asks, and a task of its own,
*wait_until_ready*, checks every `GOTOASSIST_READY_POKE_INTERVAL` seconds in reschedule mode),
`GOTOASSIST_LOOK_BACK_DAYS` (default of the `look_back_days` parameter, 7),
`GOTOASSIST_API_POOL` (the Airflow pool of the tasks that call the API, default
`gotoassist_api`; create it before the first run) and `GOTOASSIST_DOWNLOAD_TO`
(where to store the recordings' files; unset: no downloads).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import (
    BaseOperator,
    CronDataIntervalTimetable,
    Param,
    TriggerRule,
    chain,
    dag,
    get_current_context,
    task,
    task_group,
)

from gotoassist_recordings.dag_settings import MAX_LOOK_BACK_DAYS, NightlyDagSettings
from gotoassist_recordings.day_report import (
    RECORDINGS_ARCHIVED,
    REPORT_TASK_ID,
    collect_day_report,
    publish_day_report,
)
from gotoassist_recordings.operators.downloads import GoToAssistDownloadRecordingsOperator
from gotoassist_recordings.operators.recordings import (
    GoToAssistArchiveRecordingsOperator,
    GoToAssistListRecordingsOperator,
    GoToAssistTranscodeRecordingsOperator,
)
from gotoassist_recordings.sensors.recordings import GoToAssistRecordingsReadySensor
from gotoassist_recordings.windows import look_back_start, run_window

SETTINGS = NightlyDagSettings.from_environment()
TIMEZONE = SETTINGS.timezone

log = logging.getLogger(__name__)

#: How long a chunk may take to become ready for download before its task fails, naming the rest.
READY_TIMEOUT = timedelta(hours=12)

LIST_DOC = """Lists every not-archived recording of the run's window, narrowing the window wherever a
list comes back full, and returns chunks of at most 500 recording IDs. Its log ends with one line
counting what was listed, in how many chunks and with how many list calls."""
TRANSCODE_DOC = """Asks GoToAssist to transcode this chunk, then waits in Airflow's triggerer, without
holding a worker slot, until the API reports every recording of it ready for download; it gives up
after 12 hours, naming the recordings not ready. When GOTOASSIST_DEFERRABLE is false it only asks, and
wait_until_ready waits. Skipped for chunks that were already ready for download when listed. Harmless
to repeat: clear it at any time."""
WAIT_DOC = """Waits in reschedule mode until the API reports every recording of this chunk ready for
download. Gives up after 12 hours, naming the recordings not ready."""
DOWNLOAD_DOC = """Stores the MP4, events file and thumbnail of every recording of this chunk under
`<destination>/YYYY/MM/DD/<recording ID>/`, verified against the sizes announced. Files already stored
are not fetched again. Fails, naming them, if any recording is not ready or could not be stored; the
chunk is then not archived."""
ARCHIVE_DOC = """Marks this chunk archived, but only the recordings the API reports ready for download;
any others stay unarchived and fail the task, naming them."""
REPORT_DOC = """Runs once the chunks are done, whatever happened to them. Its log line counts what the run
listed, transcoded and archived. Only when every chunk was archived does it succeed and update the
asset `gotoassist_recordings_archived` with those counts; otherwise it fails naming what was left.
After clearing failed chunk tasks, clear this task too (or clear with downstream tasks)."""

_DAY = {"type": ["null", "string"], "format": "date"}
_KEY = {"type": ["null", "string"], "pattern": "^[0-9]+$"}


#: What a manual run may name; any other key in a run's configuration fails the run.
PARAMS = {
    "first_day": Param(None, **_DAY, description="First local day to process instead of the data interval."),
    "last_day": Param(None, **_DAY, description="Last local day to process, inclusive (default: first_day)."),
    "account_key": Param(None, **_KEY, description="accountKey filter (default: the connection's)."),
    "user_key": Param(None, **_KEY, description="userKey filter (default: the connection's)."),
    "company_id": Param(None, **_KEY, description="companyId filter (default: the connection's)."),
    "session_type": Param(
        None, type=["null", "integer"], enum=[None, 0, 1], description="0 attended, 1 unattended."
    ),
    "look_back_days": Param(
        SETTINGS.look_back_days,
        type="integer",
        minimum=0,
        maximum=MAX_LOOK_BACK_DAYS,
        description="Also process what earlier runs left unarchived in this many days before the window.",
    ),
}


@dag(
    dag_id="gotoassist_recordings",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone=TIMEZONE),
    start_date=pendulum.datetime(2026, 1, 1, tz=TIMEZONE),
    catchup=False,
    max_active_runs=4,
    default_args={
        "gotoassist_conn_id": SETTINGS.conn_id,
        # Bounds how many tasks call the API at once; the connection's request budget bounds how fast.
        # The two tasks that do not call it run in the default pool.
        "pool": SETTINGS.api_pool,
        "retries": 3,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": 2.0,
    },
    params=PARAMS,
    tags=["gotoassist", "recordings"],
    doc_md=__doc__,
)
def gotoassist_recordings() -> None:
    # Wrong run parameters do not get better by waiting: fail at once, before anything is listed.
    @task(multiple_outputs=True, retries=0, pool="default_pool")
    def resolve_window() -> dict[str, Any]:
        """Pick the start times this run covers and refuse run parameters it does not know."""
        context = get_current_context()
        params = context["params"]
        # Airflow adds unknown configuration keys to the params, so compare with the declared ones.
        unknown = sorted(set(context["dag_run"].conf or {}) - set(PARAMS))
        if unknown:
            raise ValueError(f"Unknown run parameter(s) {unknown}; known: {sorted(PARAMS)}")
        # A run triggered without a logical date has no data interval: it covers the day before.
        window = run_window(
            data_interval_start=context.get("data_interval_start"),
            data_interval_end=context.get("data_interval_end"),
            run_after=context["dag_run"].run_after,
            timezone=TIMEZONE,
            first_day=params["first_day"],
            last_day=params["last_day"],
        )
        sweep_start = look_back_start(window, params["look_back_days"], TIMEZONE)
        log.info(
            "This run covers recordings that started in %s, and what is left over since %s",
            window,
            sweep_start.isoformat() if sweep_start else "nowhere (no look-back)",
        )
        return {
            "start": window.start.isoformat(),
            "end": window.end.isoformat(),
            "look_back_start": sweep_start.isoformat() if sweep_start else None,
        }

    window = resolve_window()

    list_recordings = GoToAssistListRecordingsOperator(
        task_id="list_recordings",
        doc_md=LIST_DOC,
        window_start=window["start"],
        window_end=window["end"],
        look_back_start=window["look_back_start"],
        account_key="{{ params.account_key or '' }}",
        user_key="{{ params.user_key or '' }}",
        company_id="{{ params.company_id or '' }}",
        session_type="{{ '' if params.session_type is none else params.session_type }}",
    )

    @task_group
    def process_chunk(recording_ids: list[str], already_ready: bool, label: str) -> None:
        """Transcode one chunk, wait until all of it is ready for download, then archive it."""
        # Each mapped task is shown by its chunk's label, e.g. "chunk 3/7 · 500 recordings".
        chunk = {
            "recording_ids": recording_ids,
            "chunk_label": label,
            "map_index_template": "{{ task.chunk_label }}",
        }
        # With a triggerer, transcode waits there and ends there once the chunk is ready: a task
        # instance and a worker run fewer per chunk than a wait task of its own.
        steps: list[BaseOperator] = [
            GoToAssistTranscodeRecordingsOperator(
                task_id="transcode",
                already_ready=already_ready,
                wait_until_ready=SETTINGS.deferrable,
                poll_interval=SETTINGS.ready_poke_interval,
                wait_timeout=READY_TIMEOUT,
                doc_md=TRANSCODE_DOC,
                **chunk,
            )
        ]
        # Chunks that were ready when listed skip transcoding and go on from the next step.
        after_transcode = {"trigger_rule": TriggerRule.NONE_FAILED}
        if not SETTINGS.deferrable:
            steps.append(
                GoToAssistRecordingsReadySensor(
                    task_id="wait_until_ready",
                    # Whatever [operators] default_deferrable says: this is the setup without a triggerer.
                    deferrable=False,
                    mode="reschedule",
                    poke_interval=SETTINGS.ready_poke_interval,
                    timeout=READY_TIMEOUT.total_seconds(),
                    doc_md=WAIT_DOC,
                    **after_transcode,
                    **chunk,
                )
            )
            after_transcode = {}
        if SETTINGS.download_to:
            # Archive only after every file of the chunk is stored: it runs only if download succeeded.
            steps.append(
                GoToAssistDownloadRecordingsOperator(
                    task_id="download",
                    destination=SETTINGS.download_to,
                    timezone=TIMEZONE,
                    doc_md=DOWNLOAD_DOC,
                    **after_transcode,
                    **chunk,
                )
            )
            after_transcode = {}
        steps.append(
            GoToAssistArchiveRecordingsOperator(
                task_id="archive", doc_md=ARCHIVE_DOC, **after_transcode, **chunk
            )
        )
        chain(*steps)

    chunks = process_chunk.expand_kwargs(list_recordings.output)
    chunk_task_ids = [chunk_task.task_id for chunk_task in chunks.iter_tasks()]

    # Runs whatever happened to the chunks, so that every run says what it did to its window.
    @task(
        task_id=REPORT_TASK_ID,
        trigger_rule=TriggerRule.ALL_DONE,
        retries=0,
        pool="default_pool",
        outlets=[RECORDINGS_ARCHIVED],
        doc_md=REPORT_DOC,
    )
    def report_day() -> None:
        """Count what the run did; announce the window archived only when every chunk is."""
        context = get_current_context()
        report = collect_day_report(
            context["ti"],
            window_task_id=window.operator.task_id,
            list_task_id=list_recordings.task_id,
            chunk_task_ids=chunk_task_ids,
            archive_task_id=f"{chunks.group_id}.archive",
            timezone=TIMEZONE,
        )
        publish_day_report(context, report)

    chunks >> report_day()


gotoassist_recordings()
