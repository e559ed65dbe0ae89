"""The nightly DAG run end to end through Airflow (``dag.test``) against the local API server.

These runs are the slowest tests of the suite, so there are few of them: one busy day that needs
several chunks and a split listing, with recordings an earlier run left unarchived in its look-back,
one empty day, one day whose chunk fails, and manual runs with good and bad parameters. The runs
check what they report too: the asset event of a completely archived day, read back from Airflow's
metadata database with its ``extra``, and the report kept in XCom whatever happened.
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
from airflow.sdk.exceptions import ParamValidationError
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState, TaskInstanceState
from sqlalchemy import select
from tests.conftest import DAGS_FOLDER

from gotoassist_api_server.connection import airflow_connection_json
from gotoassist_api_server.seeding import USER_KEYS, SeedResult, seed
from gotoassist_api_server.testing import ServerHandle, running_server
from gotoassist_recordings.day_report import RECORDINGS_ARCHIVED, REPORT_TASK_ID, REPORT_XCOM_KEY

DAY = "2026-11-13"
#: Within the busy day's look-back: transcoded but never archived, and never transcoded.
LEFT_OVER_DAY = "2026-11-10"
LEFT_OVER_COUNT = 8
#: Far enough from the others that its look-back reaches none of them.
EMPTY_DAY = "2026-11-25"
#: Two days a manual run names, for one technician only.
RANGE_DAYS = ("2026-12-01", "2026-12-02")
TECHNICIAN = USER_KEYS[1]
#: A day of two chunks, one of which fails.
FAILING_DAY = "2026-11-27"
FAILING_DAY_COUNT = 40
#: Enough for three chunks of transcoding and one of recordings ready when listed.
DAY_COUNT = 1300
READY_FRACTION = 0.2
TRANSCODE_DELAY = 1.0


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SeedResult, SeedResult, SeedResult]:
    path = tmp_path_factory.mktemp("dag-run") / "api.sqlite"
    busy = seed(path, day=DAY, count=DAY_COUNT, neighbours=5, ready_fraction=READY_FRACTION, seed=3)
    left_over = seed(path, day=LEFT_OVER_DAY, count=LEFT_OVER_COUNT, neighbours=0, ready_fraction=0.5, seed=5)
    empty = seed(path, day=EMPTY_DAY, count=0, neighbours=5, seed=4)
    seed(path, day=FAILING_DAY, count=FAILING_DAY_COUNT, neighbours=5, ready_fraction=0.5, seed=5)
    for number, day in enumerate(RANGE_DAYS):
        seed(path, day=day, count=40, neighbours=2, seed=6 + number)
    return path, busy, left_over, empty


@pytest.fixture(scope="module")
def server(seeded: tuple[Path, SeedResult, SeedResult, SeedResult]) -> Iterator[ServerHandle]:
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
    nightly_dag: Any, server: ServerHandle, seeded: tuple[Path, SeedResult, SeedResult, SeedResult]
) -> None:
    _, busy, left_over, _ = seeded
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
    # The look-back archived what an earlier run left ready, and touched nothing else.
    assert day["touched_on_other_days"] == len(left_over.ready_recording_ids)

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
    assert archived["recording_ids"] - _successful_calls(before, "archive")[
        "recording_ids"
    ] == DAY_COUNT + len(left_over.ready_recording_ids)

    recordings = {r["recording_id"]: r for r in server.recordings()}
    for recording_id in left_over.ready_recording_ids:
        assert recordings[recording_id]["archived_at"] is not None
    never_transcoded = set(left_over.day_recording_ids) - set(left_over.ready_recording_ids)
    for recording_id in [*busy.previous_day_recording_ids, *busy.next_day_recording_ids, *never_transcoded]:
        assert recordings[recording_id]["archived_at"] is None
        assert recordings[recording_id]["transcode_requested_at"] is None

    # The day is announced once, with what the run did to it, left-over chunk included; the list calls
    # are those the server saw.
    list_calls = _successful_calls(after, "list")["calls"] - _successful_calls(before, "list")["calls"]
    assert list_calls > 3, "a day of 1,300 recordings needs its window split"
    expected = {
        "window_start": f"{DAY}T00:00:00+00:00",
        "window_end": f"{pendulum.parse(DAY).add(days=1).to_date_string()}T00:00:00+00:00",
        "first_day": DAY,
        "last_day": DAY,
        "timezone": "UTC",
        "listed": DAY_COUNT + len(left_over.ready_recording_ids),
        "already_ready": len(busy.ready_recording_ids) + len(left_over.ready_recording_ids),
        "list_calls": list_calls,
        "chunks": 5,
        "chunks_archived": 5,
        "transcode_requested": to_transcode,
        "archived": DAY_COUNT + len(left_over.ready_recording_ids),
        "refused": 0,
        "complete": True,
    }
    assert _asset_events(run) == [(RECORDINGS_ARCHIVED.name, expected)]
    assert _kept_report(run) == expected

    # Every mapped task is shown by its chunk: three to transcode, the one ready when listed, and the
    # recordings left over from the look-back days.
    sizes = [500, 500, to_transcode - 1000, len(busy.ready_recording_ids), len(left_over.ready_recording_ids)]
    notes = ["", "", "", " · ready when listed", " · ready when listed · left over from earlier days"]
    labels = sorted(
        ti.rendered_map_index for ti in run.get_task_instances() if ti.task_id == "process_chunk.archive"
    )
    assert labels == sorted(
        f"chunk {number}/{len(sizes)} · {size} recordings{note}"
        for number, (size, note) in enumerate(zip(sizes, notes, strict=True), start=1)
    )


def test_an_empty_day_succeeds_with_the_chunk_work_skipped(
    nightly_dag: Any, server: ServerHandle, seeded: tuple[Path, SeedResult, SeedResult, SeedResult]
) -> None:
    _, _, _, empty = seeded
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
    # One chunk was archived, the other not (its transcode or its archive step failed).
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


@pytest.mark.parametrize(
    ("run_conf", "reason"),
    [
        pytest.param({"frist_day": EMPTY_DAY}, "Unknown run parameter(s) ['frist_day']", id="misspelt-key"),
        pytest.param(
            {"first_day": "2026-11-25", "last_day": "2026-11-24"},
            "First day 2026-11-25 is after last day 2026-11-24",
            id="first-after-last",
        ),
    ],
)
def test_wrong_run_parameters_fail_the_run_before_anything_is_listed(
    nightly_dag: Any, server: ServerHandle, capsys: pytest.CaptureFixture[str], run_conf, reason
) -> None:
    before = server.stats()

    run = nightly_dag.test(logical_date=pendulum.parse(EMPTY_DAY).add(days=1), run_conf=run_conf)

    assert run.state == DagRunState.FAILED
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["resolve_window"] == TaskInstanceState.FAILED
    assert states["list_recordings"] == TaskInstanceState.UPSTREAM_FAILED
    # The report says what helps: not clearing, which would fail again, but a run with other parameters.
    assert states[REPORT_TASK_ID] == TaskInstanceState.FAILED
    printed = capsys.readouterr().out
    assert reason in printed
    assert "trigger a new run with corrected parameters" in printed
    assert server.stats()["calls"].get("list") == before["calls"].get("list")


def test_a_manual_run_processes_the_days_and_technician_it_names(
    nightly_dag: Any, server: ServerHandle
) -> None:
    first, last = RANGE_DAYS
    run_conf = {"first_day": first, "last_day": last, "user_key": TECHNICIAN, "look_back_days": 0}
    before = {r["recording_id"]: r for r in server.recordings()}

    run = nightly_dag.test(logical_date=pendulum.parse(last).add(days=5), run_conf=run_conf)

    assert run.state == DagRunState.SUCCESS
    after = {r["recording_id"]: r for r in server.recordings()}
    touched = {
        rid
        for rid, recording in after.items()
        if (recording["transcode_calls"], recording["archive_calls"])
        != (before[rid]["transcode_calls"], before[rid]["archive_calls"])
    }
    theirs = {
        r["recording_id"]
        for day in RANGE_DAYS
        for r in server.recordings(day=day)
        if r["user_key"] == TECHNICIAN
    }
    assert theirs
    assert touched == theirs
    assert all(after[rid]["archived_at"] is not None for rid in theirs)


def test_a_run_parameter_that_is_not_a_date_is_refused_when_the_run_is_created(
    nightly_dag: Any, server: ServerHandle
) -> None:
    before = server.stats()

    with pytest.raises(ParamValidationError, match="first_day"):
        nightly_dag.test(
            logical_date=pendulum.parse(EMPTY_DAY).add(days=1), run_conf={"first_day": "yesterday"}
        )

    assert server.stats()["calls"] == before["calls"]


def test_a_run_without_a_logical_date_covers_the_day_before_it(
    nightly_dag: Any, server: ServerHandle
) -> None:
    # As `airflow dags trigger` and the REST API start a run unless told a logical date.
    run = nightly_dag.test(logical_date=None, run_conf={"look_back_days": 0})

    assert run.state == DagRunState.SUCCESS
    assert run.logical_date is None
    yesterday = pendulum.instance(run.run_after).in_timezone("UTC").date().subtract(days=1).isoformat()
    report = _kept_report(run)
    assert (report["first_day"], report["last_day"]) == (yesterday, yesterday)
