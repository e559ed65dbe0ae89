"""Credentials through real ``airflow dags test`` runs: rotated refresh tokens are kept, and no
secret ever reaches the task logs, XCom, rendered templates or anything else Airflow stores.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pendulum
import pytest
from tests.dags.conftest import AirflowHome

from gotoassist_api_server.connection import airflow_connection_json
from gotoassist_api_server.seeding import DEFAULT_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN, seed
from gotoassist_api_server.testing import ServerHandle, running_server
from gotoassist_recordings.token_cache import VARIABLE_PREFIX

FIRST_DAY = "2026-11-13"
SECOND_DAY = "2026-11-14"
DAY_COUNT = 600
#: Where Airflow keeps the kept credentials on purpose; every other table must be free of them.
VARIABLE_TABLE = "variable"


@pytest.fixture
def rotating_server(tmp_path: Path) -> Iterator[ServerHandle]:
    db_path = tmp_path / "api.sqlite"
    seed(db_path, day=FIRST_DAY, count=DAY_COUNT, neighbours=0, ready_fraction=0.1, seed=21)
    seed(db_path, day=SECOND_DAY, count=DAY_COUNT, neighbours=0, ready_fraction=0.1, seed=22)
    with running_server(db_path, transcode_delay=0.5, rotate_refresh_tokens=True) as server:
        yield server


def _issued_secrets(server: ServerHandle) -> set[str]:
    """Every credential the server ever accepted or handed out: the seeded ones and all issued."""
    with sqlite3.connect(server.db_path) as db:
        refresh_tokens = {row[0] for row in db.execute("SELECT token FROM refresh_tokens")}
        access_tokens = {row[0] for row in db.execute("SELECT token FROM access_tokens")}
    return {DEFAULT_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN} | refresh_tokens | access_tokens


def _active_refresh_tokens(server: ServerHandle) -> set[str]:
    with sqlite3.connect(server.db_path) as db:
        return {row[0] for row in db.execute("SELECT token FROM refresh_tokens WHERE revoked_at IS NULL")}


def _stored_text(home: AirflowHome) -> dict[str, str]:
    """Everything Airflow wrote, as text by where it lives: log files and metadata tables."""
    found = {
        str(path.relative_to(home.path)): path.read_text(errors="replace")
        for path in (home.path / "logs").rglob("*")
        if path.is_file()
    }
    with sqlite3.connect(home.path / "airflow.db") as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            if table != VARIABLE_TABLE:
                found[f"table {table}"] = "\n".join(
                    repr(row) for row in db.execute(f'SELECT * FROM "{table}"')
                )
    return found


def _nightly_run(home: AirflowHome, day: str) -> str:
    run_date = pendulum.parse(day).add(days=1).to_date_string()
    finished = home.run("dags", "test", "gotoassist_recordings", run_date)
    output = finished.stdout + finished.stderr
    assert finished.returncode == 0, output[-5000:]
    assert (
        "state=success" in output or "DagRunState.SUCCESS" in output or "success" in output.splitlines()[-1]
    )
    return output


def test_a_rotated_refresh_token_is_kept_for_the_next_run_and_no_secret_leaks(
    rotating_server: ServerHandle, airflow_home: AirflowHome
) -> None:
    airflow_home.environment["AIRFLOW_CONN_GOTOASSIST_DEFAULT"] = airflow_connection_json(
        rotating_server.base_url
    )
    airflow_home.environment["GOTOASSIST_READY_POKE_INTERVAL"] = "0.5"

    first_output = _nightly_run(airflow_home, FIRST_DAY)

    # The connection's refresh token has been rotated away: only the kept one works now.
    active = _active_refresh_tokens(rotating_server)
    assert DEFAULT_REFRESH_TOKEN not in active
    kept = airflow_home.run("variables", "get", f"{VARIABLE_PREFIX}gotoassist_default")
    assert kept.returncode == 0, kept.stderr[-2000:]
    assert json.loads(kept.stdout)["refresh_token"] in active

    second_output = _nightly_run(airflow_home, SECOND_DAY)

    for day in (FIRST_DAY, SECOND_DAY):
        summary = rotating_server.stats(day=day)["day"]
        assert summary["archived"] == DAY_COUNT
        assert summary["archived_before_ready"] == 0

    secrets = _issued_secrets(rotating_server)
    assert len(secrets) > 3, "the runs must have obtained access tokens for the search to mean something"
    places = {"output of the first run": first_output, "output of the second run": second_output}
    places |= _stored_text(airflow_home)
    assert any("task_instance" in place for place in places)
    leaks = sorted(
        f"{place}: {secret[:4]}…" for place, text in places.items() for secret in secrets if secret in text
    )
    assert leaks == []
