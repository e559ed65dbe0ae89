"""Celery settings for the workers that run the ``gotoassist_recordings`` DAG.

Airflow's own Celery settings, plus Celery's ``imports``: the modules every task of the DAG needs
are imported once, when a worker starts, instead of in every task process. Airflow runs each task
in a process forked from the worker, which inherits them; without this, each task process imports
the HTTP clients, the operators and the ``@task`` machinery again, about 0.7 s of CPU time per task
on a small machine, which adds up over the hundreds of tasks of a large day.

Point Airflow at it on every component that reads Celery settings::

    AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS=gotoassist_recordings.celery_config.CELERY_CONFIG

Nothing here connects to anything when imported: the modules only define things.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

#: What a task of the DAG imports: the package's task-side modules, and the Airflow modules its DAG
#: file pulls in beyond what a worker has loaded already.
TASK_MODULES = (
    "gotoassist_recordings.dag_settings",
    "gotoassist_recordings.day_report",
    "gotoassist_recordings.hooks.gotoassist",
    "gotoassist_recordings.operators.downloads",
    "gotoassist_recordings.operators.recordings",
    "gotoassist_recordings.sensors.recordings",
    "gotoassist_recordings.triggers.recordings",
    "airflow.providers.standard.decorators.python",
    "airflow.sdk.definitions.decorators.task_group",
    "airflow.sdk.definitions.timetables.interval",
)

CELERY_CONFIG: dict[str, Any] = {
    **DEFAULT_CELERY_CONFIG,
    "imports": (*DEFAULT_CELERY_CONFIG.get("imports", ()), *TASK_MODULES),
}
