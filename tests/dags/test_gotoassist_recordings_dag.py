"""The nightly DAG run end to end through Airflow (``dag.test``) against the local API server.

These runs are the slowest tests of the suite, so there are few of them: one busy day that needs
several chunks and a split listing, with recordings an earlier run left unarchived in its look-back,
and one empty day.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.exceptions import ParamValidationError
from airflow.utils.state import DagRunState, TaskInstanceState
from tests.conftest import DAGS_FOLDER

from gotoassist_api_server.connection import airflow_connection_json
from gotoassist_api_server.seeding import USER_KEYS, SeedResult, seed
from gotoassist_api_server.testing import ServerHandle, running_server

DAY = "2026-11-13"
#: Within the busy day's look-back: transcoded but never archived, and never transcoded.
LEFT_OVER_DAY = "2026-11-10"
LEFT_OVER_COUNT = 8
#: Far enough from the others that its look-back reaches none of them.
EMPTY_DAY = "2026-11-25"
#: Two days a manual run names, for one technician only.
RANGE_DAYS = ("2026-12-01", "2026-12-02")
TECHNICIAN = USER_KEYS[1]
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
    after = server.stats()
    for endpoint in ("transcode", "archive", "urls"):
        assert _successful_calls(after, endpoint) == _successful_calls(before, endpoint)
    recordings = {r["recording_id"]: r for r in server.recordings()}
    for recording_id in empty.previous_day_recording_ids + empty.next_day_recording_ids:
        assert recordings[recording_id]["archived_at"] is None


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
    assert reason in capsys.readouterr().out
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
