"""The Celery settings that let workers import what the DAG's tasks need once, at start."""

from __future__ import annotations

import json
import subprocess
import sys

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
from tests.conftest import DAGS_FOLDER

from gotoassist_recordings.celery_config import CELERY_CONFIG, TASK_MODULES

#: Run in a process of its own, as a worker would: import what Celery's ``imports`` names, then parse
#: the DAG file and build the hook as a task process forked from that worker does, and print every
#: module this second step still had to import.
_TASK_AFTER_WORKER_START = """
import importlib, importlib.util, json, sys
from gotoassist_recordings.celery_config import CELERY_CONFIG
for name in CELERY_CONFIG["imports"]:
    importlib.import_module(name)
before = set(sys.modules)
spec = importlib.util.spec_from_file_location("the_dag", sys.argv[1])
spec.loader.exec_module(importlib.util.module_from_spec(spec))
from gotoassist_recordings.hooks.gotoassist import GoToAssistHook
GoToAssistHook(gotoassist_conn_id="gotoassist_default")
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_airflow_celery_settings_are_kept_and_the_task_modules_added() -> None:
    assert {key: value for key, value in CELERY_CONFIG.items() if key != "imports"} == {
        key: value for key, value in DEFAULT_CELERY_CONFIG.items() if key != "imports"
    }
    assert set(TASK_MODULES) <= set(CELERY_CONFIG["imports"])


def test_a_task_process_finds_the_package_and_its_airflow_modules_imported() -> None:
    finished = subprocess.run(
        [sys.executable, "-c", _TASK_AFTER_WORKER_START, str(DAGS_FOLDER / "gotoassist_recordings.py")],
        capture_output=True,
        text=True,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr[-3000:]
    imported_late = json.loads(finished.stdout.splitlines()[-1])
    assert [
        name
        for name in imported_late
        if name.startswith(("gotoassist_recordings", "airflow.providers", "airflow.sdk"))
    ] == []
