"""The download operator against the local API server, over real HTTP, storing into a local folder.

It is run through ``execute`` with an empty context, as the other operators' tests do.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pendulum
import pytest
import structlog

from gotoassist_api_server.media import events_json, recording_mp4, thumbnail_png
from gotoassist_recordings.exceptions import GoToAssistConfigError, GoToAssistError
from gotoassist_recordings.operators.downloads import GoToAssistDownloadRecordingsOperator

UNKNOWN_ID = "1000000000000"


@pytest.fixture
def faults_cleared(api) -> Iterator[None]:
    """Clear the module server's fault plan after the test, whatever the test left queued."""
    yield
    api.handle.clear_faults()


def download(conn_id: str, recording_ids: list[str], destination: str, **kwargs) -> dict:
    operator = GoToAssistDownloadRecordingsOperator(
        task_id="download",
        gotoassist_conn_id=conn_id,
        recording_ids=recording_ids,
        destination=destination,
        **kwargs,
    )
    return operator.execute({})


def folder_of(api, base: Path, recording_id: str) -> Path:
    started = pendulum.parse(api.recordings_by_id()[recording_id]["start_time"])
    return base / started.format("YYYY/MM/DD") / recording_id


def stored_whole(api, base: Path, recording_id: str) -> bool:
    folder = folder_of(api, base, recording_id)
    files = {path.name: path.read_bytes() for path in folder.iterdir()} if folder.exists() else {}
    return files == {
        "recording.mp4": recording_mp4(recording_id),
        "events.json": events_json(recording_id),
        "thumbnail.png": thumbnail_png(recording_id),
    }


def summary_lines(events: list[dict]) -> list[str]:
    return [event["event"] for event in events if str(event["event"]).startswith("Stored the files of")]


def test_a_chunk_is_stored_once_and_counted(api, make_connection, take, tmp_path):
    conn_id = make_connection(api.base_url)
    recording_ids = take(3, ready=True)

    with structlog.testing.capture_logs() as events:
        first = download(conn_id, recording_ids, str(tmp_path))
    before = api.last_call_id()
    again = download(conn_id, recording_ids, f"file://{tmp_path}")

    assert all(stored_whole(api, tmp_path, rid) for rid in recording_ids)
    sizes = sum(path.stat().st_size for path in tmp_path.rglob("*") if path.is_file())
    assert first == {
        "downloaded": 3,
        "already_present": 0,
        "failed": 0,
        "files_downloaded": 9,
        "bytes_downloaded": sizes,
    }
    assert again == {
        "downloaded": 0,
        "already_present": 3,
        "failed": 0,
        "files_downloaded": 0,
        "bytes_downloaded": 0,
    }
    assert api.calls(before, endpoints="file") == []
    [summary] = summary_lines(events)
    assert summary.startswith(
        f"Stored the files of 3 recordings in {tmp_path}: 3 downloaded, 0 already present"
    )


@pytest.mark.usefixtures("faults_cleared")
def test_recordings_not_stored_fail_the_task_after_the_others_are_stored(
    api, make_connection, take, tmp_path
):
    conn_id = make_connection(api.base_url)
    ready = take(3, ready=True)
    [waiting] = take(1)
    before = api.last_call_id()
    # The first file fetched, the first recording's MP4, comes back a quarter short.
    api.handle.fail_next("file", "short-file")

    with structlog.testing.capture_logs() as events, pytest.raises(GoToAssistError) as failure:
        download(conn_id, [*ready, waiting, UNKNOWN_ID], str(tmp_path))

    message = str(failure.value)
    assert f"1 recordings whose files could not be stored: {ready[0]}" in message
    assert f"1 recordings not ready for download: {waiting}" in message
    assert f"1 recording IDs refused as invalid: {UNKNOWN_ID}" in message
    assert [stored_whole(api, tmp_path, rid) for rid in ready] == [False, True, True]
    assert list(folder_of(api, tmp_path, ready[0]).iterdir()) == []
    assert not folder_of(api, tmp_path, waiting).exists()
    # The failed MP4 was not fetched again; the two stored recordings took three files each.
    assert len(api.calls(before, endpoints="file", at_least=7)) == 7
    [summary] = summary_lines(events)
    assert "2 downloaded, 0 already present, 3 failed" in summary

    # A retry of the task stores what is left of the ready recordings and nothing else.
    with pytest.raises(GoToAssistError, match="not ready for download") as retried:
        download(conn_id, [*ready, waiting], str(tmp_path))
    assert "could not be stored" not in str(retried.value)
    assert all(stored_whole(api, tmp_path, rid) for rid in ready)


@pytest.mark.parametrize("destination", ["", "recordings", "file://recordings"])
def test_a_destination_that_is_not_absolute_fails_before_any_call(api, make_connection, take, destination):
    conn_id = make_connection(api.base_url)
    before = api.last_call_id()

    with pytest.raises(GoToAssistConfigError, match="download destination"):
        download(conn_id, take(1, ready=True), destination)

    assert api.calls(before) == []


def test_the_destination_and_timezone_are_templated():
    fields = GoToAssistDownloadRecordingsOperator.template_fields

    assert {"recording_ids", "destination", "timezone", "chunk_label", "gotoassist_conn_id"} <= set(fields)
