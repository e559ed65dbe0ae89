"""Wall time of a whole day's recordings: Airflow's distributed engine, a plain script, the rate-limit floor.

For each day size, in one run and one after the other on the same machine:

- ``distributed``: the stack of ``scripts/distributed/`` (PostgreSQL, Redis, scheduler, triggerer and
  Celery workers) started afresh with the day seeded; the nightly DAG is triggered for the day through
  the REST API, as a person would, and timed from the run being queued until it ended, by Airflow's
  own ``queued_at`` and ``end_date``;
- ``sequential``: :mod:`benchmarks.sequential_script` on a freshly seeded local server with the same
  settings, in each of its orders;
- ``floor``: the calls the distributed run made, divided by the rate limit: no client of the API can
  make those calls faster.

Every server answers each call after ``--latency`` seconds and refuses calls beyond ``--rate-limit``
per second with 429, as the real API does; every client keeps to 10 calls per second itself. The
busiest second is counted from the server's own call log, over any span of one second, refused calls
included and token requests (which go to the authentication service) left out. Each way must archive
every recording of the day, none before it was ready, and touch no other day, or the benchmark stops
with what went wrong.

The two days take about 55 minutes, most of it the per-chunk script at 100,000 recordings, which
waits out the transcoding of each chunk in turn. Run it from the project root (the stack needs root, like
``scripts/distributed/start``)::

    .venv/bin/python -m benchmarks.end_to_end --sizes 10000 100000
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pendulum
import requests

from benchmarks.sequential_script import ORDERS, run_script
from gotoassist_api_server.connection import airflow_connection_json
from gotoassist_api_server.faults import RECORDINGS_API_ENDPOINTS, FaultPlan
from gotoassist_api_server.seeding import seed
from gotoassist_api_server.testing import running_server

ROOT = Path(__file__).resolve().parents[1]
STACK_SCRIPT = ROOT / "scripts" / "distributed" / "stack.py"
#: Inside the repository: PostgreSQL runs as the postgres user, who cannot enter temporary folders.
DEFAULT_STATE_DIR = ROOT / ".benchmark-stack"
DAG_ID = "gotoassist_recordings"
CONN_ID = "gotoassist_benchmark"
#: Far enough back that the scheduled run the stack makes when the DAG is unpaused (yesterday, and
#: the days its look-back sweeps) never reaches the seeded day or its neighbours.
DAY = pendulum.today("UTC").subtract(days=20).date()
POLL_SECONDS = 2.0
RUN_TIMEOUT_SECONDS = 4 * 3600


class BenchmarkError(RuntimeError):
    """A way of processing the day failed or left the day in a wrong state."""


@dataclass
class Timing:
    """One way of taking the day through its lifecycle, and what the server saw of it."""

    count: int
    way: str
    seconds: float
    calls: int
    refused: int
    busiest_second: int
    archived: int


# What the server saw ------------------------------------------------------------------------------


def busiest_second(moments: list[float]) -> int:
    """The most calls that arrived within any one second."""
    moments = sorted(moments)
    most, first = 0, 0
    for last, moment in enumerate(moments):
        while moment - moments[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def _call_log(db_path: Path, since: float) -> list[tuple[float, int]]:
    """Arrival time and status of every recordings API call the server logged from ``since`` on.

    Token requests are left out: they go to the authentication service, which the API's rate limit
    does not cover.
    """
    endpoints = sorted(RECORDINGS_API_ENDPOINTS)
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as connection:
        return connection.execute(
            f"SELECT called_at, status FROM calls WHERE called_at >= ? "
            f"AND endpoint IN ({', '.join('?' * len(endpoints))}) ORDER BY called_at",
            (since, *endpoints),
        ).fetchall()


def _checked_day(count: int, way: str, day: dict[str, Any]) -> int:
    """Return how many were archived, after making sure the day was processed as it must be."""
    if day["archived"] != count or day["archived_before_ready"] or day["touched_on_other_days"]:
        raise BenchmarkError(f"{way} left the day of {count} recordings in a wrong state: {day}")
    return day["archived"]


def _timing(count: int, way: str, seconds: float, db_path: Path, since: float, day: dict[str, Any]) -> Timing:
    log = _call_log(db_path, since)
    return Timing(
        count=count,
        way=way,
        seconds=round(seconds, 1),
        calls=sum(1 for _, status in log if 200 <= status < 300),
        refused=sum(1 for _, status in log if status == 429),
        busiest_second=busiest_second([moment for moment, _ in log]),
        archived=_checked_day(count, way, day),
    )


# The distributed stack ----------------------------------------------------------------------------


class Stack:
    """A stack started by ``scripts/distributed/stack.py``, driven through Airflow's REST API."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.description = json.loads((state_dir / "stack.json").read_text())
        password_file = Path(self.description["ui_password_file"])
        user = self.description["ui_user"]
        answer = requests.post(
            f"{self.description['airflow_url']}/auth/token",
            json={"username": user, "password": json.loads(password_file.read_text())[user]},
            timeout=30,
        )
        answer.raise_for_status()
        self._token = answer.json()["access_token"]

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = requests.request(
            method,
            f"{self.description['airflow_url']}/api/v2/{path}",
            headers={"Authorization": f"Bearer {self._token}"},
            timeout=30,
            **kwargs,
        )
        if not answer.ok:
            raise BenchmarkError(f"{method} {path} answered {answer.status_code}: {answer.text}")
        return answer.json()

    def day_summary(self, day: str) -> dict[str, Any]:
        answer = requests.get(
            f"{self.description['gotoassist_api_url']}/_admin/stats", params={"day": day}, timeout=60
        )
        answer.raise_for_status()
        return answer.json()["day"]

    def wait_until_idle(self) -> None:
        """Unpause the DAG and let the scheduled run that unpausing makes finish before timing ours."""
        deadline = time.monotonic() + 300
        while True:
            try:
                self.api("PATCH", f"dags/{DAG_ID}", json={"is_paused": False})
                break
            except BenchmarkError:
                # Not parsed yet.
                if time.monotonic() > deadline:
                    raise
                time.sleep(POLL_SECONDS)
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            runs = self.api("GET", f"dags/{DAG_ID}/dagRuns")["dag_runs"]
            if any(run["state"] not in ("success", "failed") for run in runs):
                quiet_since = time.monotonic()
            elif runs or time.monotonic() - quiet_since > 30:
                return
            time.sleep(POLL_SECONDS)
        raise BenchmarkError("the scheduled run made on unpausing did not finish within 300 s")

    def run_day(self, day: str) -> float:
        """Trigger the DAG for ``day``, wait until the run ends, and return its wall time in seconds."""
        run = self.api(
            "POST", f"dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": {"first_day": day}}
        )
        began = time.monotonic()
        while run["state"] not in ("success", "failed"):
            if time.monotonic() - began > RUN_TIMEOUT_SECONDS:
                raise BenchmarkError(f"run {run['dag_run_id']} did not end in {RUN_TIMEOUT_SECONDS} s")
            time.sleep(POLL_SECONDS)
            run = self.api("GET", f"dags/{DAG_ID}/dagRuns/{run['dag_run_id']}")
        if run["state"] != "success":
            raise BenchmarkError(f"run {run['dag_run_id']} failed; the logs are in {self.state_dir / 'logs'}")
        return (pendulum.parse(run["end_date"]) - pendulum.parse(run["queued_at"])).total_seconds()


def _stack_command(command: str, state_dir: Path, *arguments: str) -> None:
    finished = subprocess.run(
        [sys.executable, str(STACK_SCRIPT), command, "--state-dir", str(state_dir), *arguments],
        capture_output=True,
        text=True,
        check=False,
    )
    if finished.returncode != 0:
        raise BenchmarkError(f"stack {command} failed:\n{finished.stdout}\n{finished.stderr}")


def time_distributed(count: int, arguments: argparse.Namespace) -> Timing:
    """Start a fresh stack holding the day, run the DAG for it, and stop the stack."""
    state_dir = arguments.state_dir.resolve()
    _stack_command(
        "start",
        state_dir,
        "--reset",
        "--free-ports",
        f"--workers={arguments.workers}",
        f"--pool-slots={arguments.pool_slots}",
        f"--day={DAY}",
        f"--count={count}",
        f"--transcode-delay={arguments.transcode_delay}",
        f"--latency={arguments.latency}",
        f"--rate-limit={arguments.rate_limit}",
        f"--env=GOTOASSIST_READY_POKE_INTERVAL={arguments.poll_interval}",
    )
    try:
        stack = Stack(state_dir)
        stack.wait_until_idle()
        since = time.time()
        seconds = stack.run_day(str(DAY))
        return _timing(
            count,
            f"distributed, {arguments.workers} workers, pool {arguments.pool_slots}",
            seconds,
            Path(stack.description["gotoassist_api_db"]),
            since,
            stack.day_summary(str(DAY)),
        )
    finally:
        _stack_command("stop", state_dir)


# The sequential script ----------------------------------------------------------------------------


def time_sequential(count: int, order: str, arguments: argparse.Namespace, workdir: Path) -> Timing:
    """Run the plain script in ``order`` against a freshly seeded server with the stack's settings."""
    db_path = workdir / f"sequential-{count}-{order}.sqlite"
    seed(db_path, day=str(DAY), count=count, reset=True)
    with running_server(
        db_path,
        transcode_delay=arguments.transcode_delay,
        latency=arguments.latency,
        faults=FaultPlan(rate_limit=arguments.rate_limit),
    ) as server:
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = airflow_connection_json(
            server.base_url, rate_limit_store="memory"
        )
        since = time.time()
        began = time.monotonic()
        # The hook logs every call as it would in a task; the table is all this prints.
        with contextlib.redirect_stdout(io.StringIO()):
            run_script(CONN_ID, DAY, order=order, poll_interval=arguments.poll_interval)
        seconds = time.monotonic() - began
        return _timing(
            count, f"sequential, {order}", seconds, db_path, since, server.stats(day=str(DAY))["day"]
        )


# Report -------------------------------------------------------------------------------------------


def print_table(timings: list[Timing], rate_limit: int) -> None:
    header = (
        f"{'n':>7}  {'way':<32} {'seconds':>8} {'calls':>6} {'busiest 1 s':>11} {'429s':>5} "
        f"{'archived':>8} {'÷ floor':>8} {'÷ per-chunk':>11}"
    )
    print(header)
    print("-" * len(header))
    for count in dict.fromkeys(timing.count for timing in timings):
        rows = [timing for timing in timings if timing.count == count]
        distributed = next((row for row in rows if row.way.startswith("distributed")), rows[0])
        floor = distributed.calls / rate_limit
        per_chunk = next((row for row in rows if row.way == "sequential, per-chunk"), None)
        print(f"{count:>7}  {'rate-limit floor':<32} {floor:>8.1f} {distributed.calls:>6}")
        for row in rows:
            versus = f"{row.seconds / per_chunk.seconds:>11.2f}" if per_chunk else f"{'':>11}"
            print(
                f"{count:>7}  {row.way:<32} {row.seconds:>8.1f} {row.calls:>6} {row.busiest_second:>11} "
                f"{row.refused:>5} {row.archived:>8} {row.seconds / floor:>8.1f} {versus}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[10_000, 100_000], help="recordings in the day"
    )
    parser.add_argument(
        "--ways",
        nargs="+",
        choices=["distributed", *ORDERS],
        default=["distributed", *ORDERS],
        help="what to time: the stack and the script's orders (default: all)",
    )
    parser.add_argument("--latency", type=float, default=0.1, help="server latency in seconds (default: 0.1)")
    parser.add_argument("--rate-limit", type=int, default=10, help="calls per second (default: %(default)s)")
    parser.add_argument(
        "--transcode-delay",
        type=float,
        default=10.0,
        help="seconds the server takes to transcode a recording (default: %(default)s)",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=5.0,
        help=(
            "seconds from a chunk's transcode request to its first readiness check in the DAG, and "
            "between the script's checks (default: 5)"
        ),
    )
    parser.add_argument("--workers", type=int, default=2, help="Celery workers (default: %(default)s)")
    parser.add_argument(
        "--pool-slots",
        type=int,
        default=8,
        help="slots of the stack's gotoassist_api pool (default: %(default)s)",
    )
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="the stack's state folder")
    parser.add_argument("--json", type=Path, help="also write the figures to this file, as JSON")
    arguments = parser.parse_args(argv)
    logging.disable(logging.WARNING)

    print(
        f"One day of n recordings, {arguments.latency * 1000:.0f} ms server latency, "
        f"{arguments.rate_limit} calls/s at most (429 beyond), transcoding {arguments.transcode_delay:g} s, "
        f"readiness checked {arguments.poll_interval:g} s after transcoding and on",
        flush=True,
    )
    timings: list[Timing] = []
    with tempfile.TemporaryDirectory(prefix="gotoassist-benchmark-") as workdir:
        for count in arguments.sizes:
            for way in arguments.ways:
                if way == "distributed":
                    timing = time_distributed(count, arguments)
                else:
                    timing = time_sequential(count, way, arguments, Path(workdir))
                print(f"  n={count}: {timing.way}: {timing.seconds:.1f} s", flush=True)
                timings.append(timing)
    print()
    print_table(timings, arguments.rate_limit)
    if arguments.json:
        arguments.json.write_text(json.dumps([asdict(timing) for timing in timings], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
