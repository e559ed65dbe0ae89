"""The nightly DAG on Airflow's distributed engine, for real, without Docker.

``scripts/distributed/start`` brings up PostgreSQL, Redis, the local GoToAssist API server, the
Airflow API server, scheduler, DAG processor, triggerer and two Celery workers as processes of their
own; the test triggers a run through the REST API as a user would, waits for it, checks what the API
server saw and which worker ran which task, and stops everything, also when something failed.

The stack lives in ``.distributed-tests/`` in the repository (PostgreSQL runs as the postgres user,
who cannot read pytest's temporary folders), on free ports, so a stack started by hand in
``.distributed/`` is left alone. It needs root and the Debian packages that ``make test`` installs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pendulum
import pytest
import requests
from tests.conftest import ROOT
from tests.distributed.conftest import START, STOP

pytestmark = [
    pytest.mark.skipif(
        os.geteuid() != 0, reason="the stack starts PostgreSQL as the postgres user, which needs root"
    ),
    # The first test also waits for the stack to start and the run to end.
    pytest.mark.timeout(1200),
]

STATE_DIR = ROOT / ".distributed-tests"
DAG_ID = "gotoassist_recordings"
WORKERS = ("airflow-worker-1", "airflow-worker-2")
#: Three chunks of at most 500 recording IDs: more tasks at once than one worker takes from the queue.
COUNT = 1234
CHUNKS = 3
TRANSCODE_DELAY = 2.0
#: Far enough back that the scheduled run Airflow makes when the DAG is unpaused (yesterday, and the
#: seven days its look-back sweeps) never reaches the seeded day or its neighbours.
DAY = pendulum.today("UTC").subtract(days=20)
START_TIMEOUT = 300
RUN_TIMEOUT = 600
POLL_SECONDS = 2.0

_WORKLOAD = re.compile(
    r"Executing workload in Celery: .*?task_id='(?P<task_id>[^']+)', dag_id='(?P<dag_id>[^']+)', "
    r"run_id='(?P<run_id>[^']+)', try_number=\d+, .*?map_index=(?P<map_index>-?\d+)"
)


@dataclass
class Stack:
    """A running stack, as ``start`` described it in ``stack.json``."""

    description: dict[str, Any]
    token: str

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the Airflow REST API as the stack's UI user; fail on an error status."""
        response = requests.request(
            method,
            f"{self.description['airflow_url']}/api/v2/{path}",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
            **kwargs,
        )
        assert response.ok, f"{method} {path} answered {response.status_code}: {response.text}"
        return response.json()

    def server_stats(self, day: str) -> dict[str, Any]:
        response = requests.get(
            f"{self.description['gotoassist_api_url']}/_admin/stats", params={"day": day}, timeout=30
        )
        response.raise_for_status()
        return response.json()

    def log(self, service: str) -> Path:
        return Path(self.description["services"][service]["log"])


def _tails(lines: int = 25) -> str:
    """The end of every service's log, to explain a failure."""
    logs = sorted((STATE_DIR / "logs").glob("*.log"))
    return "\n".join(
        f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) for log in logs
    )


def _stop() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(STOP), "--state-dir", str(STATE_DIR)], capture_output=True, text=True, timeout=180, check=False
    )


def _login(description: dict[str, Any]) -> str:
    password = json.loads(Path(description["ui_password_file"]).read_text())[description["ui_user"]]
    response = requests.post(
        f"{description['airflow_url']}/auth/token",
        json={"username": description["ui_user"], "password": password},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["access_token"]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """Start the stack with the project's own script, and stop all of it afterwards, whatever happened."""
    started = subprocess.run(
        [
            str(START),
            "--state-dir",
            str(STATE_DIR),
            "--reset",
            "--free-ports",
            "--workers",
            str(len(WORKERS)),
            "--day",
            DAY.to_date_string(),
            "--count",
            str(COUNT),
            "--transcode-delay",
            str(TRANSCODE_DELAY),
            # Readiness checks a second apart, not the production five minutes.
            "--env",
            "GOTOASSIST_READY_POKE_INTERVAL=1",
        ],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )
    try:
        if started.returncode != 0:
            pytest.fail(f"start failed:\n{started.stdout}\n{started.stderr}\n{_tails()}")
        description = json.loads((STATE_DIR / "stack.json").read_text())
        print(
            f"stack started in {description['timings_seconds']['total']} s: {description['timings_seconds']}"
        )
        yield Stack(description, _login(description))
    finally:
        stopped = _stop()
        print(stopped.stdout, stopped.stderr)
        assert stopped.returncode == 0, f"stop failed:\n{stopped.stdout}\n{stopped.stderr}"


def _wait_for_dag(stack: Stack) -> None:
    """Wait until the DAG processor has parsed the DAG and the API server knows it."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        response = requests.get(
            f"{stack.description['airflow_url']}/api/v2/dags/{DAG_ID}",
            headers={"Authorization": f"Bearer {stack.token}"},
            timeout=30,
        )
        if response.ok:
            return
        time.sleep(POLL_SECONDS)
    pytest.fail(f"the DAG {DAG_ID} did not appear within 120 s:\n{_tails()}")


def _trigger_and_wait(stack: Stack) -> dict[str, Any]:
    """Trigger the DAG for the seeded day and wait until the run has finished."""
    stack.api("PATCH", f"dags/{DAG_ID}", json={"is_paused": False})
    run = stack.api(
        "POST",
        f"dags/{DAG_ID}/dagRuns",
        # As a person triggers it: no logical date, the day named in the run's configuration.
        json={"logical_date": None, "conf": {"first_day": DAY.to_date_string()}},
    )
    began = time.monotonic()
    while time.monotonic() - began < RUN_TIMEOUT:
        run = stack.api("GET", f"dags/{DAG_ID}/dagRuns/{run['dag_run_id']}")
        if run["state"] in ("success", "failed"):
            print(f"run {run['dag_run_id']} ended in {run['state']} after {time.monotonic() - began:.0f} s")
            return run
        time.sleep(POLL_SECONDS)
    pytest.fail(f"the run did not finish within {RUN_TIMEOUT} s:\n{_tails()}")


def _tasks_run_by_worker(stack: Stack, run_id: str) -> dict[str, set[tuple[str, int]]]:
    """Read from each worker's log which task instances of the run it executed."""
    executed: dict[str, set[tuple[str, int]]] = {}
    for worker in WORKERS:
        matches = (_WORKLOAD.search(line) for line in stack.log(worker).read_text().splitlines())
        executed[worker] = {
            (match["task_id"], int(match["map_index"]))
            for match in matches
            if match and match["dag_id"] == DAG_ID and match["run_id"] == run_id
        }
    return executed


@pytest.fixture(scope="module")
def finished_run(stack: Stack) -> dict[str, Any]:
    _wait_for_dag(stack)
    return _trigger_and_wait(stack)


def test_the_triggered_run_succeeds_through_celery(stack: Stack, finished_run: dict[str, Any]) -> None:
    task_instances = stack.api(
        "GET", f"dags/{DAG_ID}/dagRuns/{finished_run['dag_run_id']}/taskInstances", params={"limit": 100}
    )["task_instances"]
    states = {(ti["task_id"], ti["map_index"]): ti["state"] for ti in task_instances}

    assert finished_run["state"] == "success", f"{states}\n{_tails()}"
    assert set(states.values()) == {"success"}, states
    assert sorted(map_index for task_id, map_index in states if task_id == "process_chunk.archive") == list(
        range(CHUNKS)
    )


def test_every_recording_of_the_day_is_archived_and_nothing_else_touched(
    stack: Stack, finished_run: dict[str, Any]
) -> None:
    day = stack.server_stats(DAY.to_date_string())["day"]

    assert day["total"] == COUNT
    assert day["archived"] == COUNT
    assert day["unarchived"] == 0
    assert day["archived_before_ready"] == 0
    assert day["touched_on_other_days"] == 0


def test_the_tasks_ran_on_both_workers(stack: Stack, finished_run: dict[str, Any]) -> None:
    run_id = finished_run["dag_run_id"]
    task_instances = stack.api("GET", f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", params={"limit": 100})[
        "task_instances"
    ]
    executed = _tasks_run_by_worker(stack, run_id)

    assert all(executed.values()), f"tasks per worker: {executed}"
    # Every task instance of the run went through a Celery worker.
    assert {(ti["task_id"], ti["map_index"]) for ti in task_instances} <= set().union(*executed.values())
