"""The nightly DAG run end to end through Airflow (``dag.test``) against the local API server.

These runs are the slowest tests of the suite, so there are few of them: one busy day that needs
several chunks and a split listing, and one empty day.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.utils.state import DagRunState, TaskInstanceState
from tests.conftest import DAGS_FOLDER

from gotoassist_api_server.connection import airflow_connection_json
from gotoassist_api_server.seeding import SeedResult, seed
from gotoassist_api_server.testing import ServerHandle, running_server

DAY = "2026-11-13"
EMPTY_DAY = "2026-11-20"
#: Enough for three chunks of transcoding and one of recordings ready when listed.
DAY_COUNT = 1300
READY_FRACTION = 0.2
TRANSCODE_DELAY = 1.0


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SeedResult, SeedResult]:
    path = tmp_path_factory.mktemp("dag-run") / "api.sqlite"
    busy = seed(path, day=DAY, count=DAY_COUNT, neighbours=5, ready_fraction=READY_FRACTION, seed=3)
    empty = seed(path, day=EMPTY_DAY, count=0, neighbours=5, seed=4)
    return path, busy, empty


@pytest.fixture(scope="module")
def server(seeded: tuple[Path, SeedResult, SeedResult]) -> Iterator[ServerHandle]:
    with running_server(seeded[0], transcode_delay=TRANSCODE_DELAY) as handle:
        yield handle


@pytest.fixture
def nightly_dag(server: ServerHandle, airflow_db: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AIRFLOW_CONN_GOTOASSIST_DEFAULT", airflow_connection_json(server.base_url))
    monkeypatch.setenv("GOTOASSIST_READY_POKE_INTERVAL", "0.5")
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert bag.import_errors == {}
    return bag.dags["gotoassist_recordings"]


def _run_for(dag: Any, day: str) -> Any:
    """Run the DAG as the nightly schedule would for ``day``: at the next midnight."""
    return dag.test(logical_date=pendulum.parse(day).add(days=1))


def _successful_calls(figures: dict[str, Any], endpoint: str) -> dict[str, int]:
    by_status = figures["calls"].get(endpoint, {}).get("by_status", {})
    ok = [counts for status, counts in by_status.items() if str(status).startswith("2")]
    return {"calls": sum(c["calls"] for c in ok), "recording_ids": sum(c["recording_ids"] for c in ok)}


def test_a_busy_day_is_transcoded_and_archived_completely(
    nightly_dag: Any, server: ServerHandle, seeded: tuple[Path, SeedResult, SeedResult]
) -> None:
    _, busy, _ = seeded
    before = server.stats()

    run = _run_for(nightly_dag, DAY)

    assert run.state == DagRunState.SUCCESS
    after = server.stats(day=DAY)
    day = after["day"]
    assert day["total"] == DAY_COUNT
    assert day["listed"] == DAY_COUNT
    assert day["archived"] == DAY_COUNT
    assert day["unarchived"] == 0
    assert day["archived_before_ready"] == 0
    assert day["touched_on_other_days"] == 0

    # Only recordings not ready at listing time were sent for transcoding, in chunks of 500 or fewer.
    to_transcode = DAY_COUNT - len(busy.ready_recording_ids)
    transcoded = _successful_calls(after, "transcode")
    assert (
        transcoded["recording_ids"] - _successful_calls(before, "transcode")["recording_ids"] == to_transcode
    )
    assert transcoded["calls"] - _successful_calls(before, "transcode")["calls"] == math.ceil(
        to_transcode / 500
    )
    archived = _successful_calls(after, "archive")
    assert archived["recording_ids"] - _successful_calls(before, "archive")["recording_ids"] == DAY_COUNT

    recordings = {r["recording_id"]: r for r in server.recordings()}
    for recording_id in busy.previous_day_recording_ids + busy.next_day_recording_ids:
        assert recordings[recording_id]["archived_at"] is None
        assert recordings[recording_id]["transcode_requested_at"] is None

    # Every mapped task is shown by its chunk: three to transcode, then the one ready when listed.
    chunks = math.ceil(to_transcode / 500) + math.ceil(len(busy.ready_recording_ids) / 500)
    labels = sorted(
        ti.rendered_map_index for ti in run.get_task_instances() if ti.task_id == "process_chunk.archive"
    )
    assert labels == sorted(
        f"chunk {number}/{chunks} · {size} recordings{' · ready when listed' if number == chunks else ''}"
        for number, size in zip(
            range(1, chunks + 1), [500, 500, to_transcode - 1000, len(busy.ready_recording_ids)], strict=True
        )
    )


def test_an_empty_day_succeeds_with_the_chunk_work_skipped(
    nightly_dag: Any, server: ServerHandle, seeded: tuple[Path, SeedResult, SeedResult]
) -> None:
    _, _, empty = seeded
    before = server.stats()

    run = _run_for(nightly_dag, EMPTY_DAY)

    assert run.state == DagRunState.SUCCESS
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["list_recordings"] == TaskInstanceState.SUCCESS
    assert states["process_chunk.transcode"] == TaskInstanceState.SKIPPED
    assert states["process_chunk.archive"] == TaskInstanceState.SKIPPED
    after = server.stats()
    for endpoint in ("transcode", "archive", "urls"):
        assert _successful_calls(after, endpoint) == _successful_calls(before, endpoint)
    recordings = {r["recording_id"]: r for r in server.recordings()}
    for recording_id in empty.previous_day_recording_ids + empty.next_day_recording_ids:
        assert recordings[recording_id]["archived_at"] is None
