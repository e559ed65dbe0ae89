"""A whole night on a misbehaving server: nothing is lost, nothing is archived early.

3,000 recordings on one day. Every endpoint fails one call in five with a transient fault (429 with
and without ``Retry-After``, 500, 503, an HTML error page, a dropped connection, and faults that
strike after the server already acted), some calls are slow, access tokens expire every 5 seconds,
and the server restarts once while the run is under way. The run must still end in success.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.utils.state import DagRunState
from tests.conftest import DAGS_FOLDER

from gotoassist_api_server.connection import airflow_connection_json
from gotoassist_api_server.faults import FaultPlan
from gotoassist_api_server.seeding import SeedResult, seed
from gotoassist_api_server.testing import ServerHandle, running_server

DAY = "2026-11-13"
DAY_COUNT = 3000
TOKEN_TTL_SECONDS = 5
#: One call in five fails transiently, on every endpoint the run uses.
TRANSIENT_FAULTS = {
    "too-many-requests": 0.03,
    "too-many-requests-no-retry-after": 0.03,
    "server-error": 0.03,
    "unavailable": 0.03,
    "html-error": 0.02,
    "drop": 0.02,
    "server-error-after": 0.02,
    "drop-after": 0.02,
}
FAULT_PLAN = FaultPlan(
    probabilities={
        endpoint: {**TRANSIENT_FAULTS, "slow": 0.03}
        for endpoint in ("token", "list", "transcode", "archive", "urls")
    },
    seed=5,
    slow_seconds=0.5,
    retry_after_seconds=1,
)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SeedResult]:
    path = tmp_path_factory.mktemp("no-loss") / "api.sqlite"
    return path, seed(path, day=DAY, count=DAY_COUNT, neighbours=20, ready_fraction=0.1, seed=8)


@pytest.fixture(scope="module")
def faulty_server(seeded: tuple[Path, SeedResult]) -> Iterator[ServerHandle]:
    with running_server(
        seeded[0], transcode_delay=2.0, token_ttl=TOKEN_TTL_SECONDS, faults=FAULT_PLAN
    ) as server:
        yield server


def _restart_once_transcoding_started(
    server: ServerHandle, done: threading.Event, restarted: threading.Event
) -> None:
    """Restart the server as soon as the run has made its first transcode call."""
    while not done.is_set():
        calls = server.stats()["calls"].get("transcode", {}).get("calls", 0)
        if calls:
            server.restart()
            restarted.set()
            return
        time.sleep(0.2)


def _successful(figures: dict[str, Any], endpoint: str) -> int:
    by_status = figures["calls"].get(endpoint, {}).get("by_status", {})
    return sum(counts["calls"] for status, counts in by_status.items() if str(status).startswith("2"))


def test_a_faulty_night_loses_nothing(
    faulty_server: ServerHandle,
    airflow_db: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_GOTOASSIST_DEFAULT", airflow_connection_json(faulty_server.base_url))
    monkeypatch.setenv("GOTOASSIST_READY_POKE_INTERVAL", "1")
    dag = DagBag(dag_folder=str(DAGS_FOLDER)).dags["gotoassist_recordings"]
    done, restarted = threading.Event(), threading.Event()
    restarter = threading.Thread(
        target=_restart_once_transcoding_started, args=(faulty_server, done, restarted)
    )
    restarter.start()
    started = time.monotonic()
    try:
        run = dag.test(logical_date=pendulum.parse(DAY).add(days=1))
    finally:
        done.set()
        restarter.join()
    elapsed = time.monotonic() - started

    figures = faulty_server.stats(day=DAY)
    day = figures["day"]
    assert run.state == DagRunState.SUCCESS
    assert restarted.is_set(), "the server was to restart while the run was under way"
    assert day["listed"] == DAY_COUNT
    assert day["archived"] == DAY_COUNT
    assert day["archived_before_ready"] == 0
    assert day["touched_on_other_days"] == 0
    faults = figures["faults"]
    calls = sum(endpoint["calls"] for endpoint in figures["calls"].values())
    assert faults["injected"] >= 10, "too few faults were injected for the run to prove anything"
    assert faults["injected"] >= 0.1 * calls, "the fault plan did not strike about one call in five"
    assert _successful(figures, "token") > 1, "tokens expiring every few seconds must have been renewed"

    with capsys.disabled():
        kinds = {
            kind: sum(by_kind.get(kind, 0) for by_kind in faults["by_endpoint"].values())
            for kind in sorted({kind for by_kind in faults["by_endpoint"].values() for kind in by_kind})
        }
        print(
            f"\n{faults['injected']} faults injected in {calls} calls and survived in {elapsed:.0f} s, "
            "plus one server "
            f"restart; {_successful(figures, 'token')} access tokens obtained: "
            + ", ".join(f"{kind} {count}" for kind, count in kinds.items())
        )
