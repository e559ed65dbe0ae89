"""How long parsing the DAG file takes, over the import of ``airflow.sdk`` every DAG file pays.

Each figure is the median of several fresh Python processes, so nothing is cached between them:
one that only imports ``airflow.sdk``, and ones that import it and then parse a DAG file the way the
DAG processor does (``DagBag`` on the single file): the project's, and a DAG of one empty task for
comparison, which shows what ``DagBag`` costs by itself.

Run it from the project root::

    .venv/bin/python -m benchmarks.parse_time
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.report import print_figures

DAG_FILE = Path(__file__).resolve().parent.parent / "dags" / "gotoassist_recordings.py"
MINIMAL_DAG = """
from airflow.sdk import dag, task

@dag(schedule=None)
def minimal():
    @task
    def nothing():
        pass

    nothing()

minimal()
"""

MEASURE = """
import json, sys, time
started = time.perf_counter()
import airflow.sdk
imported = time.perf_counter()
if sys.argv[1] == "dag":
    from airflow.dag_processing.dagbag import DagBag
    ready = time.perf_counter()
    bag = DagBag(dag_folder=sys.argv[2])
    assert not bag.import_errors and bag.dags, bag.import_errors
    parsed = time.perf_counter()
else:
    ready = parsed = imported
print(json.dumps({"sdk": imported - started, "dag": parsed - ready}))
"""


def _once(kind: str, environment: dict[str, str], dag_file: Path = DAG_FILE) -> dict[str, float]:
    finished = subprocess.run(
        [sys.executable, "-c", MEASURE, kind, str(dag_file)],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(finished.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="processes per figure (default: %(default)s)")
    arguments = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="gotoassist-parse-") as home:
        environment = {**os.environ, "AIRFLOW_HOME": home, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
        minimal = Path(home) / "minimal_dag.py"
        minimal.write_text(MINIMAL_DAG)
        _once("dag", environment)  # the first processes compile the bytecode caches
        _once("dag", environment, minimal)
        bare = [_once("sdk", environment)["sdk"] for _ in range(arguments.runs)]
        ours = [_once("dag", environment)["dag"] for _ in range(arguments.runs)]
        least = [_once("dag", environment, minimal)["dag"] for _ in range(arguments.runs)]

    sdk, dag, empty = (statistics.median(figures) * 1000 for figures in (bare, ours, least))
    rows = [
        ("import airflow.sdk", f"{sdk:8.1f} ms"),
        ("then parse a DAG of one empty task", f"{empty:8.1f} ms"),
        (f"then parse dags/{DAG_FILE.name}", f"{dag:8.1f} ms"),
        ("its parse time over the bare import", f"{dag / sdk:8.2f} x"),
        ("its parse time over the empty DAG's", f"{dag / empty:8.2f} x"),
    ]
    print_figures(f"DAG parse time (median of {arguments.runs} fresh processes each)", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
