from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pendulum
import pytest
import requests

from gotoassist_api_server.faults import FaultPlan
from gotoassist_api_server.seeding import (
    ACCOUNT_KEY,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_PERSONAL_ACCESS_TOKEN,
    SeedResult,
    seed,
)
from gotoassist_api_server.settings import ServerSettings
from gotoassist_api_server.testing import ServerHandle, running_server

DAY = "2026-11-13"
DAY_COUNT = 1234
TRANSCODE_DELAY = 0.5
#: The settings every test on the shared server starts with.
SHARED_SETTINGS = ServerSettings(transcode_delay=TRANSCODE_DELAY)


@dataclass(frozen=True)
class SeededDatabase:
    """The shared database: a full day of recordings plus a small day a few days before now."""

    path: Path
    day: SeedResult
    recent_day: SeedResult


def fetch_token(server: ServerHandle, **form: str) -> requests.Response:
    """Ask the token endpoint for an access token with the demo client's credentials."""
    return requests.post(
        server.token_url, auth=(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET), data=form, timeout=10
    )


def pat_token(server: ServerHandle) -> str:
    """Return a fresh access token obtained with the demo personal access token."""
    response = fetch_token(server, grant_type="personal_access_token", pat=DEFAULT_PERSONAL_ACCESS_TOKEN)
    response.raise_for_status()
    return response.json()["access_token"]


class RecordingsApi:
    """A thin client for the recordings API of a running server, authorised with a bearer token."""

    def __init__(self, server: ServerHandle) -> None:
        self.server = server
        self.headers = {"Authorization": f"Bearer {pat_token(server)}"}

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.server.api_url}{path}", headers=headers, timeout=10, **kwargs)

    def list(self, **parameters: str) -> requests.Response:
        return self.request("GET", "/archive/recordings", params={"accountKey": ACCOUNT_KEY, **parameters})

    def transcode(self, recording_ids: list[str]) -> requests.Response:
        return self.request("POST", f"/archive/recordings/transcode/{','.join(recording_ids)}")

    def archive(self, recording_ids: list[str]) -> requests.Response:
        return self.request("PUT", f"/archive/recordings/archived/{','.join(recording_ids)}")

    def urls(self, recording_ids: list[str]) -> requests.Response:
        return self.request("GET", f"/archive/recordings/urls/{','.join(recording_ids)}")

    def recordings_by_id(self) -> dict[str, dict[str, Any]]:
        return {recording["recording_id"]: recording for recording in self.server.recordings()}


@pytest.fixture(scope="session")
def seeded_database(tmp_path_factory: pytest.TempPathFactory) -> SeededDatabase:
    path = tmp_path_factory.mktemp("api-server") / "shared.sqlite"
    day = seed(path, day=DAY, count=DAY_COUNT, neighbours=5, ready_fraction=0.25, seed=11)
    recent = pendulum.now("UTC").subtract(days=3).to_date_string()
    recent_day = seed(path, day=recent, count=5, neighbours=0, seed=12)
    return SeededDatabase(path=path, day=day, recent_day=recent_day)


@pytest.fixture(scope="session")
def shared_server(seeded_database: SeededDatabase) -> Iterator[ServerHandle]:
    with running_server(seeded_database.path, **SHARED_SETTINGS.model_dump()) as server:
        yield server


@pytest.fixture
def server(shared_server: ServerHandle) -> Iterator[ServerHandle]:
    """The shared server, with its settings put back and its faults cleared after the test."""
    yield shared_server
    if shared_server.settings != SHARED_SETTINGS:
        shared_server.update_settings(**SHARED_SETTINGS.model_dump())
    if shared_server.faults != FaultPlan():
        shared_server.clear_faults()


@pytest.fixture
def api(server: ServerHandle) -> RecordingsApi:
    return RecordingsApi(server)


@pytest.fixture(scope="session")
def _untouched_recording_ids(seeded_database: SeededDatabase) -> Iterator[str]:
    # The latest-started recordings of the day that are not ready yet: handing them out from the
    # end keeps the earliest ones untouched for the tests that check list contents.
    ready = set(seeded_database.day.ready_recording_ids)
    return iter([rid for rid in reversed(seeded_database.day.day_recording_ids) if rid not in ready])


@pytest.fixture
def take_untouched(_untouched_recording_ids: Iterator[str]) -> Callable[[int], list[str]]:
    """Hand out IDs of recordings no other test has touched and that are not ready for download."""

    def take(count: int) -> list[str]:
        return [next(_untouched_recording_ids) for _ in range(count)]

    return take


@pytest.fixture
def request_token() -> Callable[..., requests.Response]:
    """Call the token endpoint of a server with the demo client's credentials and some form fields."""
    return fetch_token


@pytest.fixture
def make_api() -> Callable[[ServerHandle], RecordingsApi]:
    """Build an authorised recordings API client for any running server."""
    return RecordingsApi


@pytest.fixture
def day(seeded_database: SeededDatabase) -> SeedResult:
    """The seeding result of the shared database's full day."""
    return seeded_database.day
