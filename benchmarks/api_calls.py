"""How many API calls the package makes to take a day through its lifecycle, against the least possible.

For each day size the local API server is seeded afresh, and the operators of the nightly DAG run one
after the other as their tasks would (list, then per chunk: transcode and wait in the readiness
trigger until ready, then archive), through the hooks and over HTTP. The server's call log gives the
figures. The least possible is ``ceil(n / 500)`` calls per action, and one list call for an empty day.

Run it from the project root::

    .venv/bin/python -m benchmarks.api_calls
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import logging
import math
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pendulum

from gotoassist_api_server.connection import airflow_connection_json
from gotoassist_api_server.seeding import seed
from gotoassist_api_server.testing import ServerHandle, running_server

DAY = "2026-11-13"
DAY_WINDOW = (pendulum.datetime(2026, 11, 13), pendulum.datetime(2026, 11, 14))
SIZES = (0, 1, 500, 501, 10_000, 100_000)
CONN_ID = "gotoassist_benchmark"
ACTIONS = ("list", "transcode", "urls", "archive")
#: How long the server takes to transcode, and when the readiness trigger first checks after asking.
TRANSCODE_SECONDS = 0.2
READY_POLL_SECONDS = 0.5


@contextlib.contextmanager
def seeded_server(count: int, workdir: Path, **settings) -> Iterator[ServerHandle]:
    """A local API server on a new database holding ``count`` recordings of :data:`DAY`."""
    db_path = workdir / f"api-{count}.sqlite"
    seed(db_path, day=DAY, count=count, neighbours=5, reset=True)
    with running_server(db_path, **settings) as server:
        yield server


def use_connection(server: ServerHandle, **extra) -> str:
    """Point the ``gotoassist_benchmark`` connection at ``server``; return its ID."""
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = airflow_connection_json(server.base_url, **extra)
    return CONN_ID


def successful_calls(server: ServerHandle) -> dict[str, int]:
    """Calls per endpoint that the server answered with success."""
    calls = server.stats()["calls"]
    return {
        endpoint: sum(
            counts["calls"]
            for status, counts in calls.get(endpoint, {}).get("by_status", {}).items()
            if str(status).startswith("2")
        )
        for endpoint in ACTIONS
    }


def process_day(conn_id: str) -> int:
    """Take :data:`DAY` through list, transcode and wait, and archive, as the DAG's tasks would.

    Every chunk to transcode is sent first and then waited for, all at once, in its readiness
    trigger, as Airflow's scheduler and triggerer run them; chunks ready when listed go straight
    to archiving.

    :return: the number of chunks.
    """
    from airflow.sdk.exceptions import TaskDeferred
    from airflow.triggers.base import TaskSuccessEvent

    from gotoassist_recordings.operators.recordings import (
        GoToAssistArchiveRecordingsOperator,
        GoToAssistListRecordingsOperator,
        GoToAssistTranscodeRecordingsOperator,
    )

    chunks = GoToAssistListRecordingsOperator(
        task_id="list_recordings",
        gotoassist_conn_id=conn_id,
        window_start=DAY_WINDOW[0],
        window_end=DAY_WINDOW[1],
    ).execute({})
    triggers = []
    for chunk in chunks:
        if chunk["already_ready"]:
            continue
        try:
            GoToAssistTranscodeRecordingsOperator(
                task_id="transcode",
                gotoassist_conn_id=conn_id,
                recording_ids=chunk["recording_ids"],
                wait_until_ready=True,
                poll_interval=READY_POLL_SECONDS,
            ).execute({})
        except TaskDeferred as deferred:
            triggers.append(deferred.trigger)

    async def wait_for_all() -> list[object]:
        async def last_event(trigger) -> object:
            return [event async for event in trigger.run()][-1]

        return await asyncio.gather(*(last_event(trigger) for trigger in triggers))

    for event in asyncio.run(wait_for_all()):
        if not isinstance(event, TaskSuccessEvent):
            raise AssertionError(f"a chunk was not ready: {event}")
    for chunk in chunks:
        GoToAssistArchiveRecordingsOperator(
            task_id="archive", gotoassist_conn_id=conn_id, recording_ids=chunk["recording_ids"]
        ).execute({})
    return len(chunks)


@dataclass(frozen=True)
class Efficiency:
    count: int
    chunks: int
    calls: dict[str, int]

    @property
    def minimum(self) -> int:
        """The least calls of each action: one per 500 recordings, one list call at least."""
        return math.ceil(self.count / 500)

    def row(self) -> str:
        least = {action: self.minimum for action in ACTIONS} | {"list": max(1, self.minimum)}
        cells = [f"{self.calls[action]:>6} / {least[action]:<5}" for action in ACTIONS]
        total, total_least = sum(self.calls.values()), sum(least.values())
        ratio = total / total_least if total_least else 1.0
        return f"{self.count:>8}  {'  '.join(cells)}  {total:>6} / {total_least:<6} {ratio:>5.2f}"


def measure(count: int, workdir: Path) -> Efficiency:
    # A generous budget: this counts calls; the end-to-end benchmark measures time at the real limit.
    with seeded_server(count, workdir, transcode_delay=TRANSCODE_SECONDS) as server:
        conn_id = use_connection(server, max_requests_per_second=1000, rate_limit_store="memory")
        # The operators log as they would in a task; a table is all this prints.
        with contextlib.redirect_stdout(io.StringIO()):
            chunks = process_day(conn_id)
        day = server.stats(day=DAY)["day"]
        if day["archived"] != count or day["archived_before_ready"] or day["touched_on_other_days"]:
            raise AssertionError(f"n={count}: the day was not processed as it must be: {day}")
        return Efficiency(count, chunks, successful_calls(server))


HEADER = (
    f"{'n':>8}  {'list / min':>14}  {'transcode / min':>14}  {'urls / min':>14}  {'archive / min':>14}"
    f"  {'total / min':>15} {'ratio':>5}"
)
NOTE = (
    "urls: the readiness check after transcoding and the re-check the archive step makes before it "
    "archives, so at least 2 per transcoded chunk where the minimum counts 1."
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="recordings in the day")
    arguments = parser.parse_args(argv)
    logging.disable(logging.WARNING)

    print("API calls per day: made / least possible")
    print(HEADER)
    print("-" * len(HEADER))
    with tempfile.TemporaryDirectory(prefix="gotoassist-benchmark-") as workdir:
        for count in arguments.sizes:
            print(measure(count, Path(workdir)).row(), flush=True)
    print(NOTE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
