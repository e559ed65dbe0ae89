"""Storing the files of ready recordings, verified, in folders by date, in any Airflow object storage.

Each recording has three files behind its download links: the MP4 recording, the session events and a
thumbnail. They are stored under a destination folder, which may be any
:class:`~airflow.sdk.ObjectStoragePath` (a local folder, ``s3://``, ``gs://``... through their
providers), as::

    <destination>/<YYYY>/<MM>/<DD>/<recording ID>/recording.mp4
                                                 /events.json
                                                 /thumbnail.png

The date is the day the recording started, in the timezone given (the nightly DAG passes its own, so
one night's run fills one day's folder). The events file and the thumbnail keep the extension of their
link's path (``.json`` and ``.png`` with the local API server), or none if the path has none.

How a file is stored:

- its body is streamed in chunks of ``chunk_size`` bytes from the network to storage, so memory use does
  not grow with the file (object-store writers buffer up to one upload part, their block size);
- it is written under a temporary name in its final folder, ``<name>.partial-<random hex>``, and only
  moved to its final name once it is verified: as many bytes as ``Content-Length`` announced (when the
  server sent one) and, for the MP4, exactly the ``recordingSize`` the download-links call advertised.
  On a local file system the move is a rename, which is atomic. On object stores a move is a copy
  followed by a delete of the temporary object; objects appear whole or not at all, so the final name
  still never holds a partial file, but the move costs a server-side copy, and a worker that dies
  between copy and delete leaves the temporary object behind;
- a file that fails is removed from its temporary name, so nothing half-written stays under any name,
  except where the worker itself dies mid-file: then a ``*.partial-*`` file is left, never taken for a
  stored file and safe to delete;
- a file already under its final name is not fetched again: only verified files ever get that name,
  and the MP4's size is compared with ``recordingSize`` once more (it is fetched again if it differs).
  So a rerun downloads nothing that is already stored.

Dropped connections, timeouts, answers cut short, HTTP 429 and 5xx are retried under the hook's
:class:`~gotoassist_recordings.retries.RetryPolicy`, each retry starting the file afresh. A size that
differs from the advertised one is not retried within the task (see
:class:`~gotoassist_recordings.exceptions.RecordingFileSizeError`).
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pendulum

from gotoassist_recordings.exceptions import (
    GoToAssistConfigError,
    IncompleteDownloadError,
    RecordingFileSizeError,
)
from gotoassist_recordings.models import DownloadLinks

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

    from gotoassist_recordings.hooks.gotoassist import GoToAssistHook

log = logging.getLogger(__name__)

#: Bytes read from the network and written to storage at a time.
DEFAULT_CHUNK_SIZE = 1024 * 1024
#: What a temporary name adds to the final one, before a random part.
PARTIAL_MARKER = ".partial-"
#: The name of the stored MP4 in its recording's folder.
RECORDING_FILE_NAME = "recording.mp4"

_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,8}")


@dataclass(frozen=True)
class RecordingFile:
    """One file of a recording to store.

    :param url: where the download-links call says it is.
    :param name: its name in the recording's folder.
    :param expected_size: the size the API advertised, if it did (only the MP4's is known).
    """

    url: str
    name: str
    expected_size: int | None = None


@dataclass
class StoredRecording:
    """What storing one recording's files did.

    :param recording_id: the recording.
    :param folder: where its files are.
    :param files_downloaded: files fetched and stored now.
    :param files_present: files found already stored and left as they were.
    :param bytes_downloaded: the bytes fetched now.
    """

    recording_id: str
    folder: str
    files_downloaded: int = 0
    files_present: int = 0
    bytes_downloaded: int = 0


def check_destination(text: str, *, allow_empty: bool = False, name: str = "The download destination") -> str:
    """Check a destination setting without touching the storage (it may be read when a DAG is parsed).

    :param text: an absolute local path (``/data/recordings``), a ``file:///`` URL, or an
        object-storage URL (``s3://bucket/prefix``, ``s3://<conn_id>@bucket/prefix``...).
    :param allow_empty: accept an empty setting, which means no downloads.
    :param name: what error messages call the setting, e.g. the environment variable it came from.
    :return: the setting, without surrounding blanks.
    :raises GoToAssistConfigError: if it is empty (unless allowed) or a relative local path, which
        would depend on whichever directory a worker happens to run in.
    """
    text = (text or "").strip()
    if not text:
        if allow_empty:
            return ""
        raise GoToAssistConfigError(f"{name} is empty; give a folder or a storage URL")
    parts = urlsplit(text)
    # ``file://folder`` names a host, not a folder, and would be read relative to the current directory.
    local_but_not_absolute = (parts.scheme == "" and not text.startswith("/")) or (
        parts.scheme == "file" and (parts.netloc not in ("", "localhost") or not parts.path.startswith("/"))
    )
    if local_but_not_absolute:
        raise GoToAssistConfigError(
            f"{name} {text!r} is not an absolute path; give one (/data/recordings), "
            "a file:/// URL or an object-storage URL"
        )
    if parts.scheme not in ("", "file"):
        _check_storage_installed(parts.scheme, text, name)
    return text


def _check_storage_installed(scheme: str, text: str, name: str) -> None:
    """Refuse a storage URL no installed file system can write to, before a night is spent on it.

    Only the file system's class is looked up, so nothing connects anywhere.
    """
    import fsspec

    try:
        fsspec.get_filesystem_class(scheme)
        return
    except (ValueError, ImportError) as error:
        problem = str(error)
    # Airflow's providers may bring file systems fsspec does not know by itself.
    from airflow.sdk.io.fs import has_fs

    if not has_fs(scheme):
        raise GoToAssistConfigError(
            f"{name} {text!r}: no installed file system stores {scheme}:// URLs ({problem})"
        )


def destination_path(destination: str | ObjectStoragePath) -> ObjectStoragePath:
    """Turn a destination setting into the folder to store recordings in.

    :param destination: a setting as :func:`check_destination` accepts it, or a path already.
    :raises GoToAssistConfigError: if :func:`check_destination` refuses it.
    """
    # Imported here, as object storage is only touched when files are stored: the nightly DAG
    # calls check_destination each time it is parsed.
    from airflow.sdk import ObjectStoragePath

    if isinstance(destination, ObjectStoragePath):
        return destination
    return ObjectStoragePath(check_destination(str(destination or "")))


def recording_folder(
    destination: ObjectStoragePath, links: DownloadLinks, timezone: str = "UTC"
) -> ObjectStoragePath:
    """Return the folder of one recording: ``<destination>/<YYYY>/<MM>/<DD>/<recording ID>``.

    :param destination: the base folder.
    :param links: the recording's download links, which carry its start time.
    :param timezone: the timezone whose calendar dates the folders.
    """
    started = links.recording_start_time.in_timezone(timezone)
    return (
        destination
        / f"{started.year:04d}"
        / f"{started.month:02d}"
        / f"{started.day:02d}"
        / links.recording_id
    )


def recording_files(links: DownloadLinks) -> list[RecordingFile]:
    """List the files of a recording in the order they are stored: the MP4 first."""
    return [
        RecordingFile(links.recording_url, RECORDING_FILE_NAME, links.recording_size),
        RecordingFile(links.events_url, _file_name("events", links.events_url)),
        RecordingFile(links.thumbnail_url, _file_name("thumbnail", links.thumbnail_url)),
    ]


def _file_name(stem: str, url: str) -> str:
    suffix = PurePosixPath(urlsplit(url).path).suffix
    return f"{stem}{suffix.lower()}" if _EXTENSION.fullmatch(suffix) else stem


class RecordingFileStore:
    """Stores the files of ready recordings under one destination folder.

    :param hook: the hook whose HTTP session, timeout, access tokens and retry policy the downloads use.
    :param destination: the base folder.
    :param timezone: the timezone whose calendar dates the folders.
    :param chunk_size: bytes read from the network and written to storage at a time.
    """

    def __init__(
        self,
        hook: GoToAssistHook,
        destination: str | ObjectStoragePath,
        *,
        timezone: str = "UTC",
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1 byte, got {chunk_size}")
        try:
            pendulum.timezone(timezone)
        except Exception as error:
            raise GoToAssistConfigError(f"Unknown timezone {timezone!r} for the download folders") from error
        self.hook = hook
        self.destination = destination_path(destination)
        self.timezone = timezone
        self.chunk_size = chunk_size
        self.log = hook.log

    def store(self, links: DownloadLinks) -> StoredRecording:
        """Store every file of one ready recording that is not stored yet.

        Files are stored one after the other, the MP4 first; the first that fails ends the
        recording's turn, and the files stored before it stay.

        :param links: the recording's download links.
        :return: what was fetched and what was already there.
        :raises RecordingFileSizeError: if the MP4 is not the advertised size.
        :raises GoToAssistError: if a file cannot be fetched (after retries, where retrying may help).
        :raises requests.RequestException: if the transfer fails for good.
        :raises OSError: if the storage refuses a write or a move.
        """
        folder = recording_folder(self.destination, links, self.timezone)
        stored = StoredRecording(links.recording_id, str(folder))
        if self.destination.protocol in ("", "file"):
            # Object stores have no folders to create; a local disk needs them before a file is opened.
            folder.mkdir(parents=True, exist_ok=True)
        for file in recording_files(links):
            target = folder / file.name
            if self._is_stored(target, file):
                stored.files_present += 1
                continue
            stored.bytes_downloaded += self._download(file, target, links.recording_id)
            stored.files_downloaded += 1
        return stored

    def _is_stored(self, target: ObjectStoragePath, file: RecordingFile) -> bool:
        """Tell whether a file is under its final name already, and still of the advertised size."""
        try:
            size = target.size()
        except FileNotFoundError:
            return False
        if file.expected_size is None or size == file.expected_size:
            return True
        self.log.warning(
            "%s holds %d bytes but the API advertises %d; fetching it again", target, size, file.expected_size
        )
        return False

    def _download(self, file: RecordingFile, target: ObjectStoragePath, recording_id: str) -> int:
        what = f"download of {file.name} of recording {recording_id}"
        return self.hook.retry_policy.call(what, lambda: self._download_once(file, target), self.log)

    def _download_once(self, file: RecordingFile, target: ObjectStoragePath) -> int:
        """Fetch a file to a temporary name, verify it and move it to its final name.

        :return: the bytes stored.
        """
        partial = target.parent / f"{target.name}{PARTIAL_MARKER}{secrets.token_hex(6)}"
        try:
            with self.hook.open_file(file.url) as response:
                announced = _content_length(response.headers.get("Content-Length"))
                written = 0
                with partial.open("wb") as out:
                    for chunk in response.iter_content(chunk_size=self.chunk_size):
                        out.write(chunk)
                        written += len(chunk)
                # Content-Length counts the bytes on the wire, which differ from those written only if
                # the server encoded the body although it was asked not to.
                received = response.raw.tell()
            if announced is not None and received != announced:
                raise IncompleteDownloadError(
                    f"{file.name} ended after {received} of the {announced} bytes its Content-Length "
                    "announced"
                )
            if file.expected_size is not None and written != file.expected_size:
                raise RecordingFileSizeError(
                    f"{file.name} has {written} bytes, but the API advertised {file.expected_size}; "
                    "it was not stored"
                )
            kept = partial.size()
            if kept != written:
                raise OSError(f"the storage kept {kept} of the {written} bytes written to {partial}")
            partial.move(target)
        except BaseException:
            _remove_quietly(partial)
            raise
        return written


def _content_length(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def _remove_quietly(partial: ObjectStoragePath) -> None:
    """Remove a temporary file after a failure, without hiding the failure if that fails too."""
    try:
        partial.unlink(missing_ok=True)
    except Exception:
        log.warning("Could not remove the temporary file %s", partial, exc_info=True)
