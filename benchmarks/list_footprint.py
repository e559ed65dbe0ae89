"""What the list step holds in memory at 100,000 recordings, and how much XCom each mapped task reads.

The local API server is seeded with a day of recordings and the list operator lists it over HTTP, as its
task would, under ``tracemalloc``. Its return value is what Airflow stores as XCom: one chunk
descriptor per mapped task. A mapped task needs only its own descriptor, but Airflow 3.3 resolves
``expand_kwargs`` by pulling the whole returned list and picking the task's item from it, so each
mapped task instance reads all of it (the API server's access log shows the full pulls).

Run it from the project root::

    .venv/bin/python -m benchmarks.list_footprint
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import sys
import tempfile
import tracemalloc
from pathlib import Path

from benchmarks.api_calls import DAY_WINDOW, seeded_server, use_connection
from benchmarks.report import print_figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="recordings in the day")
    arguments = parser.parse_args(argv)

    from gotoassist_recordings.operators.recordings import GoToAssistListRecordingsOperator

    with (
        tempfile.TemporaryDirectory(prefix="gotoassist-benchmark-") as workdir,
        seeded_server(arguments.count, Path(workdir)) as server,
    ):
        operator = GoToAssistListRecordingsOperator(
            task_id="list_recordings",
            gotoassist_conn_id=use_connection(
                server, rate_limit_store="memory", max_requests_per_second=1000
            ),
            window_start=DAY_WINDOW[0],
            window_end=DAY_WINDOW[1],
        )
        with contextlib.redirect_stdout(io.StringIO()):
            operator.hook.tokens.get()  # the connection and the token, before measuring
            tracemalloc.start()
            chunks = operator.execute({})
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()

    sizes = [len(json.dumps(chunk).encode()) for chunk in chunks]
    listed = sum(len(chunk["recording_ids"]) for chunk in chunks)
    rows = [
        ("recordings listed", f"{listed:,}"),
        ("chunks (mapped tasks)", f"{len(chunks):,}"),
        ("peak memory of the list step", f"{peak / 2**20:,.1f} MiB"),
        ("XCom returned by the list step", f"{sum(sizes) / 2**20:,.2f} MiB"),
        (
            "XCom of one mapped task's chunk",
            f"{statistics.mean(sizes) / 1024:,.1f} KiB on average, {max(sizes) / 1024:,.1f} KiB at most"
            if sizes
            else "none",
        ),
        ("XCom read by each mapped task", f"{sum(sizes) / 2**20:,.2f} MiB: the whole list, per pull"),
    ]
    print_figures(f"The list step at {arguments.count:,} recordings", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
