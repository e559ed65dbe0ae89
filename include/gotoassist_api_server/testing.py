"""Run the local GoToAssist API server as a real subprocess, for tests and demos.

Example::

    from gotoassist_api_server.seeding import seed
    from gotoassist_api_server.testing import running_server

    seed(db_path, day="2026-11-13", count=20)
    with running_server(db_path, transcode_delay=0.5) as server:
        requests.post(server.token_url, ...)
        requests.get(f"{server.api_url}/archive/recordings", ...)
        assert server.stats(day="2026-11-13")["day"]["archived_before_ready"] == 0

Faults (see :mod:`gotoassist_api_server.faults`) are set at start or at run time::

    with running_server(db_path, faults=FaultPlan(probabilities={"list": {"unavailable": 0.2}})) as server:
        server.fail_next("archive", "drop-after", times=2)
        ...
        print(f"{server.stats()['faults']['injected']} faults injected and survived")
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import requests

import gotoassist_api_server
from gotoassist_api_server.faults import Endpoint, FaultKind, FaultPlan, QueuedFaults
from gotoassist_api_server.settings import ServerSettings

#: How long to wait for a starting server to answer.
STARTUP_TIMEOUT_SECONDS = 20.0
#: How long a stopping server may take before it is killed.
SHUTDOWN_TIMEOUT_SECONDS = 5.0
_POLL_INTERVAL_SECONDS = 0.05
_REQUEST_TIMEOUT_SECONDS = 10.0


class ServerError(RuntimeError):
    """The server subprocess could not be started or answered an admin request with an error."""


class ServerHandle:
    """A local API server running in a subprocess, on a database file.

    Settings changed through :meth:`update_settings` and the fault plan set through :meth:`set_faults`,
    :meth:`fail_next` or :meth:`clear_faults` are remembered, so :meth:`restart` brings the server back
    with the same behaviour, on the same port and database.

    :param db_path: the SQLite database file.
    :param settings: the behaviour options to start with.
    :param workdir: a directory for the port file and the server's output.
    :param host: the address to listen on.
    :param log_level: the server's log level.
    :param faults: the fault plan to start with; none injected when ``None``.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        settings: ServerSettings,
        workdir: str | os.PathLike[str],
        host: str = "127.0.0.1",
        log_level: str = "warning",
        faults: FaultPlan | None = None,
    ) -> None:
        self.db_path = Path(db_path)
        self.settings = settings
        #: The fault plan as last known: what :meth:`start` passes on.
        self.faults = faults or FaultPlan()
        self.host = host
        self.log_level = log_level
        self.port = 0
        self.port_file = Path(workdir) / "port"
        #: The server's output, appended to across restarts.
        self.log_path = Path(workdir) / "server.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        """The server's root URL, e.g. ``http://127.0.0.1:8123``."""
        return f"http://{self.host}:{self.port}"

    @property
    def token_url(self) -> str:
        """The OAuth token endpoint."""
        return f"{self.base_url}/oauth/token"

    @property
    def api_url(self) -> str:
        """The recordings API base URL, ending in ``/G2A/rest/v1``."""
        return f"{self.base_url}/G2A/rest/v1"

    def start(self) -> None:
        """Start the server and wait until it answers.

        :raises ServerError: if it exits or stays silent for :data:`STARTUP_TIMEOUT_SECONDS`.
        """
        self.port_file.unlink(missing_ok=True)
        command = [
            sys.executable,
            "-m",
            "gotoassist_api_server",
            "serve",
            "--db",
            str(self.db_path),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--port-file",
            str(self.port_file),
            "--log-level",
            self.log_level,
            *self.settings.to_cli_arguments(),
            *self.faults.to_cli_arguments(),
        ]
        # The package directory's parent goes first on the path, so the subprocess runs this very
        # code even where the project is not installed.
        package_root = str(Path(gotoassist_api_server.__file__).resolve().parent.parent)
        environment = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
        }
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=environment)
        self._wait_until_answering()

    def _wait_until_answering(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ServerError(
                    f"the server exited with status {self._process.returncode}:\n{self._log_tail()}"
                )
            if self.port_file.exists():
                self.port = int(self.port_file.read_text().strip())
                with contextlib.suppress(requests.ConnectionError):
                    if requests.get(f"{self.base_url}/_admin/health", timeout=1.0).ok:
                        return
            time.sleep(_POLL_INTERVAL_SECONDS)
        self.stop()
        raise ServerError(
            f"the server did not answer within {STARTUP_TIMEOUT_SECONDS} s:\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the server: terminate it, and kill it if it does not exit in time."""
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout=SHUTDOWN_TIMEOUT_SECONDS)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        """Stop the server and start it again on the same port, database, settings and fault plan.

        The plan comes back with what was left of its queues when the server stopped, as far as the
        server still answered; its probability draws start from the seed again.
        """
        with contextlib.suppress(requests.RequestException, ServerError):
            self.faults = self.faults_in_force()
        self.stop()
        self.start()

    def _admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(
            method, f"{self.base_url}/_admin/{path}", timeout=_REQUEST_TIMEOUT_SECONDS, **kwargs
        )
        if not response.ok:
            raise ServerError(f"{method} /_admin/{path} answered {response.status_code}: {response.text}")
        return response.json()

    def stats(self, day: str | None = None, timezone: str = "UTC") -> dict[str, Any]:
        """Fetch the statistics, as :func:`gotoassist_api_server.stats.stats` computes them.

        :param day: a local day, ``YYYY-MM-DD``, to summarise in detail.
        :param timezone: the IANA timezone that days are local to.
        :return: the statistics.
        """
        parameters = {"timezone": timezone} | ({"day": day} if day is not None else {})
        return self._admin("GET", "stats", params=parameters)

    def recordings(self, day: str | None = None, timezone: str = "UTC") -> list[dict[str, Any]]:
        """Fetch the stored recordings, or those started on one local day, in start-time order.

        :param day: a local day, ``YYYY-MM-DD``.
        :param timezone: the IANA timezone the day is local to.
        :return: one mapping per recording, instants in ISO 8601.
        """
        parameters = {"timezone": timezone} | ({"day": day} if day is not None else {})
        return self._admin("GET", "recordings", params=parameters)

    def update_settings(self, **changes: Any) -> ServerSettings:
        """Change behaviour options of the running server; later restarts keep them.

        :param changes: option names of :class:`ServerSettings` and their new values.
        :return: the settings now in force.
        """
        wanted = self.settings.updated(changes)
        self.settings = ServerSettings.model_validate(
            self._admin("POST", "settings", json=wanted.model_dump(mode="json"))
        )
        return self.settings

    def faults_in_force(self) -> FaultPlan:
        """Fetch the fault plan in force, with what is left of its queues.

        :return: the plan.
        """
        return FaultPlan.model_validate(self._admin("GET", "faults"))

    def set_faults(self, plan: FaultPlan | None = None, /, **fields: Any) -> FaultPlan:
        """Replace the fault plan of the running server; later restarts keep it.

        :param plan: the new plan; when ``None``, one is built from ``fields``.
        :param fields: fields of :class:`FaultPlan`, e.g.
            ``probabilities={"list": {"unavailable": 0.2}}, seed=3``.
        :return: the plan now in force.
        """
        wanted = plan if plan is not None else FaultPlan(**fields)
        self.faults = FaultPlan.model_validate(
            self._admin("POST", "faults", json=wanted.model_dump(mode="json"))
        )
        return self.faults

    def fail_next(self, endpoint: Endpoint | str, fault: FaultKind | str, times: int = 1) -> FaultPlan:
        """Make the next calls to an endpoint fail, after any faults already queued for it.

        :param endpoint: the endpoint, e.g. ``transcode``.
        :param fault: the fault, e.g. ``drop-after``.
        :param times: how many calls it fails.
        :return: the plan now in force.
        """
        queued = QueuedFaults(endpoint=endpoint, fault=fault, times=times)
        self.faults = FaultPlan.model_validate(
            self._admin("POST", "faults/next", json=queued.model_dump(mode="json"))
        )
        return self.faults

    def clear_faults(self) -> FaultPlan:
        """Inject no faults any more.

        :return: the plan now in force, the default one.
        """
        return self.set_faults(FaultPlan())


@contextlib.contextmanager
def running_server(
    db_path: str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    log_level: str = "warning",
    faults: FaultPlan | None = None,
    **settings: Any,
) -> Iterator[ServerHandle]:
    """Run the local API server in a subprocess for the duration of a block.

    :param db_path: the SQLite database file; seed it first for recordings and credentials.
    :param host: the address to listen on.
    :param log_level: the server's log level; its output goes to ``handle.log_path``, a temporary
        file removed on exit.
    :param faults: the fault plan to start with; none injected when ``None``.
    :param settings: behaviour options, as fields of :class:`ServerSettings`
        (e.g. ``transcode_delay=0.5``, ``id_transport="json"``).
    :return: a context manager yielding the handle of the running server, stopped on exit.
    :raises ServerError: if the server does not start.
    """
    server_settings = ServerSettings(**settings)
    with tempfile.TemporaryDirectory(prefix="gotoassist-api-server-") as workdir:
        handle = ServerHandle(
            db_path, server_settings, workdir, host=host, log_level=log_level, faults=faults
        )
        try:
            handle.start()
            yield handle
        finally:
            handle.stop()
