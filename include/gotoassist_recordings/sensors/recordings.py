"""Sensor that waits until a chunk of GoToAssist recordings is ready for download."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.sdk import BaseSensorOperator, conf
from airflow.sdk.exceptions import AirflowSensorTimeout

from gotoassist_recordings.models import normalize_recording_ids
from gotoassist_recordings.settings import DEFAULT_CONN_ID

if TYPE_CHECKING:
    from airflow.sdk import Context

    from gotoassist_recordings.hooks.gotoassist import GoToAssistHook
    from gotoassist_recordings.triggers.recordings import GoToAssistRecordingsReadyTrigger

# The hook and the trigger are imported where they are used: the HTTP clients behind them are for
# running tasks, and a DAG file that imports this module is parsed far more often than it runs.

#: The longest wait between two checks in deferrable mode when ``max_wait`` is not set (or
#: ``poke_interval`` if that is longer).
DEFAULT_MAX_POLL_INTERVAL_SECONDS = 900.0
#: How long after the trigger's deadline Airflow itself gives up on the deferral. The trigger sends
#: its own timeout event at the deadline, naming what is still not ready, at most a few minutes late;
#: Airflow's only ends a deferral whose trigger was lost.
DEFERRAL_GRACE = timedelta(minutes=10)


class GoToAssistRecordingsReadySensor(BaseSensorOperator):
    """Wait until every recording of a chunk is ready for download, i.e. transcoded.

    Readiness is read from the download-links call, which only answers for recordings
    that are ready. IDs the API refuses as invalid are not waited for: they can never
    become ready, and the archive step reports them.

    It waits in one of two ways:

    - **deferrable** (``deferrable=True``): one check on the worker; a chunk that is not ready
      yet is handed to :class:`~gotoassist_recordings.triggers.recordings.GoToAssistRecordingsReadyTrigger`
      in Airflow's triggerer, and the worker slot is freed. The trigger checks after
      ``poke_interval`` seconds, then at growing intervals up to ``max_wait`` (default
      :data:`DEFAULT_MAX_POLL_INTERVAL_SECONDS`), until ``timeout`` seconds after the first check.
      This needs a running triggerer (``airflow triggerer``).
    - otherwise: the sensor pokes every ``poke_interval`` seconds in its ``mode``; in
      ``reschedule`` mode the worker slot is free between pokes.

    Either way, recordings still not ready after ``timeout`` seconds fail the task without
    retries (or skip it with ``soft_fail``), naming how many were not ready.

    :param recording_ids: at most 500 recording IDs (templated).
    :param chunk_label: names the chunk, for ``map_index_template`` (templated).
    :param gotoassist_conn_id: the ``gotoassist`` connection (templated).
    :param deferrable: wait in the triggerer rather than on a worker; by default as
        ``[operators] default_deferrable`` says.
    """

    template_fields: Sequence[str] = ("recording_ids", "chunk_label", "gotoassist_conn_id")

    def __init__(
        self,
        *,
        recording_ids: list[str] | str,
        chunk_label: str | None = None,
        gotoassist_conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.recording_ids = recording_ids
        self.chunk_label = chunk_label
        self.gotoassist_conn_id = gotoassist_conn_id
        self.deferrable = deferrable
        if deferrable and self.poke_interval <= 0:
            raise ValueError("A deferrable GoToAssist readiness sensor needs a poke_interval above 0 seconds")

    @cached_property
    def hook(self) -> GoToAssistHook:
        from gotoassist_recordings.hooks.gotoassist import GoToAssistHook

        return GoToAssistHook(gotoassist_conn_id=self.gotoassist_conn_id)

    def execute(self, context: Context) -> None:
        if not self.deferrable:
            super().execute(context)
            return
        if self.poke(context):
            return
        self.defer(
            trigger=self.trigger(pendulum.now("UTC").add(seconds=self.timeout)),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout) + DEFERRAL_GRACE,
        )

    def trigger(self, deadline: pendulum.DateTime) -> GoToAssistRecordingsReadyTrigger:
        """The trigger that waits for this chunk in the triggerer until ``deadline``."""
        from gotoassist_recordings.triggers.recordings import GoToAssistRecordingsReadyTrigger

        max_poll_interval = (
            self.max_wait.total_seconds() if self.max_wait is not None else DEFAULT_MAX_POLL_INTERVAL_SECONDS
        )
        return GoToAssistRecordingsReadyTrigger(
            recording_ids=normalize_recording_ids(self.recording_ids),
            deadline=deadline.in_timezone("UTC").isoformat(),
            gotoassist_conn_id=self.gotoassist_conn_id,
            poll_interval=self.poke_interval,
            max_poll_interval=max(max_poll_interval, self.poke_interval),
            chunk_label=self.chunk_label,
        )

    def poke(self, context: Context) -> bool:
        recording_ids = normalize_recording_ids(self.recording_ids)
        ready, checked = self.hook.ready_recording_ids(recording_ids)
        waiting = len(checked.processed) - len(ready)
        self.log.info(
            "%d of %d recordings ready for download; waiting for %d", len(ready), len(recording_ids), waiting
        )
        if checked.refused:
            self.log.warning(
                "Not waiting for %d recording IDs the API refused as invalid", len(checked.refused)
            )
        return waiting == 0

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> None:
        """Finish the task with the trigger's event, once it is shown to be one for this chunk.

        :raises InvalidTriggerEventError: if the event is not a readiness event for this chunk.
        :raises AirflowSensorTimeout: if the deadline passed with recordings still not ready.
        :raises GoToAssistError: if the trigger could not check readiness.
        """
        from gotoassist_recordings.triggers.recordings import ReadinessEvent

        readiness = ReadinessEvent.from_trigger(event, normalize_recording_ids(self.recording_ids))
        readiness.raise_unless_ready(on_timeout=AirflowSensorTimeout)
        self.log.info("%s", readiness.message)
