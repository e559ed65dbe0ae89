"""Operator that stores the files of GoToAssist recordings before they are archived."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gotoassist_recordings.downloads import DEFAULT_CHUNK_SIZE, RecordingFileStore
from gotoassist_recordings.exceptions import GoToAssistError
from gotoassist_recordings.models import normalize_recording_ids
from gotoassist_recordings.operators.recordings import _GoToAssistOperator

if TYPE_CHECKING:
    from airflow.sdk import Context, ObjectStoragePath

#: How many recording IDs an error message names before it cuts the list short.
_NAMED_IN_ERRORS = 50


class GoToAssistDownloadRecordingsOperator(_GoToAssistOperator):
    """Store the MP4, events file and thumbnail of every recording of one chunk, verified.

    The download-links call says which recordings are ready and where their files are. Each ready
    recording's files are streamed to ``<destination>/<YYYY>/<MM>/<DD>/<recording ID>/``, checked
    against the sizes announced, and moved to their final names only when whole; files already
    stored are not fetched again (see :mod:`gotoassist_recordings.downloads`).

    The task fails, after storing every recording it can, when any recording of the chunk is not
    ready for download, is refused as invalid, or has a file that could not be stored; the error
    names them. In the nightly DAG the chunk is then not archived, so a retry or a later run picks
    those recordings up again.

    :param recording_ids: at most 500 recording IDs (templated).
    :param destination: the base folder: an absolute path, a ``file:///`` URL or an object-storage
        URL such as ``s3://bucket/prefix`` or ``s3://<conn_id>@bucket/prefix`` (templated).
    :param timezone: the timezone whose calendar dates the folders (templated).
    :param chunk_size: bytes read from the network and written to storage at a time.
    :param gotoassist_conn_id: the ``gotoassist`` connection (templated).
    :return: counts of recordings (``downloaded``, ``already_present``, ``failed``) and of what was
        fetched (``files_downloaded``, ``bytes_downloaded``).
    """

    template_fields: Sequence[str] = (
        "recording_ids",
        "destination",
        "timezone",
        "chunk_label",
        "gotoassist_conn_id",
    )

    def __init__(
        self,
        *,
        recording_ids: list[str] | str,
        destination: str | ObjectStoragePath,
        timezone: str = "UTC",
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1 byte, got {chunk_size}")
        self.recording_ids = recording_ids
        self.destination = destination
        self.timezone = timezone
        self.chunk_size = chunk_size

    def execute(self, context: Context) -> dict[str, int]:
        # Imported here: the HTTP client is for running the task, not for parsing the DAG.
        import requests

        recording_ids = normalize_recording_ids(self.recording_ids)
        store = RecordingFileStore(
            self.hook, self.destination, timezone=self.timezone, chunk_size=self.chunk_size
        )

        links, checked = self.hook.get_download_links(recording_ids)
        ready = {link.recording_id for link in links}
        not_ready = [rid for rid in checked.processed if rid not in ready]

        counts = {"downloaded": 0, "already_present": 0, "files_downloaded": 0, "bytes_downloaded": 0}
        not_stored: list[str] = []
        for link in links:
            # One recording's failure must not keep the others of the chunk from being stored.
            try:
                stored = store.store(link)
            except (GoToAssistError, requests.RequestException, OSError) as error:
                not_stored.append(link.recording_id)
                self.log.warning(
                    "Could not store the files of recording %s: %s", link.recording_id, _describe(error)
                )
                continue
            counts["downloaded" if stored.files_downloaded else "already_present"] += 1
            counts["files_downloaded"] += stored.files_downloaded
            counts["bytes_downloaded"] += stored.bytes_downloaded

        failed = len(not_stored) + len(not_ready) + len(checked.refused)
        self.log.info(
            "Stored the files of %d recordings in %s: %d downloaded, %d already present, %d failed "
            "(%d could not be stored, %d not ready for download, %d refused as invalid); "
            "%d files and %d bytes fetched",
            counts["downloaded"] + counts["already_present"],
            store.destination,
            counts["downloaded"],
            counts["already_present"],
            failed,
            len(not_stored),
            len(not_ready),
            len(checked.refused),
            counts["files_downloaded"],
            counts["bytes_downloaded"],
        )

        problems = [
            f"{len(ids)} {what}: {_named(ids)}"
            for what, ids in (
                ("recordings whose files could not be stored", not_stored),
                ("recordings not ready for download", not_ready),
                ("recording IDs refused as invalid", checked.refused),
            )
            if ids
        ]
        if problems:
            raise GoToAssistError(
                "; ".join(problems) + ". Their files are not all stored, so they must not be archived yet."
            )
        return {**counts, "failed": 0}


def _describe(error: BaseException) -> str:
    """Say why a recording failed, without the link: a pre-signed URL's query is a credential."""
    import requests

    if isinstance(error, requests.RequestException):
        return f"{type(error).__name__} (no attempt succeeded)"
    return str(error)


def _named(recording_ids: list[str]) -> str:
    shown = ", ".join(recording_ids[:_NAMED_IN_ERRORS])
    return f"{shown} …" if len(recording_ids) > _NAMED_IN_ERRORS else shown
