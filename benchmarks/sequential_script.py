"""A day's recordings taken through their lifecycle by a plain script, one call at a time.

This is what someone without Airflow would write with the same hook: list the day, then make the same
calls the nightly DAG makes, but one after the other in a single process. It is the yardstick of the
end-to-end benchmark, in two orders:

- ``per-chunk``: each chunk in turn is transcoded, polled until it is ready, and archived, the way
  the DAG treats one chunk, so the script waits out the transcoding of every chunk in turn;
- ``transcode-first``: every chunk is sent for transcoding first, then each is polled and archived,
  so the waits overlap; the order a careful script writer would find.

Run it against a server the ``gotoassist_default`` connection (or ``--conn-id``) points at::

    .venv/bin/python -m benchmarks.sequential_script --day 2026-11-13 --poll-interval 5
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

import pendulum

ORDERS = ("per-chunk", "transcode-first")


@dataclass
class ScriptResult:
    """What the script did."""

    listed: int = 0
    chunks: int = 0
    archived: int = 0


def run_script(
    conn_id: str,
    day: pendulum.Date,
    *,
    order: str = "per-chunk",
    poll_interval: float = 5.0,
) -> ScriptResult:
    """Take the recordings of one UTC day through transcode, the wait until ready, and archive.

    :param conn_id: the ``gotoassist`` connection to use.
    :param day: the day whose recordings to process, ``[00:00, 24:00)`` UTC.
    :param order: one of :data:`ORDERS`.
    :param poll_interval: seconds between two readiness checks of a chunk; the first comes at once.
    :raises ValueError: if ``order`` is not one of :data:`ORDERS`.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    from gotoassist_recordings.hooks.gotoassist import GoToAssistHook
    from gotoassist_recordings.models import split_into_chunks
    from gotoassist_recordings.windows import TimeWindow

    hook = GoToAssistHook(gotoassist_conn_id=conn_id)
    listed = hook.list_all_recordings(TimeWindow.for_days(day, day, "UTC"))
    to_transcode = split_into_chunks(listed.ready_for_transcode)
    result = ScriptResult(listed=listed.total, chunks=len(to_transcode))

    def wait_until_ready(chunk: list[str]) -> None:
        # A check at once, then one every poll_interval seconds.
        while len(hook.ready_recording_ids(chunk)[0]) < len(chunk):
            time.sleep(poll_interval)

    def archive(chunk: list[str]) -> None:
        hook.archive_recordings(chunk)
        result.archived += len(chunk)

    for chunk in split_into_chunks(listed.ready_for_download):
        result.chunks += 1
        archive(chunk)
    if order == "per-chunk":
        for chunk in to_transcode:
            hook.transcode_recordings(chunk)
            wait_until_ready(chunk)
            archive(chunk)
    else:
        for chunk in to_transcode:
            hook.transcode_recordings(chunk)
        for chunk in to_transcode:
            wait_until_ready(chunk)
            archive(chunk)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conn-id", default="gotoassist_default", help="connection (default: %(default)s)")
    parser.add_argument("--day", required=True, type=pendulum.Date.fromisoformat, help="UTC day, YYYY-MM-DD")
    parser.add_argument("--order", choices=ORDERS, default="per-chunk", help="(default: %(default)s)")
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=5.0,
        help="seconds between readiness checks (default: %(default)s)",
    )
    arguments = parser.parse_args(argv)
    began = time.monotonic()
    result = run_script(
        arguments.conn_id, arguments.day, order=arguments.order, poll_interval=arguments.poll_interval
    )
    print(
        f"listed {result.listed}, archived {result.archived} in {result.chunks} chunks, "
        f"{time.monotonic() - began:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
