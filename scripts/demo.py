"""Run the nightly job once, through Airflow, against a freshly seeded local GoToAssist API server.

The demo seeds 1,234 recordings on one day (and a few on each day around it), starts the local API
server, runs the ``gotoassist_recordings`` DAG for that day with ``airflow dags test`` on a SQLite
Airflow home of its own, with downloads on, stops the server and prints what the server saw and how
many recordings' files were stored.

Everything it writes goes to ``.demo/`` in the repository: the API server's database, the Airflow
home, the logs of both and the recordings' files (``.demo/recordings/YYYY/MM/DD/<recording ID>/``).
Run it with ``make demo``, or ``python scripts/demo.py --help``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pendulum

from gotoassist_api_server.connection import airflow_connection_json
from gotoassist_api_server.seeding import seed
from gotoassist_api_server.testing import ServerHandle, running_server

ROOT = Path(__file__).resolve().parent.parent
DAG_ID = "gotoassist_recordings"


def _airflow_environment(
    workdir: Path, server: ServerHandle, poke_interval: float, download_to: Path
) -> dict[str, str]:
    return {
        **os.environ,
        "AIRFLOW_HOME": str(workdir / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_GOTOASSIST_DEFAULT": airflow_connection_json(server.base_url),
        "GOTOASSIST_READY_POKE_INTERVAL": str(poke_interval),
        "GOTOASSIST_DOWNLOAD_TO": str(download_to),
    }


def _airflow(arguments: list[str], environment: dict[str, str], log_path: Path) -> None:
    """Run an ``airflow`` command, its output going to ``log_path``; exit with its tail on failure."""
    airflow = Path(sys.executable).with_name("airflow")
    with log_path.open("wb") as log:
        finished = subprocess.run(
            [str(airflow), *arguments], env=environment, stdout=log, stderr=subprocess.STDOUT, check=False
        )
    if finished.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
        sys.exit(f"`airflow {' '.join(arguments)}` failed ({finished.returncode}); see {log_path}:\n{tail}")


def _stored_files(download_to: Path) -> tuple[int, int, int]:
    """Count what is on disk: recordings with all three files, and all files and their bytes.

    Temporary ``*.partial-*`` files, which only a killed download leaves, are not counted.
    """
    files = [path for path in download_to.rglob("*") if path.is_file() and ".partial-" not in path.name]
    by_recording: dict[Path, set[str]] = {}
    for path in files:
        by_recording.setdefault(path.parent, set()).add(path.stem)
    complete = sum(1 for stems in by_recording.values() if stems >= {"recording", "events", "thumbnail"})
    return complete, len(files), sum(path.stat().st_size for path in files)


def _summary(figures: dict[str, Any], day: str, stored: tuple[int, int, int], download_to: Path) -> str:
    calls = figures["calls"]

    def made(endpoint: str) -> tuple[int, int]:
        succeeded = calls.get(endpoint, {}).get("by_status", {})
        ok = [by_status for status, by_status in succeeded.items() if str(status).startswith("2")]
        return sum(s["calls"] for s in ok), sum(s["recording_ids"] for s in ok)

    list_calls, _ = made("list")
    transcode_calls, transcode_ids = made("transcode")
    archive_calls, archive_ids = made("archive")
    summary = figures["day"]
    rows = [
        (f"recordings on {day}", summary["total"]),
        ("recordings listed", f"{summary['listed']}  ({list_calls} list calls)"),
        ("transcode calls / recording IDs", f"{transcode_calls} / {transcode_ids}"),
        ("archive calls / recording IDs", f"{archive_calls} / {archive_ids}"),
        ("recordings archived", summary["archived"]),
        ("recordings left unarchived on the day", summary["unarchived"]),
        ("recordings archived before they were ready", summary["archived_before_ready"]),
        ("recordings touched on other days", summary["touched_on_other_days"]),
        (
            "recordings with all files stored",
            f"{stored[0]}  ({stored[1]} files, {stored[2] / 1e6:.1f} MB in {download_to})",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name.ljust(width)}  {value}" for name, value in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--day",
        default=pendulum.yesterday("UTC").to_date_string(),
        help="the day whose recordings the run processes (default: yesterday, as a nightly run)",
    )
    parser.add_argument(
        "--count", type=int, default=1234, help="recordings on the day (default: %(default)s)"
    )
    parser.add_argument(
        "--transcode-delay",
        type=float,
        default=3.0,
        help="seconds the server takes to transcode a recording (default: %(default)s)",
    )
    parser.add_argument("--workdir", type=Path, default=ROOT / ".demo", help="where the demo writes")
    arguments = parser.parse_args()

    workdir: Path = arguments.workdir.resolve()
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    db_path = workdir / "gotoassist-api.sqlite"
    download_to = workdir / "recordings"
    # The run that processes a day starts at the next midnight, as the nightly schedule does.
    run_date = pendulum.parse(arguments.day).add(days=1).to_date_string()

    seeded = seed(db_path, day=arguments.day, count=arguments.count, neighbours=5, reset=True)
    print(
        f"Seeded {len(seeded.day_recording_ids)} recordings on {arguments.day}, "
        f"{len(seeded.previous_day_recording_ids)} on the day before and "
        f"{len(seeded.next_day_recording_ids)} on the day after."
    )
    with running_server(db_path, transcode_delay=arguments.transcode_delay) as server:
        print(f"Local GoToAssist API server listening on {server.base_url}")
        environment = _airflow_environment(
            workdir, server, poke_interval=arguments.transcode_delay, download_to=download_to
        )
        print("Preparing the Airflow database (SQLite) ...")
        _airflow(["db", "migrate"], environment, workdir / "airflow-db-migrate.log")
        print(f"Running DAG {DAG_ID} for {arguments.day} with `airflow dags test {DAG_ID} {run_date}` ...")
        _airflow(["dags", "test", DAG_ID, run_date], environment, workdir / "airflow-dags-test.log")
        figures = server.stats(day=arguments.day)

    print(f"\nWhat the GoToAssist API server saw (logs in {workdir}):")
    print(_summary(figures, arguments.day, _stored_files(download_to), download_to))
    return 0


if __name__ == "__main__":
    sys.exit(main())
