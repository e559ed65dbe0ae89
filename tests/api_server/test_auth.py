from __future__ import annotations

import secrets
import time

import pytest
import requests

from gotoassist_api_server.clock import now_timestamp
from gotoassist_api_server.seeding import (
    ACCOUNT_KEY,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_PERSONAL_ACCESS_TOKEN,
    DEFAULT_REFRESH_TOKEN,
)
from gotoassist_api_server.store import RecordingStore


def _list_with(server, authorization, **parameters):
    headers = {} if authorization is None else {"Authorization": authorization}
    return requests.get(
        f"{server.api_url}/archive/recordings",
        params={"accountKey": ACCOUNT_KEY, **parameters},
        headers=headers,
        timeout=10,
    )


def test_refresh_token_grant_grants_bearer_token(server, request_token):
    response = request_token(server, grant_type="refresh_token", refresh_token=DEFAULT_REFRESH_TOKEN)

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"]
    assert "refresh_token" not in body
    assert _list_with(server, f"Bearer {body['access_token']}").status_code == 200


def test_personal_access_token_grant_grants_bearer_token(server, request_token):
    response = request_token(server, grant_type="personal_access_token", pat=DEFAULT_PERSONAL_ACCESS_TOKEN)

    assert response.status_code == 200
    assert _list_with(server, f"Bearer {response.json()['access_token']}").status_code == 200


@pytest.mark.parametrize(
    "auth",
    [
        pytest.param((DEFAULT_CLIENT_ID, "wrong-secret"), id="wrong-secret"),
        pytest.param(("unknown-client", DEFAULT_CLIENT_SECRET), id="unknown-client"),
        pytest.param(None, id="no-basic-auth"),
    ],
)
def test_bad_client_credentials_are_rejected(server, auth):
    response = requests.post(
        server.token_url,
        auth=auth,
        data={"grant_type": "personal_access_token", "pat": DEFAULT_PERSONAL_ACCESS_TOKEN},
        timeout=10,
    )

    assert response.status_code == 401
    assert response.json() == {"error": "invalid_client"}


@pytest.mark.parametrize(
    ("form", "error"),
    [
        pytest.param(
            {"grant_type": "refresh_token", "refresh_token": "nope"}, "invalid_grant", id="bad-refresh"
        ),
        pytest.param({"grant_type": "personal_access_token", "pat": "nope"}, "invalid_grant", id="bad-pat"),
        pytest.param(
            {"grant_type": "password", "username": "a", "password": "b"},
            "unsupported_grant_type",
            id="password",
        ),
        pytest.param({"grant_type": "refresh_token"}, "invalid_request", id="missing-refresh-token"),
        pytest.param({}, "invalid_request", id="missing-grant-type"),
    ],
)
def test_bad_grants_are_rejected(server, request_token, form, error):
    response = request_token(server, **form)

    assert response.status_code == 400
    assert response.json()["error"] == error
    if error == "invalid_grant":
        assert response.json()["error_description"]


def test_rotation_replaces_refresh_token(server, request_token, seeded_database):
    own_token = f"rotation-{secrets.token_hex(8)}"
    with RecordingStore(seeded_database.path) as store:
        store.save_refresh_token(own_token, DEFAULT_CLIENT_ID, issued_at=now_timestamp())
    server.update_settings(rotate_refresh_tokens=True)

    first = request_token(server, grant_type="refresh_token", refresh_token=own_token)
    assert first.status_code == 200
    rotated = first.json()["refresh_token"]
    assert rotated != own_token

    reused = request_token(server, grant_type="refresh_token", refresh_token=own_token)
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"

    second = request_token(server, grant_type="refresh_token", refresh_token=rotated)
    assert second.status_code == 200
    assert second.json()["refresh_token"] not in (own_token, rotated)


def test_access_token_expires_after_its_lifetime(server, request_token):
    server.update_settings(token_ttl=1)
    response = request_token(server, grant_type="personal_access_token", pat=DEFAULT_PERSONAL_ACCESS_TOKEN)
    assert response.json()["expires_in"] == 1
    authorization = f"Bearer {response.json()['access_token']}"
    assert _list_with(server, authorization).status_code == 200

    time.sleep(1.1)

    expired = _list_with(server, authorization)
    assert expired.status_code == 403
    assert expired.json() == {"error": "invalid authorization header"}


@pytest.mark.parametrize(
    ("auth_scheme", "header_format", "accepted"),
    [
        pytest.param("bearer", "Bearer {token}", True, id="bearer-accepts-bearer"),
        pytest.param("bearer", "OAuth oauth_token={token}", False, id="bearer-rejects-oauth"),
        pytest.param("oauth", "OAuth oauth_token={token}", True, id="oauth-accepts-oauth"),
        pytest.param("oauth", "Bearer {token}", False, id="oauth-rejects-bearer"),
        pytest.param("bearer", "{token}", False, id="bare-token"),
    ],
)
def test_auth_schemes(server, request_token, auth_scheme, header_format, accepted):
    server.update_settings(auth_scheme=auth_scheme)
    response = request_token(server, grant_type="personal_access_token", pat=DEFAULT_PERSONAL_ACCESS_TOKEN)
    token = response.json()["access_token"]

    listing = _list_with(server, header_format.format(token=token))

    assert listing.status_code == (200 if accepted else 403)


@pytest.mark.parametrize("bad_token_status", [401, 403])
@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="missing"),
        pytest.param("Bearer not-a-token", id="unknown"),
        pytest.param("Basic ZGVtbzpkZW1v", id="other-scheme"),
    ],
)
def test_bad_tokens_get_configured_status(server, bad_token_status, authorization):
    server.update_settings(bad_token_status=bad_token_status)

    response = _list_with(server, authorization)

    assert response.status_code == bad_token_status
    assert response.json() == {"error": "invalid authorization header"}


def test_auth_is_checked_before_parameters(server):
    listing = _list_with(server, "Bearer not-a-token", sessionType="7", fromTime="yesterday")
    transcode = requests.post(
        f"{server.api_url}/archive/recordings/transcode/not-an-id",
        headers={"Authorization": "Bearer not-a-token"},
        timeout=10,
    )

    assert listing.status_code == 403
    assert transcode.status_code == 403
