"""Fixtures for running the DAGs through Airflow itself, on SQLite, against the local API server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Create the metadata database of the test run's Airflow home (``tests/conftest.py``)."""
    airflow = Path(sys.executable).with_name("airflow")
    finished = subprocess.run(
        [str(airflow), "db", "migrate"], env=os.environ, capture_output=True, text=True, check=False
    )
    if finished.returncode != 0:
        pytest.fail(f"airflow db migrate failed:\n{finished.stdout[-3000:]}\n{finished.stderr[-3000:]}")
