"""Run the nightly DAG through Airflow (``dag.test``) for the days given, on the Airflow home of the
environment, and print one JSON line per run: its day, run ID and state.

The UI tests run it in a process of their own, so the runs land in a metadata database of their own
that the api-server they start then reads. Task retries are turned off: a chunk that fails fails its
run at once instead of waiting for a retry.

Usage: ``python tests/ui/nightly_runs.py DAY [DAY ...]`` with ``AIRFLOW_HOME`` and the ``gotoassist``
connection in the environment; the DAGs come from the project's ``dags/`` folder.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pendulum
from airflow.dag_processing.dagbag import DagBag

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"


def main(days: list[str]) -> None:
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    if bag.import_errors:
        raise SystemExit(f"The DAGs folder does not parse: {bag.import_errors}")
    dag = bag.dags["gotoassist_recordings"]
    for task in dag.tasks:
        task.retries = 0
    for day in days:
        # As the nightly schedule runs it: at the midnight that ends the day.
        run = dag.test(logical_date=pendulum.parse(day).add(days=1))
        print(json.dumps({"day": day, "run_id": run.run_id, "state": str(run.state)}), flush=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main(sys.argv[1:])
