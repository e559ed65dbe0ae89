"""The GoToAssist hook against the local API server, over real HTTP."""

from __future__ import annotations

import itertools

import pendulum
import pytest
import requests

from gotoassist_api_server.seeding import (
    ACCOUNT_KEY,
    COMPANY_ID,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_PERSONAL_ACCESS_TOKEN,
    DEFAULT_REFRESH_TOKEN,
    USER_KEYS,
)
from gotoassist_recordings.exceptions import (
    CredentialsRefusedError,
    GoToAssistApiError,
    GoToAssistConfigError,
)
from gotoassist_recordings.hooks.gotoassist import GoToAssistHook
from gotoassist_recordings.models import RecordingFilter
from gotoassist_recordings.windows import TimeWindow

LIST_DAY = "2026-11-13"
#: Holds a few hundred recordings of the list day: fewer than one list, so one call returns them all.
MORNING = TimeWindow(pendulum.datetime(2026, 11, 13, 9), pendulum.datetime(2026, 11, 13, 12))
UNKNOWN_IDS = ["1000000000000", "9999999999999"]
TRANSPORTS = ["path", "json", "query", "query-repeated"]
#: Connection extras that grant tokens with the personal access token instead of the refresh token.
WITH_PAT = {"refresh_token": None, "personal_access_token": DEFAULT_PERSONAL_ACCESS_TOKEN}


def expected_listing(recordings, window, **wanted):
    """What the list call should return for a window and filter, from the server's own records.

    :param wanted: recording fields and their values (``account_key``, ``session_type``...).
    """
    matching = [
        recording
        for recording in recordings
        if window.start <= pendulum.parse(recording["start_time"]) < window.end
        and not recording["archived"]
        and all(recording[name] == value for name, value in wanted.items())
    ]
    ready = [r["recording_id"] for r in matching if r["state"] == "ready_for_download"]
    waiting = [r["recording_id"] for r in matching if r["state"] != "ready_for_download"]
    return waiting, ready


def window_around(recording) -> TimeWindow:
    start = pendulum.parse(recording["start_time"])
    return TimeWindow(start, start.add(seconds=1))


# -- listing ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("connection_keys", "filter_fields", "expected_filter"),
    [
        pytest.param({}, None, {"account_key": ACCOUNT_KEY}, id="no-filter-uses-connection-account-key"),
        pytest.param({}, {"user_key": USER_KEYS[1]}, {"user_key": USER_KEYS[1]}, id="filter-user-key"),
        pytest.param({}, {"company_id": COMPANY_ID}, {"company_id": COMPANY_ID}, id="filter-company-id"),
        pytest.param(
            {}, {"session_type": 0}, {"account_key": ACCOUNT_KEY, "session_type": 0}, id="attended-only"
        ),
        pytest.param(
            {}, {"session_type": 1}, {"account_key": ACCOUNT_KEY, "session_type": 1}, id="unattended-only"
        ),
        pytest.param(
            {},
            {"user_key": USER_KEYS[0], "session_type": 1},
            {"user_key": USER_KEYS[0], "session_type": 1},
            id="user-key-and-session-type",
        ),
        pytest.param(
            {"account_key": None, "user_key": USER_KEYS[2]},
            None,
            {"user_key": USER_KEYS[2]},
            id="connection-user-key",
        ),
        pytest.param(
            {"account_key": None, "company_id": COMPANY_ID},
            {"session_type": 1},
            {"company_id": COMPANY_ID, "session_type": 1},
            id="connection-company-id-with-session-type",
        ),
        pytest.param(
            {"account_key": None, "user_key": USER_KEYS[0]},
            {"user_key": USER_KEYS[1]},
            {"user_key": USER_KEYS[1]},
            id="filter-key-replaces-connection-key",
        ),
    ],
)
def test_list_recordings_applies_filter_and_connection_keys(
    api, make_connection, connection_keys, filter_fields, expected_filter
):
    hook = GoToAssistHook(make_connection(api.base_url, **connection_keys))
    recordings = api.handle.recordings(day=LIST_DAY)
    waiting, ready = expected_listing(recordings, MORNING, **expected_filter)
    everything = expected_listing(recordings, MORNING)
    assert waiting, "the window must hold recordings to transcode for the filter"
    assert ready, "the window must hold recordings ready for download for the filter"
    assert len(waiting) < 500
    assert len(ready) < 500
    if expected_filter != {"account_key": ACCOUNT_KEY}:
        assert (waiting, ready) != everything, "the filter must narrow the listing"

    recording_filter = None if filter_fields is None else RecordingFilter(**filter_fields)

    listed = hook.list_recordings(MORNING, recording_filter)

    assert listed.ready_for_transcode == waiting
    assert listed.ready_for_download == ready


def test_list_recordings_without_any_key_fails_before_calling(api, make_connection):
    hook = GoToAssistHook(make_connection(api.base_url, account_key=None))
    before = api.last_call_id()

    with pytest.raises(GoToAssistConfigError, match="needs an account key, user key or company ID"):
        hook.list_recordings(MORNING, RecordingFilter(session_type=1))

    assert api.calls(since=before) == []


def assert_lists_the_day_once(api, listed, day: str, timezone: str = "UTC") -> None:
    """Every recording the server holds for the day listed exactly once, as ready as it is, and no other."""
    on_server = api.handle.recordings(day=day, timezone=timezone)
    seeded = api.seeded[day]
    assert len(on_server) == len(seeded.day_recording_ids) > 500
    listed_ids = listed.ready_for_transcode + listed.ready_for_download
    assert len(listed_ids) == len(set(listed_ids)) == len(on_server)
    assert set(listed.ready_for_download) == {
        r["recording_id"] for r in on_server if r["state"] == "ready_for_download"
    }
    assert set(listed.ready_for_transcode) == {
        r["recording_id"] for r in on_server if r["state"] != "ready_for_download"
    }
    neighbours = set(seeded.previous_day_recording_ids) | set(seeded.next_day_recording_ids)
    assert neighbours, "the neighbouring days must hold recordings for the test to mean anything"
    assert not neighbours & set(listed_ids)
    assert listed.list_calls > 1


@pytest.mark.parametrize(
    "to_time_inclusive",
    [
        pytest.param(False, id="half-open-server"),
        pytest.param(True, id="inclusive-to-time-server"),
    ],
)
def test_list_all_recordings_lists_every_recording_of_the_day_once(api, make_connection, to_time_inclusive):
    api.handle.update_settings(to_time_inclusive=to_time_inclusive)
    hook = GoToAssistHook(make_connection(api.base_url, to_time_inclusive=to_time_inclusive))
    day = pendulum.date(2026, 11, 13)

    listed = hook.list_all_recordings(TimeWindow.for_days(day, day, "UTC"))

    assert_lists_the_day_once(api, listed, LIST_DAY)


@pytest.mark.parametrize(
    ("day", "count", "timezone"),
    [
        pytest.param("2026-11-13", 3000, "UTC", id="3000-recordings"),
        pytest.param("2026-10-25", 1500, "Europe/Berlin", id="25-hour-day-in-berlin"),
    ],
)
def test_list_all_recordings_lists_dense_and_long_days_once(fresh_api, make_connection, day, count, timezone):
    api = fresh_api({day: {"count": count, "neighbours": 5, "ready_fraction": 0.25, "timezone": timezone}})
    hook = GoToAssistHook(make_connection(api.base_url))
    date = pendulum.parse(day).date()
    window = TimeWindow.for_days(date, date, timezone)
    assert window.seconds == (25 if timezone == "Europe/Berlin" else 24) * 3600

    listed = hook.list_all_recordings(window)

    assert_lists_the_day_once(api, listed, day, timezone)


# -- transcode, archive, download links ---------------------------------------------------------------


@pytest.mark.parametrize(
    "as_given",
    [
        pytest.param(lambda ids: ids, id="digit-strings"),
        pytest.param(lambda ids: [int(rid) for rid in ids], id="integers"),
        pytest.param(lambda ids: ids + ids[::-1], id="duplicates"),
    ],
)
def test_transcode_recordings_starts_transcoding_exactly_those(api, make_connection, take, as_given):
    hook = GoToAssistHook(make_connection(api.base_url))
    recording_ids = take(3)
    neighbour = take(1)[0]
    before = api.last_call_id()

    outcome = hook.transcode_recordings(as_given(recording_ids))

    assert outcome.processed == recording_ids
    assert outcome.refused == []
    recordings = api.recordings_by_id()
    assert [recordings[rid]["transcode_calls"] for rid in recording_ids] == [1, 1, 1]
    assert {recordings[rid]["state"] for rid in recording_ids} <= {"transcoding", "ready_for_download"}
    assert recordings[neighbour]["transcode_calls"] == 0
    transcode_calls = api.calls(since=before, endpoints="transcode", at_least=1)
    assert [(c.status, c.recording_id_count) for c in transcode_calls] == [(204, 3)]


def test_transcoding_ready_recordings_again_is_accepted(api, make_connection, take):
    hook = GoToAssistHook(make_connection(api.base_url))
    recording_ids = take(2, ready=True)

    assert hook.transcode_recordings(recording_ids).processed == recording_ids
    assert hook.transcode_recordings(recording_ids).processed == recording_ids

    recordings = api.recordings_by_id()
    assert [recordings[rid]["transcode_calls"] for rid in recording_ids] == [2, 2]
    assert [recordings[rid]["state"] for rid in recording_ids] == ["ready_for_download"] * 2


def test_archive_recordings_hides_them_from_the_listing(api, make_connection, take):
    hook = GoToAssistHook(make_connection(api.base_url))
    recording_ids = take(2, ready=True)
    recordings = api.recordings_by_id()
    windows = [window_around(recordings[rid]) for rid in recording_ids]
    for rid, window in zip(recording_ids, windows, strict=True):
        assert rid in hook.list_recordings(window).ready_for_download

    outcome = hook.archive_recordings(recording_ids)

    assert outcome.processed == recording_ids
    recordings = api.recordings_by_id()
    assert [recordings[rid]["archived"] for rid in recording_ids] == [True, True]
    assert [recordings[rid]["archived_before_ready"] for rid in recording_ids] == [False, False]
    for rid, window in zip(recording_ids, windows, strict=True):
        listed = hook.list_recordings(window)
        assert rid not in listed.ready_for_download + listed.ready_for_transcode


def test_get_download_links_answers_for_ready_recordings_only(api, make_connection, take):
    hook = GoToAssistHook(make_connection(api.base_url))
    ready = take(2, ready=True)
    waiting = take(1)
    recordings = api.recordings_by_id()

    links, outcome = hook.get_download_links([ready[0], waiting[0], ready[1]])

    assert [link.recording_id for link in links] == ready
    assert outcome.processed == [ready[0], waiting[0], ready[1]]
    for link in links:
        assert link.recording_start_time == pendulum.parse(recordings[link.recording_id]["start_time"])
        assert link.recording_url.startswith(f"{api.base_url}/files/{link.recording_id}/")
        assert link.recording_size > 0
    video = requests.get(links[0].recording_url, timeout=10)
    assert video.status_code == 200
    assert len(video.content) == links[0].recording_size
    ready_ids, _ = hook.ready_recording_ids([*ready, *waiting])
    assert ready_ids == set(ready)


# -- test_connection ----------------------------------------------------------------------------------


def test_test_connection_succeeds_with_good_credentials(api, make_connection):
    before = api.last_call_id()

    ok, message = GoToAssistHook(make_connection(api.base_url)).test_connection()

    assert (ok, message) == (True, "Access token obtained and the list call answered")
    calls = api.calls(since=before, at_least=2)
    assert [(c.endpoint, c.status) for c in calls] == [("token", 200), ("list", 200)]


def test_test_connection_without_a_key_only_checks_the_token(api, make_connection):
    before = api.last_call_id()

    ok, message = GoToAssistHook(make_connection(api.base_url, account_key=None)).test_connection()

    assert ok is True
    assert "set a key in the connection" in message
    assert [c.endpoint for c in api.calls(since=before, at_least=1)] == ["token"]


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        pytest.param({"password": "wrong-secret"}, "refused the credentials", id="wrong-client-secret"),
        pytest.param(
            {"refresh_token": None, "personal_access_token": "not-a-pat"},
            "refused the credentials",
            id="unknown-personal-access-token",
        ),
        pytest.param(
            {"refresh_token": None, "access_token": "not-a-token"},
            "refused the static access token",
            id="unknown-static-access-token",
        ),
        pytest.param({"account_key": "4199999999999"}, "invalid accountKey", id="unknown-account-key"),
    ],
)
def test_test_connection_fails_with_a_clear_message(api, make_connection, overrides, named):
    conn_id = make_connection(api.base_url, **overrides)

    ok, message = GoToAssistHook(conn_id).test_connection()

    assert ok is False
    assert named in message
    for secret in ("wrong-secret", "revoked", "not-a-pat", "not-a-token"):
        assert secret not in message


# -- how IDs travel and how the token is sent ---------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_each_id_transport_works_when_hook_and_server_agree(api, make_connection, take, transport):
    api.handle.update_settings(id_transport=transport)
    hook = GoToAssistHook(make_connection(api.base_url, id_transport=transport))
    waiting = take(2)
    ready = take(1, ready=True)
    before = api.last_call_id()

    assert hook.transcode_recordings(waiting).processed == waiting
    assert hook.ready_recording_ids([*waiting, *ready])[0] == set(ready)
    api.wait_until_ready(waiting)
    assert hook.ready_recording_ids([*waiting, *ready])[0] == {*waiting, *ready}
    assert hook.archive_recordings([*waiting, *ready]).processed == [*waiting, *ready]

    recordings = api.recordings_by_id()
    assert [recordings[rid]["transcode_calls"] for rid in waiting] == [1, 1]
    assert all(recordings[rid]["archived"] for rid in [*waiting, *ready])
    id_calls = api.calls(since=before, endpoints={"transcode", "urls", "archive"}, at_least=4)
    assert [(c.endpoint, c.status, c.recording_id_count) for c in id_calls] == [
        ("transcode", 204, 2),
        ("urls", 200, 3),
        ("urls", 200, 3),
        ("archive", 204, 3),
    ]


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(GoToAssistHook.transcode_recordings, id="transcode"),
        pytest.param(GoToAssistHook.archive_recordings, id="archive"),
        pytest.param(GoToAssistHook.get_download_links, id="download-links"),
    ],
)
@pytest.mark.parametrize(
    ("hook_transport", "server_transport"),
    [
        pytest.param(hook, server, id=f"hook-{hook}-server-{server}")
        for hook, server in itertools.permutations(TRANSPORTS, 2)
    ],
)
def test_mismatched_id_transport_fails_loudly(
    api, make_connection, take, hook_transport, server_transport, call
):
    api.handle.update_settings(id_transport=server_transport)
    hook = GoToAssistHook(make_connection(api.base_url, id_transport=hook_transport))
    recording_ids = take(2)
    before = api.last_call_id()

    with pytest.raises(GoToAssistApiError, match="HTTP 400: recording IDs are expected") as raised:
        call(hook, recording_ids)

    assert raised.value.status == 400
    id_calls = api.calls(since=before, endpoints={"transcode", "urls", "archive"}, at_least=1)
    assert [c.status for c in id_calls] == [400]
    recordings = api.recordings_by_id()
    assert [recordings[rid]["transcode_calls"] for rid in recording_ids] == [0, 0]
    assert [recordings[rid]["archived"] for rid in recording_ids] == [False, False]


@pytest.mark.parametrize("bad_token_status", [401, 403])
@pytest.mark.parametrize("auth_scheme", ["bearer", "oauth"])
def test_auth_scheme_matching_the_server_works(api, make_connection, auth_scheme, bad_token_status):
    api.handle.update_settings(auth_scheme=auth_scheme, bad_token_status=bad_token_status)
    hook = GoToAssistHook(make_connection(api.base_url, auth_scheme=auth_scheme))
    before = api.last_call_id()

    listed = hook.list_recordings(MORNING)

    assert listed.ready_for_transcode
    assert listed.ready_for_download
    calls = api.calls(since=before, at_least=2)
    assert [(c.endpoint, c.status) for c in calls] == [("token", 200), ("list", 200)]


@pytest.mark.parametrize("bad_token_status", [401, 403])
@pytest.mark.parametrize(
    ("hook_scheme", "server_scheme"),
    [
        pytest.param("bearer", "oauth", id="hook-bearer-server-oauth"),
        pytest.param("oauth", "bearer", id="hook-oauth-server-bearer"),
    ],
)
def test_auth_scheme_mismatch_fails_after_one_renewal(
    api, make_connection, hook_scheme, server_scheme, bad_token_status
):
    api.handle.update_settings(auth_scheme=server_scheme, bad_token_status=bad_token_status)
    hook = GoToAssistHook(make_connection(api.base_url, auth_scheme=hook_scheme))
    before = api.last_call_id()

    with pytest.raises(CredentialsRefusedError, match="refused the credentials") as raised:
        hook.list_recordings(MORNING)

    assert raised.value.status == bad_token_status
    assert "even with a newly obtained access token" in str(raised.value)
    # One renewal, then it gives up: no retry loop on a refusal.
    assert [(c.endpoint, c.status) for c in api.calls(since=before, at_least=4)] == [
        ("token", 200),
        ("list", bad_token_status),
        ("token", 200),
        ("list", bad_token_status),
    ]


@pytest.mark.parametrize("bad_token_status", [401, 403])
@pytest.mark.parametrize("auth_scheme", ["bearer", "oauth"])
def test_expired_token_is_renewed_once(api, make_connection, take, auth_scheme, bad_token_status):
    api.handle.update_settings(auth_scheme=auth_scheme, bad_token_status=bad_token_status)
    hook = GoToAssistHook(make_connection(api.base_url, auth_scheme=auth_scheme))
    hook.list_recordings(MORNING)
    api.expire_access_tokens()
    recording_ids = take(1)
    before = api.last_call_id()

    assert hook.transcode_recordings(recording_ids).processed == recording_ids

    assert [(c.endpoint, c.status) for c in api.calls(since=before, at_least=3)] == [
        ("transcode", bad_token_status),
        ("token", 200),
        ("transcode", 204),
    ]
    assert api.recordings_by_id()[recording_ids[0]]["transcode_calls"] == 1


@pytest.mark.parametrize("bad_token_status", [401, 403])
def test_refused_static_token_is_not_renewed(api, make_connection, bad_token_status):
    api.handle.update_settings(bad_token_status=bad_token_status)
    hook = GoToAssistHook(make_connection(api.base_url, refresh_token=None, access_token="not-a-token"))
    before = api.last_call_id()

    with pytest.raises(CredentialsRefusedError, match="refused the static access token") as raised:
        hook.list_recordings(MORNING)

    assert raised.value.status == bad_token_status
    assert [(c.endpoint, c.status) for c in api.calls(since=before, at_least=1)] == [
        ("list", bad_token_status)
    ]


def test_valid_static_token_is_used_as_is(api, make_connection):
    granted = requests.post(
        api.handle.token_url,
        auth=(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET),
        data={"grant_type": "personal_access_token", "pat": DEFAULT_PERSONAL_ACCESS_TOKEN},
        timeout=10,
    ).json()["access_token"]
    hook = GoToAssistHook(make_connection(api.base_url, refresh_token=None, access_token=granted))
    before = api.last_call_id()

    hook.list_recordings(MORNING)

    assert [(c.endpoint, c.status) for c in api.calls(since=before, at_least=1)] == [("list", 200)]


# -- errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server_changes", "call", "reason"),
    [
        pytest.param(
            {"list_limit": 3},
            GoToAssistHook.transcode_recordings,
            "4 recording IDs were given; at most 3 are allowed",
            id="more-ids-than-the-server-takes",
        ),
        pytest.param(
            {"id_transport": "json"},
            GoToAssistHook.archive_recordings,
            "recording IDs are expected in a JSON body",
            id="ids-where-the-server-does-not-look",
        ),
    ],
)
def test_bad_request_fails_at_once_with_the_server_reason(
    api, make_connection, take, server_changes, call, reason
):
    api.handle.update_settings(**server_changes)
    hook = GoToAssistHook(make_connection(api.base_url))
    recording_ids = take(4)
    before = api.last_call_id()

    with pytest.raises(GoToAssistApiError) as raised:
        call(hook, recording_ids)

    assert raised.value.status == 400
    assert reason in str(raised.value)
    assert [c.status for c in api.calls(since=before, endpoints={"transcode", "archive"}, at_least=1)] == [
        400
    ]


@pytest.mark.parametrize(
    ("filter_fields", "reason"),
    [
        pytest.param({"account_key": "4199999999999"}, "invalid accountKey", id="unknown-account-key"),
        pytest.param({"user_key": "5199999999999"}, "invalid userKey", id="unknown-user-key"),
        pytest.param({"company_id": "6199999999999"}, "invalid companyId", id="unknown-company-id"),
    ],
)
def test_unknown_list_keys_are_not_taken_for_bad_credentials(api, make_connection, filter_fields, reason):
    hook = GoToAssistHook(make_connection(api.base_url))
    before = api.last_call_id()

    with pytest.raises(GoToAssistApiError, match=reason) as raised:
        hook.list_recordings(MORNING, RecordingFilter(**filter_fields))

    assert not isinstance(raised.value, CredentialsRefusedError)
    assert raised.value.status == 403
    calls = api.calls(since=before, at_least=2)
    assert [(c.endpoint, c.status) for c in calls] == [("token", 200), ("list", 403)]


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(GoToAssistHook.transcode_recordings, id="transcode"),
        pytest.param(GoToAssistHook.archive_recordings, id="archive"),
        pytest.param(GoToAssistHook.get_download_links, id="download-links"),
    ],
)
def test_unknown_recording_ids_are_refused_and_the_others_processed(api, make_connection, take, call):
    hook = GoToAssistHook(make_connection(api.base_url))
    valid = take(3, ready=True)
    named = [valid[0], UNKNOWN_IDS[0], valid[1], UNKNOWN_IDS[1], valid[2]]

    result = call(hook, named)

    outcome = result[1] if isinstance(result, tuple) else result
    assert outcome.processed == valid
    assert sorted(outcome.refused) == sorted(UNKNOWN_IDS)
    recordings = api.recordings_by_id()
    if call is GoToAssistHook.transcode_recordings:
        assert [recordings[rid]["transcode_calls"] for rid in valid] == [1, 1, 1]
    elif call is GoToAssistHook.archive_recordings:
        assert [recordings[rid]["archive_calls"] for rid in valid] == [1, 1, 1]
    else:
        assert [link.recording_id for link in result[0]] == valid


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"password": "wrong-secret"}, id="wrong-client-secret"),
        pytest.param({**WITH_PAT, "login": "someone-else"}, id="unknown-client-id"),
        pytest.param({"refresh_token": "revoked"}, id="unknown-refresh-token"),
        pytest.param({**WITH_PAT, "personal_access_token": "not-a-pat"}, id="unknown-pat"),
    ],
)
def test_bad_credentials_raise_credentials_refused(api, make_connection, overrides):
    conn_id = make_connection(api.base_url, **overrides)
    before = api.last_call_id()

    with pytest.raises(CredentialsRefusedError) as raised:
        GoToAssistHook(conn_id).transcode_recordings(["1000000000001"])

    message = str(raised.value)
    assert f"the token endpoint refused the credentials of connection {conn_id!r}" in message
    assert raised.value.call == "token"
    for name in ("password", "refresh_token", "personal_access_token"):
        assert overrides.get(name) is None or overrides[name] not in message
    assert [c.endpoint for c in api.calls(since=before, at_least=1)] == ["token"]


# -- what goes on the wire ----------------------------------------------------------------------------


def test_connection_extras_are_never_sent_as_headers(api, make_connection, take, recording_proxy):
    extra = {
        "refresh_token": DEFAULT_REFRESH_TOKEN,
        "token_url": f"{recording_proxy.base_url}/oauth/token",
        "account_key": ACCOUNT_KEY,
        "user_key": USER_KEYS[0],
        "auth_scheme": "bearer",
        "id_transport": "path",
        "to_time_inclusive": False,
        "timeout": 20,
    }
    hook = GoToAssistHook(make_connection(recording_proxy.base_url, **extra))
    recording_ids = take(1, ready=True)

    hook.list_recordings(MORNING)
    hook.transcode_recordings(recording_ids)
    hook.ready_recording_ids(recording_ids)
    hook.archive_recordings(recording_ids)

    assert [seen.method for seen in recording_proxy.seen] == ["POST", "GET", "POST", "GET", "PUT"]
    secrets = {DEFAULT_REFRESH_TOKEN, DEFAULT_CLIENT_SECRET, ACCOUNT_KEY, USER_KEYS[0], extra["token_url"]}
    for seen in recording_proxy.seen:
        names = {name.lower().replace("-", "_") for name in seen.headers}
        assert not names & set(extra), f"{seen.method} {seen.target} sent extras as headers"
        assert not any(secret in value for secret in secrets for value in seen.headers.values())
    token_request, *api_requests = recording_proxy.seen
    assert token_request.target == "/oauth/token"
    assert token_request.headers["Authorization"].startswith("Basic ")
    for seen in api_requests:
        assert seen.headers["Authorization"].startswith("Bearer ")


@pytest.mark.parametrize(
    "connection_host",
    [
        pytest.param({"host": "{url}"}, id="url"),
        pytest.param({"host": "{url}/"}, id="url-with-trailing-slash"),
        pytest.param({"host": "{url}/G2A/rest/v1"}, id="url-with-api-path"),
        pytest.param({"host": "{url}/G2A/rest/v1/"}, id="url-with-api-path-and-slash"),
        pytest.param({"host": "127.0.0.1", "schema": "http", "port": "{port}"}, id="bare-host-schema-port"),
    ],
)
def test_no_double_slashes_in_urls(api, make_connection, take, recording_proxy, connection_host):
    url = recording_proxy.base_url
    port = int(url.rsplit(":", 1)[1])
    fields = {
        name: port if value == "{port}" else value.format(url=url) for name, value in connection_host.items()
    }
    hook = GoToAssistHook(make_connection(url, **fields))
    recording_ids = take(2, ready=True)

    hook.list_recordings(MORNING)
    hook.transcode_recordings(recording_ids)
    hook.get_download_links(recording_ids)
    hook.archive_recordings(recording_ids)

    targets = [seen.target for seen in recording_proxy.seen]
    assert len(targets) == 5
    assert all("//" not in target for target in targets), targets
    assert all(target.startswith("/G2A/rest/v1/archive/recordings") for target in targets[1:]), targets
    assert all(api.recordings_by_id()[rid]["archived"] for rid in recording_ids)
