"""Settings every test shares: Airflow runs on a temporary home of its own, never the user's.

Airflow reads ``AIRFLOW_HOME`` and its ``AIRFLOW__*`` options when it is first imported, so they are
set here, before any test module imports it. The home is removed when the test run ends.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DAGS_FOLDER = ROOT / "dags"

_airflow_home = tempfile.mkdtemp(prefix="gotoassist-tests-airflow-home-")
atexit.register(shutil.rmtree, _airflow_home, ignore_errors=True)
os.environ["AIRFLOW_HOME"] = _airflow_home
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_FOLDER)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
