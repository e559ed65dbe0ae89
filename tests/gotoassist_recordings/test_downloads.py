"""Storing recordings' files from the local API server over real HTTP into a local folder.

The server's files are deterministic (:mod:`gotoassist_api_server.media`), so every stored file is
compared byte for byte with what the server serves; its call log shows which files were fetched.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from tests.gotoassist_recordings.conftest import RecordingProxy

from gotoassist_api_server.media import events_json, recording_mp4, thumbnail_png
from gotoassist_recordings.downloads import (
    RecordingFileStore,
    destination_path,
    recording_files,
    recording_folder,
)
from gotoassist_recordings.exceptions import GoToAssistConfigError, RecordingFileSizeError
from gotoassist_recordings.hooks.gotoassist import GoToAssistHook
from gotoassist_recordings.models import DownloadLinks
from gotoassist_recordings.retries import RetryPolicy

#: Retries in a blink, so a test can fault several attempts.
FAST_RETRIES = RetryPolicy(max_attempts=4, initial_wait=0.02, max_wait=0.1)
FILE_NAMES = ["events.json", "recording.mp4", "thumbnail.png"]


@pytest.fixture
def faults_cleared(api) -> Iterator[None]:
    """Clear the module server's fault plan after the test, whatever the test left queued."""
    yield
    api.handle.clear_faults()


def _hook(api, make_connection, **connection) -> GoToAssistHook:
    return GoToAssistHook(make_connection(api.base_url, **connection), retry_policy=FAST_RETRIES)


def _links(hook: GoToAssistHook, recording_ids: list[str]) -> list[DownloadLinks]:
    links, _ = hook.get_download_links(recording_ids)
    assert [link.recording_id for link in links] == recording_ids
    return links


def _day_folder(base: Path, link: DownloadLinks, timezone: str = "UTC") -> Path:
    started = link.recording_start_time.in_timezone(timezone)
    return base / started.format("YYYY") / started.format("MM") / started.format("DD") / link.recording_id


def _assert_stored(folder: Path, recording_id: str, scale: int = 1) -> None:
    assert sorted(path.name for path in folder.iterdir()) == FILE_NAMES
    assert (folder / "recording.mp4").read_bytes() == recording_mp4(recording_id, scale)
    assert (folder / "events.json").read_bytes() == events_json(recording_id)
    assert (folder / "thumbnail.png").read_bytes() == thumbnail_png(recording_id)


def _partial_files(base: Path) -> list[Path]:
    return [path for path in base.rglob("*") if ".partial-" in path.name]


# -- layout and settings ------------------------------------------------------------------------------


def _link(start: str, recording_id: str = "1234567") -> DownloadLinks:
    return DownloadLinks.model_validate(
        {
            "recordingId": recording_id,
            "recordingUrl": f"https://cdn.example/r/{recording_id}.mp4?signature=abc",
            "eventsUrl": f"https://cdn.example/r/{recording_id}/events.JSON?signature=abc",
            "thumbnailUrl": f"https://cdn.example/r/{recording_id}/thumb?signature=abc",
            "recordingStartTime": start,
            "recordingSize": "10",
        }
    )


@pytest.mark.parametrize(
    ("start", "timezone", "folder"),
    [
        pytest.param("2026-11-30T23:30:00Z", "UTC", "2026/11/30", id="utc"),
        pytest.param("2026-11-30T23:30:00Z", "Europe/Berlin", "2026/12/01", id="east-of-utc-next-day"),
        pytest.param("2026-12-01T03:00:00Z", "America/New_York", "2026/11/30", id="west-of-utc-day-before"),
    ],
)
def test_recordings_are_foldered_by_their_start_date_in_the_timezone(start, timezone, folder):
    base = destination_path("file:///data/recordings")

    assert str(recording_folder(base, _link(start), timezone)) == f"file:///data/recordings/{folder}/1234567"


def test_file_names_keep_the_extension_of_their_link_path():
    assert [file.name for file in recording_files(_link("2026-11-30T10:00:00Z"))] == [
        "recording.mp4",
        "events.json",
        "thumbnail",
    ]


@pytest.mark.parametrize("destination", ["", "   ", "relative/folder", "file://relative"])
def test_destinations_that_are_empty_or_relative_are_refused(destination):
    with pytest.raises(GoToAssistConfigError, match="download destination"):
        destination_path(destination)


def test_an_unknown_timezone_is_refused(api, make_connection, tmp_path):
    with pytest.raises(GoToAssistConfigError, match="Mars/Olympus"):
        RecordingFileStore(_hook(api, make_connection), str(tmp_path), timezone="Mars/Olympus")


# -- storing ------------------------------------------------------------------------------------------


def test_files_are_stored_byte_identical_under_the_date_layout(api, make_connection, take, tmp_path):
    hook = _hook(api, make_connection)
    recording_ids = take(3, ready=True)
    store = RecordingFileStore(hook, f"file://{tmp_path}", timezone="Asia/Tokyo")
    before = api.last_call_id()

    stored = [store.store(link) for link in _links(hook, recording_ids)]

    for link, outcome in zip(_links(hook, recording_ids), stored, strict=True):
        folder = _day_folder(tmp_path, link, "Asia/Tokyo")
        _assert_stored(folder, link.recording_id)
        assert outcome.files_downloaded == 3
        assert outcome.files_present == 0
        assert outcome.bytes_downloaded == sum(path.stat().st_size for path in folder.iterdir())
    assert _partial_files(tmp_path) == []
    assert len(api.calls(before, endpoints="file", at_least=9)) == 9


def test_a_rerun_downloads_nothing(api, make_connection, take, tmp_path):
    hook = _hook(api, make_connection)
    links = _links(hook, take(2, ready=True))
    RecordingFileStore(hook, str(tmp_path)).store(links[0])
    RecordingFileStore(hook, str(tmp_path)).store(links[1])
    stored_before = {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*") if path.is_file()}
    before = api.last_call_id()

    again = [RecordingFileStore(_hook(api, make_connection), str(tmp_path)).store(link) for link in links]

    assert [(outcome.files_downloaded, outcome.files_present) for outcome in again] == [(0, 3), (0, 3)]
    assert api.calls(before, endpoints="file") == []
    assert {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*") if path.is_file()} == stored_before


def test_a_stored_recording_of_the_wrong_size_is_fetched_again(api, make_connection, take, tmp_path):
    hook = _hook(api, make_connection)
    [link] = _links(hook, take(1, ready=True))
    store = RecordingFileStore(hook, str(tmp_path))
    store.store(link)
    mp4 = _day_folder(tmp_path, link) / "recording.mp4"
    mp4.write_bytes(b"not the recording")
    before = api.last_call_id()

    outcome = store.store(link)

    assert (outcome.files_downloaded, outcome.files_present) == (1, 2)
    _assert_stored(mp4.parent, link.recording_id)
    assert len(api.calls(before, endpoints="file", at_least=1)) == 1


@pytest.mark.usefixtures("faults_cleared")
def test_a_recording_of_the_wrong_size_is_not_stored(api, make_connection, take, tmp_path):
    hook = _hook(api, make_connection)
    [link] = _links(hook, take(1, ready=True))
    store = RecordingFileStore(hook, str(tmp_path))
    folder = _day_folder(tmp_path, link)
    before = api.last_call_id()
    api.handle.fail_next("file", "short-file")

    with pytest.raises(RecordingFileSizeError, match=f"advertised {link.recording_size}"):
        store.store(link)

    # The short file came with a matching Content-Length; only the advertised size told, and no
    # retry was made. Nothing is left under any name.
    assert [call.status for call in api.calls(before, endpoints="file", at_least=1)] == [200]
    assert not (folder / "recording.mp4").exists()
    assert list(folder.iterdir()) == []
    assert _partial_files(tmp_path) == []

    store.store(link)
    _assert_stored(folder, link.recording_id)


@pytest.mark.usefixtures("faults_cleared")
@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        pytest.param("drop-mid-file", "answer cut short", id="dropped-mid-file"),
        pytest.param("drop", "connection failed", id="dropped-before-answer"),
        pytest.param("unavailable", "HTTP 503", id="503"),
        pytest.param("too-many-requests", "HTTP 429", id="429"),
    ],
)
def test_transient_faults_are_retried_and_leave_no_partial_file(
    api, make_connection, take, tmp_path, fault, cause
):
    hook = _hook(api, make_connection)
    [link] = _links(hook, take(1, ready=True))
    before = api.last_call_id()
    api.handle.set_faults(queued={"file": [fault, fault]}, retry_after_seconds=0)

    with structlog.testing.capture_logs() as events:
        outcome = RecordingFileStore(hook, str(tmp_path)).store(link)

    _assert_stored(_day_folder(tmp_path, link), link.recording_id)
    assert _partial_files(tmp_path) == []
    assert outcome.files_downloaded == 3
    # The MP4 was tried three times: two faulted attempts, then the whole file again.
    assert len(api.calls(before, endpoints="file", at_least=5)) == 5
    warnings = [event["event"] for event in events if event.get("log_level") == "warning"]
    what = f"GoToAssist download of recording.mp4 of recording {link.recording_id}"
    assert [warning.split(";")[0] for warning in warnings] == [
        f"{what} failed on attempt 1 of 4 ({cause})",
        f"{what} failed on attempt 2 of 4 ({cause})",
    ]


def test_reads_and_writes_are_chunked_so_memory_stays_bounded(api, make_connection, take, tmp_path):
    hook = _hook(api, make_connection)
    store = RecordingFileStore(hook, str(tmp_path), chunk_size=64 * 1024)
    # A first recording takes the one-off allocations: the access token, imports, the connection.
    [warm_up] = _links(hook, take(1, ready=True))
    store.store(warm_up)
    # Every MP4 is now between 4 and 44 MB.
    api.handle.update_settings(recording_scale=1000)
    [link] = _links(hook, take(1, ready=True))

    tracemalloc.start()
    try:
        store.store(link)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    _assert_stored(_day_folder(tmp_path, link), link.recording_id, scale=1000)
    assert peak < link.recording_size / 8, f"peak {peak} bytes for a file of {link.recording_size}"


# -- the access token ---------------------------------------------------------------------------------


def test_files_on_another_host_never_get_the_access_token(api, make_connection, take, tmp_path):
    with RecordingProxy(api.base_url) as storage_host:
        api.handle.update_settings(files_base_url=storage_host.base_url)
        hook = _hook(api, make_connection)
        [link] = _links(hook, take(1, ready=True))

        RecordingFileStore(hook, str(tmp_path)).store(link)

    file_requests = [seen for seen in storage_host.seen if seen.target.startswith("/files/")]
    assert len(file_requests) == 3
    assert all("authorization" not in {name.lower() for name in seen.headers} for seen in file_requests)
    _assert_stored(_day_folder(tmp_path, link), link.recording_id)


def test_files_on_the_api_host_get_the_access_token(api, make_connection, take, tmp_path):
    with RecordingProxy(api.base_url) as api_host:
        # The API and its files both behind the same origin.
        api.handle.update_settings(files_base_url=api_host.base_url)
        hook = GoToAssistHook(
            make_connection(api_host.base_url, token_url=f"{api.base_url}/oauth/token"),
            retry_policy=FAST_RETRIES,
        )
        [link] = _links(hook, take(1, ready=True))

        RecordingFileStore(hook, str(tmp_path)).store(link)

    file_requests = [seen for seen in api_host.seen if seen.target.startswith("/files/")]
    assert len(file_requests) == 3
    token = hook.tokens.get()
    assert all(seen.headers.get("Authorization") == f"Bearer {token}" for seen in file_requests)
