"""The async hook (the trigger's) against the local API server, over real HTTP.

It shares its rules with the sync hook; these tests check that it applies them: every ID transport
and auth scheme, chunk narrowing, one token renewal on refusal, rotated refresh tokens, and what
goes on the wire.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
import requests

from gotoassist_api_server.seeding import (
    ACCOUNT_KEY,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
)
from gotoassist_api_server.settings import ServerSettings
from gotoassist_recordings.exceptions import ChunkTooLargeError, InvalidRecordingIdError
from gotoassist_recordings.hooks.gotoassist import GoToAssistAsyncHook, GoToAssistHook

T = TypeVar("T")

UNKNOWN_IDS = ["1000000000000", "9999999999999"]
DAY = "2026-11-20"


def on_a_loop(conn_id: str, use: Callable[[GoToAssistAsyncHook], Awaitable[T]]) -> T:
    """Open an async hook on a new event loop, use it, and close it."""

    async def run() -> T:
        async with GoToAssistAsyncHook(conn_id) as hook:
            return await use(hook)

    return asyncio.run(run())


@pytest.mark.parametrize("transport", ["path", "json", "query", "query-repeated"])
def test_readiness_matches_the_sync_hook_for_every_id_transport(api, make_connection, take, transport):
    api.handle.update_settings(id_transport=transport)
    conn_id = make_connection(api.base_url, id_transport=transport)
    ready_ids, waiting_ids = take(3, ready=True), take(2)
    chunk = [ready_ids[0], UNKNOWN_IDS[0], *waiting_ids, *ready_ids[1:], UNKNOWN_IDS[1]]

    ready, outcome = on_a_loop(conn_id, lambda hook: hook.ready_recording_ids(chunk))

    assert ready == set(ready_ids)
    assert sorted(outcome.refused) == UNKNOWN_IDS
    assert sorted(outcome.processed) == sorted(ready_ids + waiting_ids)
    sync_ready, sync_outcome = GoToAssistHook(conn_id).ready_recording_ids(chunk)
    assert (sync_ready, sorted(sync_outcome.refused)) == (ready, sorted(outcome.refused))


@pytest.mark.parametrize("bad_token_status", [401, 403])
@pytest.mark.parametrize("auth_scheme", ["bearer", "oauth"])
def test_an_expired_token_is_renewed_once(api, make_connection, take, auth_scheme, bad_token_status):
    api.handle.update_settings(auth_scheme=auth_scheme, bad_token_status=bad_token_status)
    conn_id = make_connection(api.base_url, auth_scheme=auth_scheme)
    recording_ids = take(1, ready=True)

    async def check_twice(hook: GoToAssistAsyncHook) -> tuple[set[str], int]:
        await hook.ready_recording_ids(recording_ids)
        api.expire_access_tokens()
        before = api.last_call_id()
        ready, _ = await hook.ready_recording_ids(recording_ids)
        return ready, before

    ready, before = on_a_loop(conn_id, check_twice)

    assert ready == set(recording_ids)
    assert [(c.endpoint, c.status) for c in api.calls(since=before, at_least=3)] == [
        ("urls", bad_token_status),
        ("token", 200),
        ("urls", 200),
    ]


def test_a_rotated_refresh_token_is_used_for_the_next_refresh(fresh_api, make_connection):
    # A server of its own: rotation revokes the seeded refresh token, which other tests use.
    api = fresh_api(
        {DAY: {"count": 3, "neighbours": 0, "ready_fraction": 1.0, "seed": 31}},
        settings=ServerSettings(rotate_refresh_tokens=True),
    )
    conn_id = make_connection(api.base_url)
    recording_ids = api.seeded[DAY].ready_recording_ids[:1]

    async def check_after_two_expiries(hook: GoToAssistAsyncHook) -> set[str]:
        for _ in range(2):
            await hook.ready_recording_ids(recording_ids)
            api.expire_access_tokens()
        ready, _ = await hook.ready_recording_ids(recording_ids)
        return ready

    before = api.last_call_id()
    assert on_a_loop(conn_id, check_after_two_expiries) == set(recording_ids)

    # Each refresh after the first used the refresh token the previous one rotated in: the seeded
    # one has been revoked since the first.
    assert [c.status for c in api.calls(since=before, endpoints="token", at_least=3)] == [200, 200, 200]
    seeded_grant = requests.post(
        api.handle.token_url,
        auth=(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET),
        data={"grant_type": "refresh_token", "refresh_token": DEFAULT_REFRESH_TOKEN},
        timeout=10,
    )
    assert seeded_grant.status_code == 400


def test_only_the_token_endpoint_sees_the_client_secret(api, make_connection, take, recording_proxy):
    extra = {
        "refresh_token": DEFAULT_REFRESH_TOKEN,
        "token_url": f"{recording_proxy.base_url}/oauth/token",
        "account_key": ACCOUNT_KEY,
        "auth_scheme": "oauth",
    }
    api.handle.update_settings(auth_scheme="oauth")
    conn_id = make_connection(recording_proxy.base_url, **extra)
    recording_ids = take(2, ready=True)

    ready, _ = on_a_loop(conn_id, lambda hook: hook.ready_recording_ids(recording_ids))

    assert ready == set(recording_ids)
    token_request, check = recording_proxy.seen
    assert (token_request.method, token_request.target) == ("POST", "/oauth/token")
    assert token_request.headers["Authorization"].startswith("Basic ")
    assert (check.method, check.target) == (
        "GET",
        f"/G2A/rest/v1/archive/recordings/urls/{','.join(recording_ids)}",
    )
    assert check.headers["Authorization"].startswith("OAuth oauth_token=")
    for seen in recording_proxy.seen:
        names = {name.lower().replace("-", "_") for name in seen.headers}
        assert not names & set(extra), f"{seen.method} {seen.target} sent extras as headers"
        values = " ".join(seen.headers.values())
        assert DEFAULT_REFRESH_TOKEN not in values
        assert DEFAULT_CLIENT_SECRET not in values


@pytest.mark.parametrize(
    ("recording_ids", "error"),
    [
        pytest.param(["12/../3"], InvalidRecordingIdError, id="bad-id"),
        pytest.param([str(1000000000000 + n) for n in range(501)], ChunkTooLargeError, id="501-ids"),
    ],
)
def test_bad_chunks_are_refused_before_any_call(api, make_connection, recording_ids: list[Any], error):
    conn_id = make_connection(api.base_url)
    before = api.last_call_id()

    with pytest.raises(error):
        on_a_loop(conn_id, lambda hook: hook.ready_recording_ids(recording_ids))

    assert api.calls(since=before) == []
