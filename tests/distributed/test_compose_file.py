"""docker-compose.yml is valid for Compose, and runs what scripts/distributed/start runs, alike.

Docker is not needed: ``docker-compose config`` (Compose v1, Debian's ``docker-compose`` package,
which ``make test`` installs) validates the file and prints it resolved (anchors merged, variables
substituted), and the native stack describes itself with ``stack.py describe``.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from typing import Any

import pytest
import yaml
from tests.conftest import ROOT
from tests.distributed.conftest import COMPOSE_FILE, describe_native_stack

#: Settings only the native stack sets: the official image sets AIRFLOW_HOME itself, to /opt/airflow.
NATIVE_ONLY_KEYS = {"AIRFLOW_HOME"}
#: Settings only the containers need: the image's init process passes signals on to a worker's children.
COMPOSE_ONLY_KEYS = {"DUMB_INIT_SETSID"}
#: The connection fields that name where the API server and Redis are.
CONNECTION_ADDRESS_FIELDS = {"host"}
CONNECTION_ADDRESS_EXTRAS = {"token_url", "rate_limit_store"}


def _docker_compose(*arguments: str) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("docker-compose")
    if executable is None:
        pytest.fail("docker-compose is not installed: run `make system-packages` (Debian's docker-compose)")
    return subprocess.run(
        [executable, "--file", str(COMPOSE_FILE), "--project-directory", str(ROOT), *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file as Compose resolves it."""
    finished = _docker_compose("config")
    assert finished.returncode == 0, finished.stderr
    return yaml.safe_load(finished.stdout)


@pytest.fixture(scope="module")
def native() -> dict[str, Any]:
    return describe_native_stack()


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else list(command)


def test_compose_v1_accepts_the_file() -> None:
    finished = _docker_compose("config", "--quiet")

    assert finished.returncode == 0, f"docker-compose config rejected the file:\n{finished.stderr}"


def test_the_same_services_run_in_both(compose: dict[str, Any], native: dict[str, Any]) -> None:
    assert set(compose["services"]) == set(native["services"])


@pytest.mark.parametrize(
    "service",
    [
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker",
    ],
)
def test_each_airflow_service_runs_the_same_command(
    compose: dict[str, Any], native: dict[str, Any], service: str
) -> None:
    assert _command(compose["services"][service]) == native["airflow_commands"][service]


def test_the_init_service_runs_the_same_steps(compose: dict[str, Any], native: dict[str, Any]) -> None:
    script = _command(compose["services"]["airflow-init"])[-1]
    steps = [shlex.split(line) for line in script.splitlines() if line.strip().startswith("airflow ")]

    assert steps == [["airflow", *arguments] for arguments in native["init_commands"]]


def test_every_airflow_service_gets_the_same_settings(
    compose: dict[str, Any], native: dict[str, Any]
) -> None:
    expected = native["environment"]
    deployment_keys = set(native["deployment_keys"])
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-worker"):
        environment = compose["services"][name]["environment"]
        same_keys = set(environment) & set(expected)

        assert set(expected) - set(environment) == NATIVE_ONLY_KEYS, name
        assert set(environment) - set(expected) <= COMPOSE_ONLY_KEYS, name
        assert {key: environment[key] for key in same_keys - deployment_keys} == {
            key: expected[key] for key in same_keys - deployment_keys
        }, name


def test_the_connection_differs_only_in_its_addresses(
    compose: dict[str, Any], native: dict[str, Any]
) -> None:
    theirs = json.loads(
        compose["services"]["airflow-worker"]["environment"]["AIRFLOW_CONN_GOTOASSIST_DEFAULT"]
    )
    ours = json.loads(native["environment"]["AIRFLOW_CONN_GOTOASSIST_DEFAULT"])

    assert set(theirs) == set(ours)
    assert set(theirs["extra"]) == set(ours["extra"])
    for field in set(ours) - CONNECTION_ADDRESS_FIELDS - {"extra"}:
        assert theirs[field] == ours[field], field
    for extra in set(ours["extra"]) - CONNECTION_ADDRESS_EXTRAS:
        assert theirs["extra"][extra] == ours["extra"][extra], extra
    # The request budget lives in the broker's Redis, in another database than the broker's queue.
    assert theirs["extra"]["rate_limit_store"].startswith("redis://redis:6379/")
    assert (
        theirs["extra"]["rate_limit_store"]
        != compose["services"]["airflow-worker"]["environment"]["AIRFLOW__CELERY__BROKER_URL"]
    )


def test_the_workers_can_be_scaled(compose: dict[str, Any]) -> None:
    worker = compose["services"]["airflow-worker"]

    # A fixed container name or a published port would stop a second replica from starting.
    assert "container_name" not in worker
    assert "ports" not in worker
