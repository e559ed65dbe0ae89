"""Fixtures for testing the hook, operators and sensor against the local API server over real HTTP.

Each test module shares one seeded server; tests that change recordings take IDs no other test of
the module has touched. Connections come from ``AIRFLOW_CONN_*`` environment variables, which the
task SDK resolves outside a running task through its environment-variables secrets backend.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from gotoassist_api_server.seeding import (
    ACCOUNT_KEY,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
    SeedResult,
    seed,
)
from gotoassist_api_server.settings import ServerSettings
from gotoassist_api_server.testing import ServerHandle, running_server

# Importing Airflow creates a logs folder under AIRFLOW_HOME (by default ~/airflow). Nothing in
# this file imports Airflow, so pointing it at a temporary folder here takes effect before the test
# modules import the hook.
if "AIRFLOW_HOME" not in os.environ:
    _airflow_home = tempfile.mkdtemp(prefix="gotoassist-airflow-home-")
    os.environ["AIRFLOW_HOME"] = _airflow_home
    atexit.register(shutil.rmtree, _airflow_home, ignore_errors=True)

#: A day with more recordings than one list holds, left untouched: the listing tests read it.
LIST_DAY = "2026-11-13"
LIST_DAY_COUNT = 1234
#: A day whose recordings the transcode, archive and sensor tests change.
WORK_DAY = "2026-11-20"
WORK_DAY_COUNT = 800
#: Short enough to keep the suite fast, long enough to be seen as "not ready yet".
TRANSCODE_DELAY = 0.3
SHARED_SETTINGS = ServerSettings(transcode_delay=TRANSCODE_DELAY)
#: A file that does not exist: asking for it is a logged call that changes nothing (a 404).
CALL_LOG_MARKER_PATH = "/files/0/call-log-marker"
CALL_LOG_TIMEOUT_SECONDS = 5.0
CALL_LOG_STRAGGLER_SECONDS = 0.01
#: How long a test waits for recordings to become ready before it gives up.
READY_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class LoggedCall:
    """One call the server wrote to its call log."""

    call_id: int
    method: str
    endpoint: str
    status: int
    recording_id_count: int

    @property
    def is_marker(self) -> bool:
        """Whether this is a marker call of :meth:`LocalApi.calls` (no test asks for missing files)."""
        return self.endpoint == "file" and self.status == 404


@dataclass
class LocalApi:
    """A running local API server, its database and what was seeded into it."""

    handle: ServerHandle
    db_path: Path
    seeded: dict[str, SeedResult] = field(default_factory=dict)
    #: The day :meth:`recordings_by_id` reads unless told otherwise; every day when ``None``.
    work_day: str | None = None

    @property
    def base_url(self) -> str:
        return self.handle.base_url

    def calls(
        self, since: int = 0, *, endpoints: str | set[str] | None = None, at_least: int = 0
    ) -> list[LoggedCall]:
        """Read the server's call log after call ``since``, in the order the calls arrived.

        The statistics only give totals; the log shows how many recording IDs each single call named.
        The server writes a call to its log just after answering it, so a call the client has seen
        answered may not be in the log yet. A marker call is made first and the log read once the
        marker is in it; with ``at_least``, the log is read again until it holds that many entries.

        :param endpoints: keep only calls to these endpoints (``"transcode"``, ``"token"``...).
        :param at_least: how many entries the test expects, at the least.
        """
        markers = self._marker_count()
        requests.get(f"{self.base_url}{CALL_LOG_MARKER_PATH}", timeout=10)
        wanted = {endpoints} if isinstance(endpoints, str) else endpoints
        deadline = time.monotonic() + CALL_LOG_TIMEOUT_SECONDS
        while True:
            calls = [
                call
                for call in self._read_calls(since)
                if not call.is_marker and (wanted is None or call.endpoint in wanted)
            ]
            logged = self._marker_count() > markers and len(calls) >= at_least
            if logged or time.monotonic() > deadline:
                return calls
            time.sleep(0.005)

    def _read_calls(self, since: int) -> list[LoggedCall]:
        with self._log() as connection:
            rows = connection.execute(
                "SELECT call_id, method, endpoint, status, recording_id_count FROM calls "
                "WHERE call_id > ? ORDER BY called_at, call_id",
                (since,),
            ).fetchall()
        return [LoggedCall(*row) for row in rows]

    def _log(self) -> contextlib.closing[sqlite3.Connection]:
        return contextlib.closing(sqlite3.connect(self.db_path, timeout=30))

    def _marker_count(self) -> int:
        with self._log() as connection:
            (count,) = connection.execute(
                "SELECT COUNT(*) FROM calls WHERE endpoint = 'file' AND status = 404"
            ).fetchone()
        return count

    def last_call_id(self) -> int:
        """The newest entry of the call log, once every call answered so far is in it.

        A call answered just before the marker may still be on its way to the log; a short pause
        lets it land, so it is not counted as one of the calls a test goes on to make.
        """
        self.calls()
        time.sleep(CALL_LOG_STRAGGLER_SECONDS)
        return max((call.call_id for call in self._read_calls(0)), default=0)

    def recordings_by_id(self, day: str | None = None) -> dict[str, dict[str, Any]]:
        """The server's records of the recordings of ``day`` (by default the work day), by ID."""
        recordings = self.handle.recordings(day=day or self.work_day)
        return {recording["recording_id"]: recording for recording in recordings}

    def wait_until_ready(self, recording_ids: list[str]) -> None:
        """Wait until the server reports every one of the recordings ready for download."""
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while True:
            recordings = self.recordings_by_id()
            if all(recordings[rid]["state"] == "ready_for_download" for rid in recording_ids):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"recordings not ready after {READY_TIMEOUT_SECONDS} s")
            time.sleep(0.05)

    def expire_access_tokens(self) -> None:
        """Make every access token the server issued so far expire, as if their hour had passed."""
        with self._log() as connection, connection:
            connection.execute("UPDATE access_tokens SET expires_at = 0")


@contextlib.contextmanager
def seeded_server(
    db_path: Path, days: dict[str, dict[str, Any]], settings: ServerSettings = SHARED_SETTINGS
) -> Iterator[LocalApi]:
    """Seed days into a new database and run a server on it for the duration of a block.

    :param days: seed arguments per day, e.g. ``{"2026-11-13": {"count": 20}}``.
    """
    seeded = {day: seed(db_path, day=day, **arguments) for day, arguments in days.items()}
    with running_server(db_path, **settings.model_dump()) as handle:
        yield LocalApi(handle=handle, db_path=db_path, seeded=seeded)


@pytest.fixture(scope="module")
def shared_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalApi]:
    """The module's server: a full listing day and a day of recordings to work on."""
    db_path = tmp_path_factory.mktemp("gotoassist-api") / "shared.sqlite"
    days = {
        LIST_DAY: {"count": LIST_DAY_COUNT, "neighbours": 5, "ready_fraction": 0.25, "seed": 11},
        WORK_DAY: {"count": WORK_DAY_COUNT, "neighbours": 0, "ready_fraction": 0.3, "seed": 12},
    }
    with seeded_server(db_path, days) as api:
        api.work_day = WORK_DAY
        yield api


@pytest.fixture
def api(shared_api: LocalApi) -> Iterator[LocalApi]:
    """The module's server, with its settings put back after the test."""
    yield shared_api
    if shared_api.handle.settings != SHARED_SETTINGS:
        shared_api.handle.update_settings(**SHARED_SETTINGS.model_dump())


@pytest.fixture
def fresh_api(tmp_path: Path) -> Iterator[Callable[..., LocalApi]]:
    """Start servers on new databases; each is stopped when the test ends.

    Call it with the days to seed and, optionally, ``settings=ServerSettings(...)``.
    """
    with contextlib.ExitStack() as stack:
        counter = itertools.count()

        def start(days: dict[str, dict[str, Any]], settings: ServerSettings = SHARED_SETTINGS) -> LocalApi:
            db_path = tmp_path / f"fresh-{next(counter)}.sqlite"
            return stack.enter_context(seeded_server(db_path, days, settings))

        yield start


@dataclass
class _UntouchedIds:
    waiting: Iterator[str]
    ready: Iterator[str]


@pytest.fixture(scope="module")
def _untouched(shared_api: LocalApi) -> _UntouchedIds:
    day = shared_api.seeded[WORK_DAY]
    ready = set(day.ready_recording_ids)
    return _UntouchedIds(
        waiting=iter([rid for rid in day.day_recording_ids if rid not in ready]),
        ready=iter(day.ready_recording_ids),
    )


@pytest.fixture
def take(_untouched: _UntouchedIds) -> Callable[..., list[str]]:
    """Hand out IDs of work-day recordings no other test of the module has touched.

    ``take(3)`` gives recordings never transcoded; ``take(3, ready=True)`` ones seeded ready.
    """

    def take_ids(count: int, *, ready: bool = False) -> list[str]:
        source = _untouched.ready if ready else _untouched.waiting
        return [next(source) for _ in range(count)]

    return take_ids


#: Connection IDs are never reused, so nothing one test's hook kept can reach another test.
_connection_numbers = itertools.count()


@pytest.fixture
def make_connection(monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Define a ``gotoassist`` connection for a server as an ``AIRFLOW_CONN_*`` variable.

    Keyword arguments override the connection fields (``host``, ``login``, ``password``, ``schema``,
    ``port``) and its extra; an extra set to ``None`` is left out. Returns the connection ID.
    """
    field_names = {"host", "login", "password", "schema", "port"}

    def make(base_url: str, **overrides: Any) -> str:
        conn_id = f"gotoassist_test_{next(_connection_numbers)}"
        fields = {
            "conn_type": "gotoassist",
            "host": base_url,
            "login": DEFAULT_CLIENT_ID,
            "password": DEFAULT_CLIENT_SECRET,
        }
        extra = {
            "refresh_token": DEFAULT_REFRESH_TOKEN,
            "token_url": f"{base_url}/oauth/token",
            "account_key": ACCOUNT_KEY,
        }
        for name, value in overrides.items():
            (fields if name in field_names else extra)[name] = value
        fields["extra"] = {name: value for name, value in extra.items() if value is not None}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))
        return conn_id

    return make


@dataclass(frozen=True)
class SeenRequest:
    """A request as it arrived on the wire: the raw request target and the headers."""

    method: str
    target: str
    headers: dict[str, str]


class RecordingProxy:
    """A pass-through HTTP server in front of the API server that notes every request it forwards.

    The API server does not keep request headers, so this is where a test sees exactly what the
    hook put on the wire.

    :param upstream: base URL of the API server.
    """

    # Headers that belong to one hop and are recomputed when forwarding.
    _HOP_HEADERS = frozenset({"connection", "content-length", "host", "transfer-encoding", "keep-alive"})

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.seen: list[SeenRequest] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.seen.append(SeenRequest(self.command, self.path, dict(self.headers.items())))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in proxy._HOP_HEADERS}
                answer = requests.request(
                    self.command,
                    f"{proxy.upstream}{self.path}",
                    headers=headers,
                    data=body,
                    allow_redirects=False,
                    timeout=30,
                )
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in proxy._HOP_HEADERS | {"content-encoding", "date", "server"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = _forward

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def recording_proxy(api: LocalApi) -> Iterator[RecordingProxy]:
    """A proxy in front of the module's server that notes each request's target and headers."""
    with RecordingProxy(api.base_url) as proxy:
        yield proxy
