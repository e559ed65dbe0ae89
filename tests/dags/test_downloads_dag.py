"""The nightly DAG end to end (``dag.test``) with downloads on, against the local API server.

Two runs of one Berlin day: the first with one recording's MP4 served a quarter short, which fails its
chunk's download and so keeps that whole chunk unarchived while the other chunk is stored and archived;
the second, as a retry or the next night would, stores only the missing files and archives the rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.utils.state import DagRunState, TaskInstanceState
from tests.conftest import DAGS_FOLDER

from gotoassist_api_server.connection import airflow_connection_json
from gotoassist_api_server.media import events_json, recording_mp4, thumbnail_png
from gotoassist_api_server.seeding import SeedResult, seed
from gotoassist_api_server.testing import ServerHandle, running_server

DAY = "2026-11-27"
TIMEZONE = "Europe/Berlin"
#: One chunk to transcode and one ready when listed.
DAY_COUNT = 600
READY_FRACTION = 0.2
FILE_NAMES = ["events.json", "recording.mp4", "thumbnail.png"]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SeedResult]:
    path = tmp_path_factory.mktemp("download-run") / "api.sqlite"
    day = seed(
        path, day=DAY, count=DAY_COUNT, neighbours=5, ready_fraction=READY_FRACTION, timezone=TIMEZONE, seed=6
    )
    return path, day


@pytest.fixture(scope="module")
def server(seeded: tuple[Path, SeedResult]) -> Iterator[ServerHandle]:
    with running_server(seeded[0], transcode_delay=1.0) as handle:
        yield handle


@pytest.fixture
def nightly_dag(
    server: ServerHandle, airflow_db: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> tuple[Any, Path]:
    destination = tmp_path / "recordings"
    monkeypatch.setenv("AIRFLOW_CONN_GOTOASSIST_DEFAULT", airflow_connection_json(server.base_url))
    monkeypatch.setenv("GOTOASSIST_READY_POKE_INTERVAL", "0.5")
    monkeypatch.setenv("GOTOASSIST_TIMEZONE", TIMEZONE)
    monkeypatch.setenv("GOTOASSIST_DOWNLOAD_TO", f"file://{destination}")
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert bag.import_errors == {}
    dag = bag.dags["gotoassist_recordings"]
    # Task retries wait two minutes each; the second run below stands in for them.
    for task in dag.tasks:
        task.retries = 0
    return dag, destination


def _run(dag: Any) -> Any:
    """Run the DAG as the nightly schedule would for the Berlin day: at the next midnight there."""
    return dag.test(logical_date=pendulum.parse(DAY, tz=TIMEZONE).add(days=1))


def _stored(destination: Path, recording_id: str) -> dict[str, bytes]:
    folder = destination / DAY.replace("-", "/") / recording_id
    return {path.name: path.read_bytes() for path in folder.iterdir()} if folder.exists() else {}


def _expected(recording_id: str) -> dict[str, bytes]:
    return {
        "recording.mp4": recording_mp4(recording_id),
        "events.json": events_json(recording_id),
        "thumbnail.png": thumbnail_png(recording_id),
    }


def _last_file_write(destination: Path, recording_id: str) -> float:
    folder = destination / DAY.replace("-", "/") / recording_id
    return max(path.stat().st_mtime for path in folder.iterdir())


def _file_calls(server: ServerHandle) -> int:
    return server.stats()["calls"].get("file", {}).get("calls", 0)


def test_a_chunk_is_archived_only_once_every_file_of_it_is_stored(
    nightly_dag: tuple[Any, Path], server: ServerHandle, seeded: tuple[Path, SeedResult]
) -> None:
    dag, destination = nightly_dag
    _, day = seeded
    # The first file fetched comes back a quarter short (with a matching Content-Length) and the
    # second breaks off mid-way: the first fails its recording, the second is retried at once.
    server.set_faults(queued={"file": ["short-file", "drop-mid-file"]})

    first = _run(dag)

    assert first.state == DagRunState.FAILED
    downloads = [ti for ti in first.get_task_instances() if ti.task_id == "process_chunk.download"]
    archives = {
        ti.map_index: ti.state for ti in first.get_task_instances() if ti.task_id == "process_chunk.archive"
    }
    failed_chunk = {ti.map_index for ti in downloads if ti.state == TaskInstanceState.FAILED}
    assert len(downloads) == 2
    assert len(failed_chunk) == 1
    assert archives == {
        index: TaskInstanceState.UPSTREAM_FAILED if index in failed_chunk else TaskInstanceState.SUCCESS
        for index in archives
    }
    recordings = {r["recording_id"]: r for r in server.recordings(day=DAY, timezone=TIMEZONE)}
    assert len(recordings) == DAY_COUNT
    not_stored = [rid for rid in day.day_recording_ids if _stored(destination, rid) != _expected(rid)]
    assert len(not_stored) == 1
    assert _stored(destination, not_stored[0]) == {}
    assert not list(destination.rglob("*.partial-*"))
    archived = {rid for rid, recording in recordings.items() if recording["archived"]}
    assert 0 < len(archived) < DAY_COUNT
    assert not_stored[0] not in archived
    # Every archived recording had all its files stored, byte for byte, before it was archived.
    for recording_id in archived:
        assert _stored(destination, recording_id) == _expected(recording_id)
        archived_at = pendulum.parse(recordings[recording_id]["archived_at"]).timestamp()
        assert _last_file_write(destination, recording_id) <= archived_at

    calls_before = _file_calls(server)
    second = _run(dag)

    assert second.state == DagRunState.SUCCESS
    # Only the recording left unstored was fetched again: its three files.
    assert _file_calls(server) - calls_before == 3
    assert all(_stored(destination, rid) == _expected(rid) for rid in day.day_recording_ids)
    summary = server.stats(day=DAY, timezone=TIMEZONE)["day"]
    assert summary["archived"] == DAY_COUNT
    assert summary["archived_before_ready"] == 0
    assert summary["touched_on_other_days"] == 0
    stored_days = {path.relative_to(destination).parts[:3] for path in destination.glob("*/*/*")}
    assert stored_days == {tuple(DAY.split("-"))}
