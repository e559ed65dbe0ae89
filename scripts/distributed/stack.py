"""Airflow's distributed engine as plain processes on one machine, for where there is no Docker.

``start`` runs the services of ``docker-compose.yml``, with the same settings, as processes of
their own on the loopback interface:

- ``postgres``: PostgreSQL from the Debian packages, the metadata database and Celery's result
  backend, run as the ``postgres`` user on a data folder of its own;
- ``redis``: Redis from the Debian packages, the Celery broker and the GoToAssist request budget;
- ``gotoassist-api``: the local GoToAssist API server, seeded with recordings on first start;
- ``airflow-init``: a one-off step: ``airflow db migrate``, the ``gotoassist_api`` pool, the UI user;
- ``airflow-apiserver``, ``airflow-scheduler``, ``airflow-dag-processor``, ``airflow-triggerer``;
- ``airflow-worker-1`` ... ``airflow-worker-N``: Celery workers, each with a Celery host name of its
  own, all taking tasks from the same Redis queue.

Everything lives under the state folder (``.distributed/`` by default): the data of PostgreSQL and
Redis, the Airflow home, the API server's database, one log and one PID file per service, and
``stack.json`` (ports, URLs, what runs where) and ``env`` (``. .distributed/env`` points the
``airflow`` command line at the stack). A second ``start`` keeps the data; ``--reset`` starts over.
``stop`` stops every process ``start`` started, and only those.

Run it as ``scripts/distributed/start`` and ``scripts/distributed/stop``; ``--help`` shows the options.
It needs root (PostgreSQL is started as its own user) and the Debian packages ``postgresql`` and
``redis-server`` (``make system-packages`` installs them).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import pwd
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pendulum
import requests

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = ROOT / ".distributed"
#: The ``airflow`` and ``gotoassist-api-server`` commands of the environment running this script.
VENV_BIN = Path(sys.executable).parent

DAG_ID = "gotoassist_recordings"
API_POOL = "gotoassist_api"
API_POOL_SLOTS = 8
UI_USER = "airflow"
DATABASE = "airflow"
DATABASE_ROLE = "airflow"

#: Default ports: none of them a service's usual one, so the stack does not collide with a
#: PostgreSQL, Redis or ``airflow standalone`` already running here. 0 picks a free port.
DEFAULT_PORTS = {
    "postgres": 15432,
    "redis": 16379,
    "gotoassist-api": 18090,
    "airflow-apiserver": 18080,
    "scheduler-health": 18974,
}

#: Settings every Airflow component gets, here exactly as in docker-compose.yml (a test compares
#: the two). The settings that name addresses and folders are built in :func:`airflow_environment`.
SHARED_SETTINGS = {
    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
    "AIRFLOW__CELERY__WORKER_CONCURRENCY": "4",
    "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "gotoassist_recordings.celery_config.CELERY_CONFIG",
    "AIRFLOW__API__WORKERS": "1",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{UI_USER}:admin",
    "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
    "GOTOASSIST_API_POOL": API_POOL,
    "GOTOASSIST_READY_POKE_INTERVAL": "30",
}

#: The services in start order, named as in docker-compose.yml, with the ``airflow`` subcommand
#: each Airflow component runs. Workers are numbered: airflow-worker-1, airflow-worker-2, ...
AIRFLOW_COMPONENTS = {
    "airflow-apiserver": ["api-server"],
    "airflow-scheduler": ["scheduler"],
    "airflow-dag-processor": ["dag-processor"],
    "airflow-triggerer": ["triggerer"],
    "airflow-worker": ["celery", "worker"],
}
SERVICES = ["postgres", "redis", "gotoassist-api", "airflow-init", *AIRFLOW_COMPONENTS]


def init_commands(pool_slots: int = API_POOL_SLOTS) -> list[list[str]]:
    """What ``airflow-init`` runs, in order, before any component starts (the UI user's password file
    is written besides)."""
    return [
        ["db", "migrate"],
        ["pools", "set", API_POOL, str(pool_slots), "GoToAssist API calls"],
    ]


STARTUP_TIMEOUT_SECONDS = 180.0
STOP_TIMEOUT_SECONDS = 30.0
_POLL_SECONDS = 0.5
_REDIS_DB_BROKER = 0
_REDIS_DB_REQUEST_BUDGET = 1


class StackError(RuntimeError):
    """The stack could not be started or stopped; the message says what and where to look."""


@dataclass
class StatePaths:
    """Where the stack keeps everything, under one state folder."""

    root: Path

    @property
    def postgres(self) -> Path:
        """PostgreSQL's folder (data and log), or a link to it: see :func:`_postgres_home`."""
        return self.root / "postgres"

    @property
    def postgres_data(self) -> Path:
        return self.postgres.resolve() / "data"

    @property
    def redis(self) -> Path:
        return self.root / "redis"

    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow"

    @property
    def api_db(self) -> Path:
        return self.root / "gotoassist-api" / "gotoassist-api.sqlite"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pids(self) -> Path:
        return self.root / "pids"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets.json"

    @property
    def stack_file(self) -> Path:
        return self.root / "stack.json"

    @property
    def env_file(self) -> Path:
        return self.root / "env"

    def log(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def pid(self, service: str) -> Path:
        return self.pids / f"{service}.pid"


@dataclass
class Addresses:
    """Where the services listen, and the credentials that go with them."""

    postgres_port: int
    redis_port: int
    api_port: int
    airflow_api_port: int
    scheduler_health_port: int
    database_password: str
    host: str = "127.0.0.1"

    # The driver is named in both URLs: for a bare postgresql:// SQLAlchemy 2.1 picks psycopg 3.
    @property
    def database_url(self) -> str:
        return (
            f"postgresql+psycopg2://{DATABASE_ROLE}:{self.database_password}@{self.host}:"
            f"{self.postgres_port}/{DATABASE}"
        )

    @property
    def result_backend_url(self) -> str:
        return (
            f"db+postgresql+psycopg2://{DATABASE_ROLE}:{self.database_password}@{self.host}:"
            f"{self.postgres_port}/{DATABASE}"
        )

    def redis_url(self, db: int) -> str:
        return f"redis://{self.host}:{self.redis_port}/{db}"

    @property
    def api_url(self) -> str:
        """The local GoToAssist API server's root URL."""
        return f"http://{self.host}:{self.api_port}"

    @property
    def airflow_url(self) -> str:
        """The Airflow API server's root URL: UI, REST API and execution API."""
        return f"http://{self.host}:{self.airflow_api_port}"


def airflow_environment(addresses: Addresses, paths: StatePaths, settings: dict[str, str]) -> dict[str, str]:
    """Build the settings of every Airflow component: the same keys as in docker-compose.yml.

    :param addresses: where the services listen.
    :param paths: the state folder.
    :param settings: :data:`SHARED_SETTINGS` with the caller's changes.
    :return: environment variables, without the inherited ones.
    """
    # Imported here so that ``describe`` and ``stop`` work without the project installed.
    from gotoassist_api_server.connection import airflow_connection_json

    connection = airflow_connection_json(
        addresses.api_url, rate_limit_store=addresses.redis_url(_REDIS_DB_REQUEST_BUDGET)
    )
    return {
        "AIRFLOW_HOME": str(paths.airflow_home),
        # Written once by airflow-init with the secrets every component must share (the Fernet key
        # and the JWT secret of the execution API); the others read it.
        "AIRFLOW_CONFIG": str(paths.airflow_home / "airflow.cfg"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": addresses.database_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": addresses.result_backend_url,
        "AIRFLOW__CELERY__BROKER_URL": addresses.redis_url(_REDIS_DB_BROKER),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{addresses.airflow_url}/execution/",
        "AIRFLOW__API__HOST": addresses.host,
        "AIRFLOW__API__PORT": str(addresses.airflow_api_port),
        "AIRFLOW__API__BASE_URL": addresses.airflow_url,
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(
            paths.airflow_home / "simple_auth_manager_passwords.json"
        ),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(addresses.scheduler_health_port),
        "AIRFLOW_CONN_GOTOASSIST_DEFAULT": connection,
        **settings,
    }


#: The keys of :func:`airflow_environment` whose values differ between deployments by nature:
#: addresses, folders and credentials.
DEPLOYMENT_KEYS = frozenset(
    {
        "AIRFLOW_HOME",
        "AIRFLOW_CONFIG",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CELERY__RESULT_BACKEND",
        "AIRFLOW__CELERY__BROKER_URL",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
        "AIRFLOW__API__HOST",
        "AIRFLOW__API__PORT",
        "AIRFLOW__API__BASE_URL",
        "AIRFLOW__CORE__DAGS_FOLDER",
        "AIRFLOW__CORE__PLUGINS_FOLDER",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT",
        "AIRFLOW_CONN_GOTOASSIST_DEFAULT",
    }
)


# Processes -------------------------------------------------------------------------------------


def _start_ticks(pid: int) -> str | None:
    """Return when a process started, in clock ticks since boot, or ``None`` if it has exited."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; the fields after it are plain: state, ..., start time.
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else fields[19]


def _record_pid(paths: StatePaths, service: str, pid: int) -> None:
    """Write a PID file: the PID, then the process's start time, so a reused PID is never taken
    for the service's."""
    ticks = _start_ticks(pid)
    paths.pid(service).write_text(f"{pid}\n{ticks}\n")


def _recorded_pid(paths: StatePaths, service: str) -> int | None:
    """Return the PID of a service's process if it is still the one that was started, else ``None``."""
    try:
        pid_text, ticks = paths.pid(service).read_text().split()
    except (OSError, ValueError):
        return None
    pid = int(pid_text)
    return pid if _start_ticks(pid) == ticks else None


def _running_services(paths: StatePaths) -> dict[str, int]:
    """Map each service of the stack that still runs to its PID."""
    if not paths.pids.is_dir():
        return {}
    running = {}
    for pid_file in sorted(paths.pids.glob("*.pid")):
        pid = _recorded_pid(paths, pid_file.stem)
        if pid is not None:
            running[pid_file.stem] = pid
    return running


def _log_tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return f"(no log at {path})"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Launcher:
    """Starts the stack's processes, each in a session of its own with its own log and PID file."""

    paths: StatePaths
    started: list[str] = field(default_factory=list)

    def spawn(self, service: str, command: list[str], environment: dict[str, str]) -> subprocess.Popen:
        """Start a long-running service process in the background."""
        with self.paths.log(service).open("ab") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                cwd=ROOT,
                # Its own process group: stop signals the service and every child it made.
                start_new_session=True,
            )
        _record_pid(self.paths, service, process.pid)
        self.started.append(service)
        return process

    def run(self, service: str, command: list[str], environment: dict[str, str] | None = None) -> None:
        """Run a one-off command to its end, its output going to the service's log."""
        with self.paths.log(service).open("ab") as log:
            log.write(f"$ {shlex.join(command)}\n".encode())
            log.flush()
            finished = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                cwd=ROOT,
                check=False,
            )
        if finished.returncode != 0:
            raise StackError(
                f"{service}: `{shlex.join(command)}` failed with status {finished.returncode}; "
                f"{self.paths.log(service)} ends with:\n{_log_tail(self.paths.log(service))}"
            )


def _wait_until(
    what: str, check: Callable[[], bool], paths: StatePaths, services: list[str], timeout: float
) -> None:
    """Poll ``check`` until it is true; fail early when one of ``services`` has exited.

    A ``check`` that raises counts as not yet: a service that is starting refuses connections or
    answers with errors. The last such error is shown if the wait ends in failure.
    """
    deadline = time.monotonic() + timeout
    last_error = "none"
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as error:
            last_error = f"{type(error).__name__}: {error}"
        for service in services:
            if _recorded_pid(paths, service) is None:
                raise StackError(
                    f"{service} exited while waiting for {what}; {paths.log(service)} ends with:\n"
                    f"{_log_tail(paths.log(service))}"
                )
        time.sleep(_POLL_SECONDS)
    logs = "\n".join(f"  {paths.log(service)}" for service in services)
    raise StackError(
        f"gave up after {timeout:.0f} s waiting for {what} (last error: {last_error}); see\n{logs}"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _check_port_free(service: str, port: int) -> None:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise StackError(
                f"port {port} for {service} is taken ({error.strerror}); choose another with its "
                "--*-port option, or --free-ports"
            ) from None


# The services -------------------------------------------------------------------------------------


def _postgres_bin() -> Path:
    """Find the PostgreSQL server programs of the Debian packages, of the newest version installed."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name)
    )
    if not candidates:
        raise StackError("PostgreSQL is missing: apt-get install -y postgresql (or make system-packages)")
    return candidates[-1].parent


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command]


def _check_prerequisites() -> None:
    if os.geteuid() != 0:
        raise StackError("run it as root: PostgreSQL is started as the postgres user, which needs root")
    _postgres_bin()
    if shutil.which("redis-server") is None:
        raise StackError("Redis is not installed: apt-get install -y redis-server (or make system-packages)")
    for command in ("airflow", "gotoassist-api-server"):
        if not (VENV_BIN / command).exists():
            raise StackError(f"{VENV_BIN / command} is missing: run `make .venv/.installed` first")


def _postgres_can_write(folder: Path) -> bool:
    return subprocess.run(_as_postgres(["test", "-w", str(folder)]), check=False).returncode == 0


def _postgres_home(paths: StatePaths) -> Path:
    """Make the folder PostgreSQL keeps its data and log in, owned by the postgres user.

    It is ``postgres/`` in the state folder. Where the postgres user cannot reach that (a folder above
    it is private, as ``/root`` is), it is a folder in the postgres user's home instead, and
    ``postgres/`` links to it.
    """
    if paths.postgres.is_symlink():
        return paths.postgres.resolve()
    paths.postgres.mkdir(parents=True, exist_ok=True)
    shutil.chown(paths.postgres, "postgres", "postgres")
    if _postgres_can_write(paths.postgres):
        return paths.postgres
    paths.postgres.rmdir()
    digest = hashlib.sha256(str(paths.root).encode()).hexdigest()[:12]
    home = Path(pwd.getpwnam("postgres").pw_dir) / f"gotoassist-distributed-{digest}"
    home.mkdir(parents=True, exist_ok=True)
    shutil.chown(home, "postgres", "postgres")
    if not _postgres_can_write(home):
        raise StackError(f"the postgres user can write neither to {paths.postgres} nor to {home}")
    paths.postgres.symlink_to(home)
    print(f"  (the postgres user cannot reach {paths.root}: its data goes to {home})", flush=True)
    return home


def _start_postgres(launcher: Launcher, addresses: Addresses) -> None:
    paths = launcher.paths
    pg_bin = _postgres_bin()
    home = _postgres_home(paths)
    # PostgreSQL writes its log where it can; the state folder's logs/ links to it.
    log = home / "postgres.log"
    log.touch()
    shutil.chown(log, "postgres", "postgres")
    if not paths.log("postgres").is_symlink():
        paths.log("postgres").unlink(missing_ok=True)
        paths.log("postgres").symlink_to(log)
    if not (paths.postgres_data / "PG_VERSION").exists():
        password_file = home / "initial-password"
        password_file.write_text(addresses.database_password + "\n")
        shutil.chown(password_file, "postgres", "postgres")
        try:
            launcher.run(
                "postgres",
                _as_postgres(
                    [
                        str(pg_bin / "initdb"),
                        "--pgdata",
                        str(paths.postgres_data),
                        "--username",
                        DATABASE_ROLE,
                        "--pwfile",
                        str(password_file),
                        "--auth",
                        "scram-sha-256",
                        "--encoding",
                        "UTF8",
                        "--locale",
                        "C.UTF-8",
                    ]
                ),
            )
        finally:
            password_file.unlink(missing_ok=True)
    server_options = " ".join(
        [
            f"-p {addresses.postgres_port}",
            f"-c listen_addresses={addresses.host}",
            # TCP only: no socket file whose path could be too long for the folder it is in.
            "-c unix_socket_directories=''",
            # A stack for trying things out: faster commits at the risk of losing the last ones
            # (never of a damaged database) if the machine stops abruptly.
            "-c synchronous_commit=off",
        ]
    )
    launcher.run(
        "postgres",
        _as_postgres(
            [
                str(pg_bin / "pg_ctl"),
                "start",
                "--wait",
                "--timeout",
                "60",
                "--pgdata",
                str(paths.postgres_data),
                "--log",
                str(log),
                "-o",
                server_options,
            ]
        ),
    )
    postmaster_pid = int((paths.postgres_data / "postmaster.pid").read_text().split()[0])
    _record_pid(paths, "postgres", postmaster_pid)
    launcher.started.append("postgres")
    _create_database(addresses)


def _create_database(addresses: Addresses) -> None:
    import psycopg2

    connection = psycopg2.connect(
        host=addresses.host,
        port=addresses.postgres_port,
        user=DATABASE_ROLE,
        password=addresses.database_password,
        dbname="postgres",
    )
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
            if cursor.fetchone() is None:
                cursor.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        connection.close()


def _start_redis(launcher: Launcher, addresses: Addresses) -> None:
    import redis

    launcher.paths.redis.mkdir(parents=True, exist_ok=True)
    launcher.spawn(
        "redis",
        [
            shutil.which("redis-server") or "redis-server",
            "--bind",
            addresses.host,
            "--port",
            str(addresses.redis_port),
            "--dir",
            str(launcher.paths.redis),
            "--daemonize",
            "no",
            # The broker's queue and the request budget are worth nothing after a stop.
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        dict(os.environ),
    )
    client = redis.Redis(host=addresses.host, port=addresses.redis_port, socket_timeout=1)
    _wait_until("Redis to answer", client.ping, launcher.paths, ["redis"], timeout=30)


def _start_api_server(launcher: Launcher, addresses: Addresses, seeding: argparse.Namespace) -> None:
    paths = launcher.paths
    server = str(VENV_BIN / "gotoassist-api-server")
    if not paths.api_db.exists():
        paths.api_db.parent.mkdir(parents=True, exist_ok=True)
        launcher.run(
            "gotoassist-api",
            [server, "seed", "--db", str(paths.api_db), "--day", seeding.day, "--count", str(seeding.count)],
        )
    launcher.spawn(
        "gotoassist-api",
        [
            server,
            "serve",
            "--db",
            str(paths.api_db),
            "--host",
            addresses.host,
            "--port",
            str(addresses.api_port),
            "--transcode-delay",
            str(seeding.transcode_delay),
            "--latency",
            str(seeding.latency),
            *(["--rate-limit", str(seeding.rate_limit)] if seeding.rate_limit else []),
        ],
        dict(os.environ),
    )
    _wait_until(
        "the GoToAssist API server to answer",
        lambda: requests.get(f"{addresses.api_url}/_admin/health", timeout=2).ok,
        paths,
        ["gotoassist-api"],
        timeout=30,
    )


def _init_airflow(
    launcher: Launcher, environment: dict[str, str], ui_password: str, pool_slots: int = API_POOL_SLOTS
) -> None:
    launcher.paths.airflow_home.mkdir(parents=True, exist_ok=True)
    airflow = str(VENV_BIN / "airflow")
    for arguments in init_commands(pool_slots):
        launcher.run("airflow-init", [airflow, *arguments], environment)
    passwords = Path(environment["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    passwords.write_text(json.dumps({UI_USER: ui_password}) + "\n")
    passwords.chmod(0o600)


def _worker_names(count: int) -> list[str]:
    return [f"airflow-worker-{number}" for number in range(1, count + 1)]


def _start_airflow(launcher: Launcher, environment: dict[str, str], workers: int) -> None:
    airflow = str(VENV_BIN / "airflow")
    for service, arguments in AIRFLOW_COMPONENTS.items():
        if service == "airflow-worker":
            for name in _worker_names(workers):
                # All workers write task logs into the same folder, where the API server reads them,
                # so none of them needs to serve logs (which would take the same port twice).
                launcher.spawn(
                    name,
                    [airflow, *arguments, "--celery-hostname", f"{name}@%h", "--skip-serve-logs"],
                    environment,
                )
        elif service in ("airflow-scheduler", "airflow-triggerer"):
            launcher.spawn(service, [airflow, *arguments, "--skip-serve-logs"], environment)
        else:
            launcher.spawn(service, [airflow, *arguments], environment)


def _health(addresses: Addresses) -> dict[str, Any]:
    return requests.get(f"{addresses.airflow_url}/api/v2/monitor/health", timeout=5).json()


def _all_healthy(addresses: Addresses) -> bool:
    health = _health(addresses)
    return all(
        (health.get(component) or {}).get("status") == "healthy"
        for component in ("metadatabase", "scheduler", "triggerer", "dag_processor")
    )


def _workers_answering(broker_url: str, names: list[str]) -> Callable[[], bool]:
    from celery import Celery

    app = Celery(broker=broker_url)

    def check() -> bool:
        replies = app.control.ping(timeout=1.0)
        answered = {name.split("@", 1)[0] for reply in replies for name in reply}
        return set(names) <= answered

    return check


# Commands -----------------------------------------------------------------------------------------


def _ports(arguments: argparse.Namespace) -> dict[str, int]:
    ports: dict[str, int] = {}
    for service in DEFAULT_PORTS:
        wanted = 0 if arguments.free_ports else getattr(arguments, f"{service.replace('-', '_')}_port")
        if wanted in ports.values():
            raise StackError(f"port {wanted} is given to two services")
        if wanted:
            _check_port_free(service, wanted)
        port = wanted
        # The system may hand out the same free port twice in a row.
        while not port or port in ports.values():
            port = _free_port()
        ports[service] = port
    return ports


def _load_secrets(paths: StatePaths) -> dict[str, str]:
    """Return the stack's passwords, made up on first start and kept with its data."""
    if paths.secrets.exists():
        return json.loads(paths.secrets.read_text())
    made = {"database_password": secrets.token_urlsafe(18), "ui_password": secrets.token_urlsafe(12)}
    paths.secrets.write_text(json.dumps(made, indent=2) + "\n")
    paths.secrets.chmod(0o600)
    return made


def _settings(changes: list[str]) -> dict[str, str]:
    settings = dict(SHARED_SETTINGS)
    for change in changes:
        name, separator, value = change.partition("=")
        if not separator or not name:
            raise StackError(f"--env takes NAME=VALUE, got {change!r}")
        settings[name] = value
    return settings


def _write_env_file(paths: StatePaths, environment: dict[str, str]) -> None:
    lines = [
        "# Source this file to point the airflow command line at the stack: . .distributed/env",
        *(f"export {name}={shlex.quote(value)}" for name, value in sorted(environment.items())),
    ]
    paths.env_file.write_text("\n".join(lines) + "\n")
    paths.env_file.chmod(0o600)


def start(arguments: argparse.Namespace) -> int:
    """Start the whole stack, wait until every part of it answers, and describe it."""
    paths = StatePaths(arguments.state_dir.resolve())
    _check_prerequisites()
    running = _running_services(paths)
    if running:
        raise StackError(
            f"the stack in {paths.root} is already running ({', '.join(running)}); "
            f"stop it first: scripts/distributed/stop --state-dir {paths.root}"
        )
    if arguments.reset and paths.root.exists():
        if paths.postgres.is_symlink():
            shutil.rmtree(paths.postgres.resolve(), ignore_errors=True)
        shutil.rmtree(paths.root)
    for folder in (paths.root, paths.logs, paths.pids):
        folder.mkdir(parents=True, exist_ok=True)
    for stale in paths.pids.glob("*.pid"):
        stale.unlink()

    kept = _load_secrets(paths)
    ports = _ports(arguments)
    addresses = Addresses(
        postgres_port=ports["postgres"],
        redis_port=ports["redis"],
        api_port=ports["gotoassist-api"],
        airflow_api_port=ports["airflow-apiserver"],
        scheduler_health_port=ports["scheduler-health"],
        database_password=kept["database_password"],
    )
    environment = airflow_environment(addresses, paths, _settings(arguments.env))
    workers = _worker_names(arguments.workers)
    launcher = Launcher(paths)
    timings: dict[str, float] = {}

    @contextlib.contextmanager
    def timed(step: str) -> Iterator[None]:
        print(f"{step} ...", flush=True)
        began = time.monotonic()
        yield
        timings[step] = time.monotonic() - began

    began = time.monotonic()
    try:
        with timed("PostgreSQL"):
            _start_postgres(launcher, addresses)
        with timed("Redis"):
            _start_redis(launcher, addresses)
        with timed("GoToAssist API server"):
            _start_api_server(launcher, addresses, arguments)
        with timed("Airflow database, pool and user (airflow-init)"):
            _init_airflow(launcher, {**os.environ, **environment}, kept["ui_password"], arguments.pool_slots)
        with timed(f"Airflow components and {len(workers)} Celery workers"):
            _start_airflow(launcher, {**os.environ, **environment}, arguments.workers)
            components = [service for service in launcher.started if service.startswith("airflow-")]
            _wait_until(
                "the API server to report the scheduler, triggerer and DAG processor healthy",
                lambda: _all_healthy(addresses),
                paths,
                components,
                timeout=STARTUP_TIMEOUT_SECONDS,
            )
            _wait_until(
                "every Celery worker to answer a ping",
                _workers_answering(environment["AIRFLOW__CELERY__BROKER_URL"], workers),
                paths,
                components,
                timeout=STARTUP_TIMEOUT_SECONDS,
            )
    except BaseException:
        print("Start failed; stopping what was started.", file=sys.stderr, flush=True)
        _stop(paths, quiet=True)
        raise
    timings["total"] = time.monotonic() - began

    description = {
        "state_dir": str(paths.root),
        "started_at": pendulum.now("UTC").isoformat(),
        "airflow_url": addresses.airflow_url,
        "ui_user": UI_USER,
        "ui_password_file": environment["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"],
        "gotoassist_api_url": addresses.api_url,
        "gotoassist_api_db": str(paths.api_db),
        "ports": ports,
        "workers": workers,
        "services": {
            service: {"pid": pid, "log": str(paths.log(service))}
            for service, pid in _running_services(paths).items()
        },
        "timings_seconds": {step: round(seconds, 1) for step, seconds in timings.items()},
    }
    paths.stack_file.write_text(json.dumps(description, indent=2) + "\n")
    _write_env_file(paths, environment)
    print(
        f"\nThe stack runs ({timings['total']:.0f} s to start); logs and PIDs in {paths.root}.\n"
        f"  Airflow UI and REST API   {addresses.airflow_url}  (user {UI_USER}, password in "
        f"{environment['AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE']})\n"
        f"  GoToAssist API server     {addresses.api_url}\n"
        f"  PostgreSQL                {addresses.host}:{addresses.postgres_port}\n"
        f"  Redis                     {addresses.host}:{addresses.redis_port}\n"
        f"  Celery workers            {', '.join(workers)}\n"
        f"The airflow command line on the stack: . {paths.env_file} && {VENV_BIN / 'airflow'} dags list\n"
        f"Stop it with: scripts/distributed/stop"
        + ("" if paths.root == DEFAULT_STATE_DIR else f" --state-dir {paths.root}"),
        flush=True,
    )
    return 0


def _signal_group(pid: int, signal_number: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal_number)


def _stop_postgres(paths: StatePaths) -> None:
    subprocess.run(
        _as_postgres(
            [
                str(_postgres_bin() / "pg_ctl"),
                "stop",
                "--wait",
                "--mode",
                "fast",
                "--pgdata",
                str(paths.postgres_data),
            ]
        ),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
        timeout=STOP_TIMEOUT_SECONDS + 10,
    )


#: The order services stop in: the Airflow components together, then what they use, one by one.
_STOP_PHASES = ("airflow", "gotoassist-api", "redis", "postgres")


def _stop_phase(service: str) -> int:
    return _STOP_PHASES.index(service) if service in _STOP_PHASES else 0


def _stop(paths: StatePaths, quiet: bool = False) -> list[str]:
    """Stop every running service of the stack, the Airflow components first, and return what is
    still running (nothing, unless a process could not be killed)."""
    phases: dict[int, dict[str, int]] = {}
    for service, pid in _running_services(paths).items():
        phases.setdefault(_stop_phase(service), {})[service] = pid
    for phase in sorted(phases):
        services = phases[phase]
        if not quiet:
            print(f"Stopping {', '.join(sorted(services))} ...", flush=True)
        for service, pid in services.items():
            if service == "postgres":
                _stop_postgres(paths)
            else:
                _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while time.monotonic() < deadline and any(_recorded_pid(paths, service) for service in services):
            time.sleep(0.2)
        for service, pid in services.items():
            if _recorded_pid(paths, service) is not None:
                print(f"{service} did not stop in {STOP_TIMEOUT_SECONDS:.0f} s; killing it", file=sys.stderr)
                _signal_group(pid, signal.SIGKILL)
            if service != "postgres":
                # Children left behind in the service's process group (task processes, pool workers).
                _signal_group(pid, signal.SIGKILL)
        time.sleep(0.2)
    left = _running_services(paths)
    for pid_file in paths.pids.glob("*.pid") if paths.pids.is_dir() else []:
        if pid_file.stem not in left:
            pid_file.unlink()
    return list(left)


def stop(arguments: argparse.Namespace) -> int:
    """Stop every process the stack's ``start`` started."""
    paths = StatePaths(arguments.state_dir.resolve())
    began = time.monotonic()
    if not _running_services(paths):
        print(f"Nothing of the stack in {paths.root} is running.")
        return 0
    left = _stop(paths)
    if left:
        print(f"Still running: {', '.join(left)}", file=sys.stderr)
        return 1
    print(f"Stopped in {time.monotonic() - began:.0f} s; the data stays in {paths.root}.")
    return 0


def status(arguments: argparse.Namespace) -> int:
    """List the stack's services and whether each runs."""
    paths = StatePaths(arguments.state_dir.resolve())
    running = _running_services(paths)
    if not running:
        print(f"Nothing of the stack in {paths.root} is running.")
        return 1
    for service, pid in running.items():
        print(f"{service:24} PID {pid:<8} {paths.log(service)}")
    return 0


def describe(arguments: argparse.Namespace) -> int:
    """Print, as JSON, the services and Airflow settings ``start`` uses, to compare with
    docker-compose.yml."""
    paths = StatePaths(arguments.state_dir.resolve())
    addresses = Addresses(
        postgres_port=DEFAULT_PORTS["postgres"],
        redis_port=DEFAULT_PORTS["redis"],
        api_port=DEFAULT_PORTS["gotoassist-api"],
        airflow_api_port=DEFAULT_PORTS["airflow-apiserver"],
        scheduler_health_port=DEFAULT_PORTS["scheduler-health"],
        database_password="<made up on first start>",
    )
    description = {
        "services": SERVICES,
        "airflow_commands": AIRFLOW_COMPONENTS,
        "init_commands": init_commands(),
        "environment": airflow_environment(addresses, paths, dict(SHARED_SETTINGS)),
        "deployment_keys": sorted(DEPLOYMENT_KEYS),
    }
    print(json.dumps(description, indent=2))
    return 0


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def state_dir(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--state-dir",
            type=Path,
            default=DEFAULT_STATE_DIR,
            help="where the stack keeps its data, logs and PID files (default: %(default)s)",
        )

    start_command = commands.add_parser("start", help="start the stack and wait until it answers")
    state_dir(start_command)
    start_command.add_argument("--reset", action="store_true", help="delete the stack's data first")
    start_command.add_argument(
        "--workers", type=_at_least_one, default=2, help="Celery workers to start (default: %(default)s)"
    )
    start_command.add_argument(
        "--pool-slots",
        type=_at_least_one,
        default=API_POOL_SLOTS,
        help=f"slots of the {API_POOL} pool, which the DAG's API tasks run in (default: %(default)s)",
    )
    start_command.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="change or add a setting of every Airflow component, e.g. GOTOASSIST_READY_POKE_INTERVAL=5; "
        "repeatable",
    )
    seeding = start_command.add_argument_group("the GoToAssist API server, seeded on first start")
    seeding.add_argument(
        "--day",
        default=pendulum.yesterday("UTC").to_date_string(),
        help="the day to seed recordings on (default: yesterday, UTC)",
    )
    seeding.add_argument(
        "--count", type=int, default=1234, help="recordings on that day (default: %(default)s)"
    )
    seeding.add_argument(
        "--transcode-delay",
        type=float,
        default=30.0,
        help="seconds the server takes to transcode a recording (default: %(default)s)",
    )
    seeding.add_argument(
        "--latency",
        type=float,
        default=0.0,
        help="seconds the server waits before it handles a call, like a distant one (default: %(default)s)",
    )
    seeding.add_argument(
        "--rate-limit",
        type=int,
        help="calls per second beyond which the server answers 429, as the real API does (default: none)",
    )
    ports = start_command.add_argument_group("ports, all on 127.0.0.1; 0 picks a free one")
    for service, port in DEFAULT_PORTS.items():
        ports.add_argument(f"--{service}-port", type=int, default=port, help=f"{service} (default: {port})")
    ports.add_argument("--free-ports", action="store_true", help="pick a free port for every service")
    start_command.set_defaults(handler=start)

    for name, handler, text in (
        ("stop", stop, "stop every process of the stack"),
        ("status", status, "list the running services"),
        ("describe", describe, "print the services and settings as JSON"),
    ):
        command = commands.add_parser(name, help=text)
        state_dir(command)
        command.set_defaults(handler=handler)
    return parser


def main() -> int:
    arguments = _parser().parse_args()
    try:
        return arguments.handler(arguments)
    except StackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
