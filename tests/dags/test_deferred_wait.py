"""Waiting for transcoding in the readiness trigger: its setting, and a real ``airflow dags test`` run.

``airflow dags test`` runs a deferred task's trigger in its own process, as the triggerer would, so
the run shows the trigger at work: here it finds a connection kept in the metadata database, outlives
several short-lived access tokens while the server rotates refresh tokens, and must keep each rotated
one where the next task finds it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pendulum
import pytest
from airflow.dag_processing.dagbag import DagBag
from tests.conftest import DAGS_FOLDER
from tests.dags.conftest import AirflowHome

from gotoassist_api_server.connection import airflow_connection_json
from gotoassist_api_server.seeding import seed
from gotoassist_api_server.testing import ServerHandle, running_server
from gotoassist_recordings.token_cache import VARIABLE_PREFIX

DAY = "2026-11-13"
DAY_COUNT = 40
#: Long enough for the trigger to check several times and renew its token in between.
TRANSCODE_DELAY = 5.0
#: Access tokens are replaced 20 % before they expire, so every 1.6 s here.
TOKEN_TTL = 2


@pytest.fixture
def rotating_server(tmp_path: Path) -> Iterator[ServerHandle]:
    db_path = tmp_path / "api.sqlite"
    seed(db_path, day=DAY, count=DAY_COUNT, neighbours=0, ready_fraction=0.0, seed=41)
    with running_server(
        db_path, transcode_delay=TRANSCODE_DELAY, token_ttl=TOKEN_TTL, rotate_refresh_tokens=True
    ) as server:
        yield server


def _active_refresh_tokens(server: ServerHandle) -> set[str]:
    with sqlite3.connect(server.db_path) as db:
        return {row[0] for row in db.execute("SELECT token FROM refresh_tokens WHERE revoked_at IS NULL")}


def test_the_trigger_waits_renewing_tokens_and_keeps_each_rotated_refresh_token(
    rotating_server: ServerHandle, airflow_home: AirflowHome
) -> None:
    # In the metadata database, where the trigger's async lookup cannot reach under `dags test`.
    airflow_home.environment.pop("AIRFLOW_CONN_GOTOASSIST_DEFAULT", None)
    added = airflow_home.run(
        "connections",
        "add",
        "gotoassist_default",
        "--conn-json",
        airflow_connection_json(rotating_server.base_url),
    )
    assert added.returncode == 0, added.stderr[-2000:]
    airflow_home.environment["GOTOASSIST_READY_POKE_INTERVAL"] = "0.5"
    airflow_home.environment["GOTOASSIST_DEFERRABLE"] = "true"
    run_date = pendulum.parse(DAY).add(days=1).to_date_string()

    finished = airflow_home.run("dags", "test", "gotoassist_recordings", run_date)

    output = finished.stdout + finished.stderr
    assert finished.returncode == 0, output[-5000:]
    summary = rotating_server.stats(day=DAY)["day"]
    assert summary["archived"] == DAY_COUNT
    assert summary["archived_before_ready"] == 0

    # Transcode waited in the trigger, which renewed its token with rotated refresh tokens meanwhile.
    lines = output.splitlines()
    deferred = next(n for n, line in enumerate(lines) if "running trigger in line" in line)
    done = next((n for n, line in enumerate(lines) if "accepted by the API are ready" in line), None)
    assert done is not None, "the trigger never reported the chunk ready"
    during_the_wait = lines[deferred:done]
    assert any("Waiting until 40 recordings" in line for line in during_the_wait)
    assert any("issued a new refresh token" in line for line in during_the_wait)
    assert not any("Could not write Variable" in line for line in lines)
    assert not any("Could not check whether" in line for line in lines)

    # The archive step after it got through with what the trigger kept, and so would the next run.
    kept = airflow_home.run("variables", "get", f"{VARIABLE_PREFIX}gotoassist_default")
    assert kept.returncode == 0, kept.stderr[-2000:]
    assert _active_refresh_tokens(rotating_server) == {json.loads(kept.stdout)["refresh_token"]}


def _chunk_tasks(setting: str | None, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    if setting is None:
        monkeypatch.delenv("GOTOASSIST_DEFERRABLE", raising=False)
    else:
        monkeypatch.setenv("GOTOASSIST_DEFERRABLE", setting)
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert bag.import_errors == {}
    dag = bag.dags["gotoassist_recordings"]
    return {
        task.task_id.removeprefix("process_chunk."): task
        for task in dag.tasks
        if task.task_id.startswith("process_chunk.")
    }


@pytest.mark.parametrize("setting", [pytest.param(None, id="default"), pytest.param("true", id="true")])
def test_transcode_waits_in_the_triggerer_unless_turned_off(monkeypatch: pytest.MonkeyPatch, setting) -> None:
    tasks = _chunk_tasks(setting, monkeypatch)

    assert sorted(tasks) == ["archive", "transcode"]
    assert tasks["transcode"].wait_until_ready is True


def test_turned_off_a_task_of_its_own_waits_in_reschedule_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    tasks = _chunk_tasks(" False ", monkeypatch)

    assert sorted(tasks) == ["archive", "transcode", "wait_until_ready"]
    assert tasks["transcode"].wait_until_ready is False
    wait = tasks["wait_until_ready"]
    assert wait.deferrable is False
    assert wait.mode == "reschedule"
    assert wait.upstream_task_ids == {"list_recordings", "process_chunk.transcode"}
    # Chunks ready when listed skip transcoding and are still waited for and archived.
    assert wait.trigger_rule == "none_failed"
    assert tasks["archive"].upstream_task_ids == {"list_recordings", "process_chunk.wait_until_ready"}
    assert tasks["archive"].trigger_rule == "all_success"
