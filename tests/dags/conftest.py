"""Fixtures for running the DAGs through Airflow itself, on SQLite, against the local API server."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.conftest import DAGS_FOLDER

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def _migrate(environment: dict[str, str]) -> None:
    finished = subprocess.run(
        [AIRFLOW, "db", "migrate"], env=environment, capture_output=True, text=True, check=False
    )
    if finished.returncode != 0:
        pytest.fail(f"airflow db migrate failed:\n{finished.stdout[-3000:]}\n{finished.stderr[-3000:]}")


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Create the metadata database of the test run's Airflow home (``tests/conftest.py``)."""
    _migrate(dict(os.environ))


@dataclass
class AirflowHome:
    """An Airflow home of its own, for running the ``airflow`` command line as a user would."""

    path: Path
    environment: dict[str, str]

    def run(self, *arguments: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run ``airflow <arguments>``, returning its exit status and everything it printed."""
        return subprocess.run(
            [AIRFLOW, *arguments],
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture
def airflow_home(tmp_path: Path) -> AirflowHome:
    """A freshly migrated Airflow home on SQLite whose DAGs folder is the project's."""
    path = tmp_path / "airflow"
    environment = {
        **os.environ,
        "AIRFLOW_HOME": str(path),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    _migrate(environment)
    return AirflowHome(path, environment)
