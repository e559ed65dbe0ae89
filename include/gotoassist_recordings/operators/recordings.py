"""Operators that list, transcode and archive GoToAssist session recordings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.sdk import BaseOperator, conf
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from pydantic import ValidationError

from gotoassist_recordings.api import ChunkOutcome
from gotoassist_recordings.day_report import LIST_CALLS_KEY, REFUSED_KEY
from gotoassist_recordings.exceptions import GoToAssistConfigError, GoToAssistError, RecordingsRefusedError
from gotoassist_recordings.models import (
    MAX_IDS_PER_CALL,
    RecordingFilter,
    describe_problems,
    normalize_recording_ids,
    split_into_chunks,
)
from gotoassist_recordings.sensors.recordings import DEFAULT_MAX_POLL_INTERVAL_SECONDS, DEFERRAL_GRACE
from gotoassist_recordings.settings import DEFAULT_CONN_ID
from gotoassist_recordings.windows import TimeWindow

if TYPE_CHECKING:
    from airflow.sdk import Context

    from gotoassist_recordings.hooks.gotoassist import GoToAssistHook
    from gotoassist_recordings.triggers.recordings import GoToAssistRecordingsReadyTrigger


class _GoToAssistOperator(BaseOperator):
    """Shared plumbing: the connection ID, a hook created on first use, and a chunk's label.

    :param chunk_label: names the chunk a mapped task works on, for ``map_index_template``
        (templated).
    """

    def __init__(
        self,
        *,
        gotoassist_conn_id: str = DEFAULT_CONN_ID,
        chunk_label: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.gotoassist_conn_id = gotoassist_conn_id
        self.chunk_label = chunk_label

    @cached_property
    def hook(self) -> GoToAssistHook:
        # Imported here: the HTTP clients behind the hook are for running tasks, and a DAG file that
        # imports this module is parsed far more often than it runs.
        from gotoassist_recordings.hooks.gotoassist import GoToAssistHook

        return GoToAssistHook(gotoassist_conn_id=self.gotoassist_conn_id)


class GoToAssistListRecordingsOperator(_GoToAssistOperator):
    """List every not-archived recording of a time window and cut it into chunks.

    Returns a list of chunk descriptors, ready for ``expand_kwargs``:
    ``{"recording_ids": [...], "already_ready": bool, "label": str}`` with at most
    ``chunk_size`` IDs each. Recordings still to be transcoded come first; ``already_ready``
    marks chunks the API already reported ready for download, which need no transcoding;
    ``label`` names the chunk for people, e.g. ``chunk 3/7 · 500 recordings``. The number of list
    calls is pushed to XCom under ``list_calls``, for the run's report.

    With ``look_back_start``, the stretch from there to ``window_start`` is listed too: its
    recordings that are ready for download but not archived (left over by earlier runs,
    for example because transcoding took longer than their run waited) are archived in
    chunks of their own, labelled as left over. Recordings there that are not transcoded
    yet are left alone and counted in a warning.

    :param window_start: first moment of the window, inclusive (templated).
    :param window_end: end of the window, exclusive (templated).
    :param look_back_start: where the sweep for left-over recordings starts; it ends at
        ``window_start``. Empty or ``None`` for no sweep (templated).
    :param account_key: accountKey filter; unset keys come from the connection (templated).
    :param user_key: userKey filter (templated).
    :param company_id: companyId filter (templated).
    :param session_type: 0 for attended, 1 for unattended sessions, unset for both (templated).
    :param chunk_size: recording IDs per chunk, at most 500.
    :param gotoassist_conn_id: the ``gotoassist`` connection (templated).
    """

    template_fields: Sequence[str] = (
        "window_start",
        "window_end",
        "look_back_start",
        "account_key",
        "user_key",
        "company_id",
        "session_type",
        "gotoassist_conn_id",
    )

    def __init__(
        self,
        *,
        window_start: str | datetime,
        window_end: str | datetime,
        look_back_start: str | datetime | None = None,
        account_key: str | int | None = None,
        user_key: str | int | None = None,
        company_id: str | int | None = None,
        session_type: int | str | None = None,
        chunk_size: int = MAX_IDS_PER_CALL,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 1 <= chunk_size <= MAX_IDS_PER_CALL:
            raise ValueError(f"chunk_size must be between 1 and {MAX_IDS_PER_CALL}, got {chunk_size}")
        self.window_start = window_start
        self.window_end = window_end
        self.look_back_start = look_back_start
        self.account_key = account_key
        self.user_key = user_key
        self.company_id = company_id
        self.session_type = session_type
        self.chunk_size = chunk_size

    def execute(self, context: Context) -> list[dict[str, Any]]:
        window = TimeWindow(
            _moment(self.window_start, "window_start"), _moment(self.window_end, "window_end")
        )
        look_back = self._look_back(window)
        recording_filter = self._filter()
        listed = self.hook.list_all_recordings(window, recording_filter)
        batches = [
            _Batch(listed.ready_for_transcode, already_ready=False),
            _Batch(listed.ready_for_download, already_ready=True),
        ]
        summary = (
            f"Listed {listed.total} recordings that started in {window}: "
            f"{len(listed.ready_for_transcode)} to transcode, "
            f"{len(listed.ready_for_download)} already ready for download"
        )
        list_calls = listed.list_calls

        if look_back is not None:
            left_over = self.hook.list_all_recordings(look_back, recording_filter)
            batches.append(_Batch(left_over.ready_for_download, already_ready=True, left_over=True))
            summary += (
                f"; {len(left_over.ready_for_download)} left ready for download but unarchived in {look_back}"
            )
            list_calls += left_over.list_calls
            if left_over.ready_for_transcode:
                self.log.warning(
                    "%d recordings of the look-back days %s are not transcoded yet; they are left "
                    "alone (still transcoding, or their own day's run did not reach them: run that "
                    "day again to have them transcoded)",
                    len(left_over.ready_for_transcode),
                    look_back,
                )

        chunks = [
            (chunk, batch)
            for batch in batches
            for chunk in split_into_chunks(batch.recording_ids, self.chunk_size)
        ]
        _check_map_length(len(chunks), self.chunk_size)
        self.log.info("%s; %d chunks, %d list calls", summary, len(chunks), list_calls)
        _push_count(context, LIST_CALLS_KEY, list_calls)
        return [
            {
                "recording_ids": chunk,
                "already_ready": batch.already_ready,
                "label": _chunk_label(number, len(chunks), len(chunk), batch),
            }
            for number, (chunk, batch) in enumerate(chunks, start=1)
        ]

    def _look_back(self, window: TimeWindow) -> TimeWindow | None:
        if self.look_back_start in (None, ""):
            return None
        start = _moment(self.look_back_start, "look_back_start")
        if start >= window.start:
            raise GoToAssistConfigError(
                f"look_back_start {start.isoformat()} must be before window_start {window.start.isoformat()}"
            )
        return TimeWindow(start, window.start)

    def _filter(self) -> RecordingFilter:
        session_type = self.session_type
        if isinstance(session_type, str) and session_type.strip().isdigit():
            session_type = int(session_type)
        try:
            return RecordingFilter(
                account_key=self.account_key or None,
                user_key=self.user_key or None,
                company_id=self.company_id or None,
                session_type=None if session_type in (None, "") else session_type,
            )
        except ValidationError as error:
            raise GoToAssistConfigError(
                f"Invalid recording filter ({describe_problems(error, whole='filter')})"
            ) from None


class GoToAssistTranscodeRecordingsOperator(_GoToAssistOperator):
    """Ask GoToAssist to transcode one chunk of recordings, and optionally wait until it is done.

    Transcoding a recording that is already transcoded is harmless, so the task can be
    cleared and run again at any time.

    With ``wait_until_ready``, the task then defers to
    :class:`~gotoassist_recordings.triggers.recordings.GoToAssistRecordingsReadyTrigger`, which
    checks the chunk ``poll_interval`` seconds later and then at growing intervals of up to
    ``max_poll_interval``, and ends the task in Airflow's triggerer once every recording is ready
    for download: no worker slot is held while GoToAssist transcodes, and the task does not come
    back to a worker just to succeed. This needs a running triggerer; where there is none, follow
    the task with :class:`~gotoassist_recordings.sensors.recordings.GoToAssistRecordingsReadySensor`
    in reschedule mode instead. Recordings still not ready after ``wait_timeout`` fail the task
    without retries, naming them.

    :param recording_ids: at most 500 recording IDs (templated).
    :param already_ready: the chunk was ready for download when it was listed; the task is
        then skipped, which shows in the UI that the chunk went straight to archiving (templated,
        so it can come from the list step's chunk descriptors).
    :param wait_until_ready: wait in the triggerer until the chunk is ready for download.
    :param poll_interval: seconds from the request to the first readiness check, and between the
        first two checks.
    :param max_poll_interval: the longest wait between two checks, in seconds.
    :param wait_timeout: how long to wait for readiness.
    :param gotoassist_conn_id: the ``gotoassist`` connection (templated).
    """

    template_fields: Sequence[str] = ("recording_ids", "already_ready", "chunk_label", "gotoassist_conn_id")

    def __init__(
        self,
        *,
        recording_ids: list[str] | str,
        already_ready: bool = False,
        wait_until_ready: bool = False,
        poll_interval: float = 60.0,
        max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL_SECONDS,
        wait_timeout: timedelta = timedelta(hours=12),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if wait_until_ready and not poll_interval > 0:
            raise ValueError(f"Waiting until ready needs a poll_interval above 0 s, got {poll_interval}")
        self.recording_ids = recording_ids
        self.already_ready = already_ready
        self.wait_until_ready = wait_until_ready
        self.poll_interval = poll_interval
        self.max_poll_interval = max(max_poll_interval, poll_interval)
        self.wait_timeout = wait_timeout

    def execute(self, context: Context) -> dict[str, int]:
        if not isinstance(self.already_ready, bool):
            raise GoToAssistConfigError(f"already_ready must be true or false, got {self.already_ready!r}")
        if self.already_ready:
            raise AirflowSkipException("The chunk was already ready for download when listed")
        outcome = self.hook.transcode_recordings(self.recording_ids)
        self.log.info(
            "Transcoding requested for %d recordings; %d refused",
            len(outcome.processed),
            len(outcome.refused),
        )
        _fail_on_refused(context, "transcode", outcome)
        result = {"transcode_requested": len(outcome.processed)}
        if self.wait_until_ready:
            self.defer(
                trigger=self.readiness_trigger(result),
                method_name="execute_complete",
                timeout=self.wait_timeout + DEFERRAL_GRACE,
            )
        return result

    def readiness_trigger(self, result: dict[str, int]) -> GoToAssistRecordingsReadyTrigger:
        """The trigger that waits for this chunk and ends the task with ``result`` once it is ready."""
        from gotoassist_recordings.triggers.recordings import GoToAssistRecordingsReadyTrigger

        return GoToAssistRecordingsReadyTrigger(
            recording_ids=normalize_recording_ids(self.recording_ids),
            deadline=pendulum.now("UTC").add(seconds=self.wait_timeout.total_seconds()).isoformat(),
            gotoassist_conn_id=self.gotoassist_conn_id,
            poll_interval=self.poll_interval,
            max_poll_interval=self.max_poll_interval,
            chunk_label=self.chunk_label,
            # Just asked for: checking at once could only find the chunk still transcoding.
            first_check_delay=self.poll_interval,
            end_task_when_ready=True,
            return_value=result,
        )

    def execute_complete(self, context: Context, event: Any = None) -> dict[str, int]:
        """Finish the task when the trigger resumes it, which it does when waiting failed.

        :raises InvalidTriggerEventError: if the event is not a readiness event for this chunk.
        :raises AirflowFailException: if the deadline passed with recordings still not ready.
        :raises GoToAssistError: if the trigger could not check readiness.
        """
        from gotoassist_recordings.triggers.recordings import ReadinessEvent

        recording_ids = normalize_recording_ids(self.recording_ids)
        # The triggerer ends a task whose chunk is ready without resuming it; a runner that resumes
        # it all the same (``airflow dags test``) passes the state the trigger ended it with.
        if event != "success":
            readiness = ReadinessEvent.from_trigger(event, recording_ids)
            readiness.raise_unless_ready(on_timeout=AirflowFailException)
            self.log.info("%s", readiness.message)
        # Any refused ID failed the task before it waited, so every ID was sent for transcoding.
        return {"transcode_requested": len(recording_ids)}


class GoToAssistArchiveRecordingsOperator(_GoToAssistOperator):
    """Mark one chunk of recordings archived, but only those the API reports ready for download.

    Archiving hides a recording from every later listing, so archiving one that is not
    transcoded yet would lose it. Before archiving, the operator asks the download-links
    call which recordings are ready; any that are not stay unarchived and fail the task.

    :param recording_ids: at most 500 recording IDs (templated).
    :param require_ready: check readiness before archiving. Turn off only when another
        step has just verified every recording (for example after storing its files).
    :param gotoassist_conn_id: the ``gotoassist`` connection (templated).
    """

    template_fields: Sequence[str] = ("recording_ids", "chunk_label", "gotoassist_conn_id")

    def __init__(self, *, recording_ids: list[str] | str, require_ready: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.recording_ids = recording_ids
        self.require_ready = require_ready

    def execute(self, context: Context) -> dict[str, int]:
        recording_ids = normalize_recording_ids(self.recording_ids)
        refused: list[str] = []
        not_ready: list[str] = []
        if self.require_ready:
            ready, checked = self.hook.ready_recording_ids(recording_ids)
            refused.extend(checked.refused)
            not_ready = [rid for rid in checked.processed if rid not in ready]
            recording_ids = [rid for rid in recording_ids if rid in ready]

        outcome = self.hook.archive_recordings(recording_ids)
        refused.extend(outcome.refused)
        self.log.info(
            "Archived %d recordings; %d not ready for download left unarchived; %d refused",
            len(outcome.processed),
            len(not_ready),
            len(refused),
        )

        if not_ready:
            raise GoToAssistError(
                f"{len(not_ready)} recordings are not ready for download and were left unarchived: "
                f"{', '.join(not_ready[:50])}{' …' if len(not_ready) > 50 else ''}"
            )
        _fail_on_refused(context, "archive", ChunkOutcome(outcome.processed, refused))
        return {"archived": len(outcome.processed)}


def _fail_on_refused(context: Context, call: str, outcome: ChunkOutcome) -> None:
    """Fail naming the refused IDs, after leaving their number in XCom for the run's report."""
    if outcome.refused:
        _push_count(context, REFUSED_KEY, len(outcome.refused))
        raise RecordingsRefusedError(call, outcome.refused)


def _push_count(context: Context, key: str, value: int) -> None:
    """Leave a count in XCom for the run's report.

    ``execute`` called outside a task run has no task instance; the count is then only in the log.
    """
    if (ti := context.get("ti")) is not None:
        ti.xcom_push(key=key, value=value)


def _moment(value: str | datetime, name: str) -> pendulum.DateTime:
    """Parse a templated window bound, naming the argument when it is not a date and time."""
    if isinstance(value, datetime):
        return pendulum.instance(value)
    try:
        parsed = pendulum.parse(str(value))
    except (ValueError, TypeError):
        parsed = None
    if not isinstance(parsed, pendulum.DateTime):
        raise GoToAssistConfigError(f"{name} must be a date and time with its timezone, got {value!r}")
    return parsed


def _check_map_length(chunks: int, chunk_size: int) -> None:
    """Fail clearly rather than let Airflow fail the run on more chunks than ``max_map_length``."""
    limit = conf.getint("core", "max_map_length")
    if chunks > limit:
        raise GoToAssistError(
            f"The window holds {chunks} chunks of up to {chunk_size} recordings, more than Airflow's "
            f"[core] max_map_length of {limit}. Raise max_map_length (AIRFLOW__CORE__MAX_MAP_LENGTH) "
            "or process the window in shorter runs; nothing was transcoded or archived."
        )


@dataclass(frozen=True)
class _Batch:
    """Recordings listed together that share what is left to do, before they are cut into chunks."""

    recording_ids: list[str]
    already_ready: bool
    left_over: bool = False


def _chunk_label(number: int, total: int, size: int, batch: _Batch) -> str:
    """Name a chunk for the Airflow UI, e.g. ``chunk 3/7 · 500 recordings · ready when listed``."""
    notes = [f"chunk {number}/{total}", f"{size} recordings"]
    if batch.already_ready:
        notes.append("ready when listed")
    if batch.left_over:
        notes.append("left over from earlier days")
    return " · ".join(notes)
