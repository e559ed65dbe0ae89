"""Sensor that waits until a chunk of GoToAssist recordings is ready for download."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator

from gotoassist_recordings.hooks.gotoassist import GoToAssistHook
from gotoassist_recordings.models import normalize_recording_ids

if TYPE_CHECKING:
    from airflow.sdk import Context


class GoToAssistRecordingsReadySensor(BaseSensorOperator):
    """Wait until every recording of a chunk is ready for download, i.e. transcoded.

    Readiness is read from the download-links call, which only answers for recordings
    that are ready. IDs the API refuses as invalid are not waited for: they can never
    become ready, and the archive step reports them.

    :param recording_ids: at most 500 recording IDs (templated).
    :param chunk_label: names the chunk, for ``map_index_template`` (templated).
    :param gotoassist_conn_id: the ``gotoassist`` connection (templated).
    """

    template_fields: Sequence[str] = ("recording_ids", "chunk_label", "gotoassist_conn_id")

    def __init__(
        self,
        *,
        recording_ids: list[str] | str,
        chunk_label: str | None = None,
        gotoassist_conn_id: str = GoToAssistHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.recording_ids = recording_ids
        self.chunk_label = chunk_label
        self.gotoassist_conn_id = gotoassist_conn_id

    @cached_property
    def hook(self) -> GoToAssistHook:
        return GoToAssistHook(gotoassist_conn_id=self.gotoassist_conn_id)

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
