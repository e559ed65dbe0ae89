"""The nightly DAG run end to end through Airflow (``dag.test``) against the local API server.

These runs are the slowest tests of the suite, so there are few of them: one busy day that needs
several chunks and a split listing, one empty day, and one day whose chunk fails. Each checks what
the run reports: the asset event of a completely archived day, read back from Airflow's metadata
database with its ``extra``, and the report kept in XCom whatever happened.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.models.asset import AssetEvent, AssetModel
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState, TaskInstanceState
from sqlalchemy import select
from tests.conftest import DAGS_FOLDER

from gotoassist_api_server.connection import airflow_connection_json
from gotoassist_api_server.seeding import SeedResult, seed
from gotoassist_api_server.testing import ServerHandle, running_server
from gotoassist_recordings.day_report import RECORDINGS_ARCHIVED, REPORT_TASK_ID, REPORT_XCOM_KEY

DAY = "2026-11-13"
EMPTY_DAY = "2026-11-20"
#: A day of two chunks, one of which fails.
FAILING_DAY = "2026-11-27"
FAILING_DAY_COUNT = 40
#: Enough for three chunks of transcoding and one of recordings ready when listed.
DAY_COUNT = 1300
READY_FRACTION = 0.2
TRANSCODE_DELAY = 1.0


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SeedResult, SeedResult]:
    path = tmp_path_factory.mktemp("dag-run") / "api.sqlite"
    busy = seed(path, day=DAY, count=DAY_COUNT, neighbours=5, ready_fraction=READY_FRACTION, seed=3)
    empty = seed(path, day=EMPTY_DAY, count=0, neighbours=5, seed=4)
    seed(path, day=FAILING_DAY, count=FAILING_DAY_COUNT, neighbours=5, ready_fraction=0.5, seed=5)
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


def _asset_events(run: Any) -> list[tuple[str, dict[str, Any]]]:
    """The asset events the run recorded, as (asset name, extra), read from the metadata database."""
    with create_session() as session:
        rows = session.execute(
            select(AssetModel.name, AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetEvent.source_dag_id == run.dag_id, AssetEvent.source_run_id == run.run_id)
        ).all()
    return [(name, extra) for name, extra in rows]


def _kept_report(run: Any) -> dict[str, Any] | None:
    """The report the run's last task kept in XCom, whatever happened."""
    with create_session() as session:
        row = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == run.dag_id,
                XComModel.run_id == run.run_id,
                XComModel.task_id == REPORT_TASK_ID,
                XComModel.key == REPORT_XCOM_KEY,
            )
        ).one_or_none()
        return None if row is None else XComModel.deserialize_value(row)


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

    # The day is announced once, with what the run did to it; the list calls are those the server saw.
    list_calls = _successful_calls(after, "list")["calls"] - _successful_calls(before, "list")["calls"]
    assert list_calls > 3, "a day of 1,300 recordings needs its window split"
    expected = {
        "window_start": f"{DAY}T00:00:00+00:00",
        "window_end": f"{pendulum.parse(DAY).add(days=1).to_date_string()}T00:00:00+00:00",
        "first_day": DAY,
        "last_day": DAY,
        "timezone": "UTC",
        "listed": DAY_COUNT,
        "already_ready": len(busy.ready_recording_ids),
        "list_calls": list_calls,
        "chunks": 4,
        "chunks_archived": 4,
        "transcode_requested": to_transcode,
        "archived": DAY_COUNT,
        "refused": 0,
        "complete": True,
    }
    assert _asset_events(run) == [(RECORDINGS_ARCHIVED.name, expected)]
    assert _kept_report(run) == expected

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
    assert states[REPORT_TASK_ID] == TaskInstanceState.SUCCESS
    after = server.stats()
    for endpoint in ("transcode", "archive", "urls"):
        assert _successful_calls(after, endpoint) == _successful_calls(before, endpoint)
    recordings = {r["recording_id"]: r for r in server.recordings()}
    for recording_id in empty.previous_day_recording_ids + empty.next_day_recording_ids:
        assert recordings[recording_id]["archived_at"] is None

    # An empty day is completely archived too: it is announced, with every count zero.
    [(asset, extra)] = _asset_events(run)
    assert asset == RECORDINGS_ARCHIVED.name
    assert extra["first_day"] == extra["last_day"] == EMPTY_DAY
    assert {name: extra[name] for name in ("listed", "chunks", "chunks_archived", "archived")} == {
        "listed": 0,
        "chunks": 0,
        "chunks_archived": 0,
        "archived": 0,
    }
    assert extra["transcode_requested"] == extra["already_ready"] == extra["refused"] == 0
    assert extra["complete"] is True


def test_a_day_with_a_failed_chunk_is_reported_but_not_announced(
    nightly_dag: Any, server: ServerHandle
) -> None:
    # Task retries would only wait; the first readiness check answers garbage, failing one chunk.
    for task in nightly_dag.tasks:
        task.retries = 0
    server.fail_next("urls", "malformed-json")
    try:
        run = _run_for(nightly_dag, FAILING_DAY)
    finally:
        server.clear_faults()

    assert run.state == DagRunState.FAILED
    # One chunk was archived, the other not (its wait or its archive step failed).
    archived = [
        ti.state == TaskInstanceState.SUCCESS
        for ti in run.get_task_instances()
        if ti.task_id == "process_chunk.archive"
    ]
    assert sorted(archived) == [False, True]
    assert run.get_task_instance(REPORT_TASK_ID).state == TaskInstanceState.FAILED
    assert _asset_events(run) == []
    report = _kept_report(run)
    assert report is not None
    assert (report["first_day"], report["listed"], report["chunks"], report["chunks_archived"]) == (
        FAILING_DAY,
        FAILING_DAY_COUNT,
        2,
        1,
    )
    assert report["complete"] is False
    assert 0 < report["archived"] < FAILING_DAY_COUNT
