"""Where the distributed deployment's files are, for the tests that check them."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from tests.conftest import ROOT

COMPOSE_FILE = ROOT / "docker-compose.yml"
STACK_SCRIPT = ROOT / "scripts" / "distributed" / "stack.py"
START = ROOT / "scripts" / "distributed" / "start"
STOP = ROOT / "scripts" / "distributed" / "stop"


def describe_native_stack() -> dict[str, Any]:
    """Return what ``scripts/distributed/stack.py describe`` prints: services, commands, settings."""
    finished = subprocess.run(
        [sys.executable, str(STACK_SCRIPT), "describe"], capture_output=True, text=True, check=True
    )
    return json.loads(finished.stdout)
