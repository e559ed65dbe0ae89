"""The readiness trigger's ``run()`` against the local API server, over real HTTP.

Each test runs the trigger to its end on an event loop of its own, as Airflow's triggerer would, and
checks the one event it sends against what the server recorded.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import pendulum
import pytest
import structlog
from airflow.sdk.serde import deserialize, serialize
from airflow.triggers.base import TriggerEvent

from gotoassist_api_server.seeding import DEFAULT_PERSONAL_ACCESS_TOKEN
from gotoassist_recordings.exceptions import ChunkTooLargeError, InvalidRecordingIdError
from gotoassist_recordings.hooks.gotoassist import GoToAssistHook
from gotoassist_recordings.triggers.recordings import (
    CHECK_RETRY_POLICY,
    GoToAssistRecordingsReadyTrigger,
    ReadinessEvent,
    ReadinessStatus,
    poll_waits,
)

CLASSPATH = "gotoassist_recordings.triggers.recordings.GoToAssistRecordingsReadyTrigger"
UNKNOWN_ID = "1000000000000"
#: Long enough for any test here to end well before it, unless the test is about the deadline.
FAR = 30
QUICK = {"poll_interval": 0.1, "max_poll_interval": 0.3}


@pytest.fixture(autouse=True)
def _no_faults_left(shared_api) -> Iterator[None]:
    yield
    shared_api.handle.clear_faults()


def deadline_in(seconds: float) -> str:
    return pendulum.now("UTC").add(seconds=seconds).isoformat()


def run_to_end(trigger: GoToAssistRecordingsReadyTrigger) -> list[TriggerEvent]:
    """Run the trigger on a new event loop and collect every event it sends until it returns."""

    async def collect() -> list[TriggerEvent]:
        return [event async for event in trigger.run()]

    return asyncio.run(collect())


def only_event(trigger: GoToAssistRecordingsReadyTrigger) -> dict[str, Any]:
    events = run_to_end(trigger)
    assert len(events) == 1, events
    return events[0].payload


def trigger_for(conn_id: str, recording_ids: list[str], *, within: float = FAR, **kwargs: Any):
    return GoToAssistRecordingsReadyTrigger(
        recording_ids=recording_ids,
        deadline=deadline_in(within),
        gotoassist_conn_id=conn_id,
        **{**QUICK, **kwargs},
    )


@pytest.fixture
def warnings_logged(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], list[str]]]:
    """The warnings logged so far: the trigger and hook log through Airflow's structlog loggers,
    the token provider through the standard library."""
    caplog.set_level(logging.WARNING)
    with structlog.testing.capture_logs() as events:

        def read() -> list[str]:
            messages = [event["event"] for event in events if event.get("log_level") == "warning"]
            return messages + [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]

        yield read


# -- waiting ends in one event ------------------------------------------------------------------------


def test_the_chunk_becomes_ready_after_the_transcode_delay(api, make_connection, take):
    api.handle.update_settings(transcode_delay=1.0)
    conn_id = make_connection(api.base_url)
    recording_ids = take(3)
    GoToAssistHook(conn_id).transcode_recordings(recording_ids)
    before = api.last_call_id()

    payload = only_event(trigger_for(conn_id, recording_ids))

    assert payload == {
        "status": "ready",
        "asked": 3,
        "ready": 3,
        "waiting_ids": [],
        "refused_ids": [],
        "message": "All 3 recordings of the chunk of 3 recordings accepted by the API are ready for download",
    }
    assert {api.recordings_by_id()[rid]["state"] for rid in recording_ids} == {"ready_for_download"}
    checks = [call.status for call in api.calls(since=before, endpoints="urls")]
    assert len(checks) > 1, "the recordings were ready too early to watch the trigger wait"
    assert set(checks) == {200}


def test_a_chunk_ready_at_once_takes_one_check_and_unknown_ids_are_not_waited_for(api, make_connection, take):
    recording_ids = take(2, ready=True)
    before = api.last_call_id()

    payload = only_event(
        trigger_for(make_connection(api.base_url), [*recording_ids, UNKNOWN_ID], chunk_label="chunk 1/1")
    )

    assert payload == {
        "status": "ready",
        "asked": 3,
        "ready": 2,
        "waiting_ids": [],
        "refused_ids": [UNKNOWN_ID],
        "message": "All 2 recordings of chunk 1/1 accepted by the API are ready for download; "
        "1 recording IDs refused as invalid were not waited for",
    }
    # One check, narrowed down around the unknown ID: no second round of checks.
    assert {call.status for call in api.calls(since=before, endpoints="urls")} == {200, 403}


def test_a_passing_deadline_ends_in_a_timeout_naming_what_is_not_ready(api, make_connection, take):
    waiting = take(2)
    ready = take(1, ready=True)
    deadline = deadline_in(1.0)

    payload = only_event(
        GoToAssistRecordingsReadyTrigger(
            recording_ids=[*ready, *waiting],
            deadline=deadline,
            gotoassist_conn_id=make_connection(api.base_url),
            chunk_label="chunk 2/5",
            **QUICK,
        )
    )

    assert payload == {
        "status": "timeout",
        "asked": 3,
        "ready": 1,
        "waiting_ids": waiting,
        "refused_ids": [],
        "message": f"2 of 3 recordings of chunk 2/5 were still not ready for download at the deadline "
        f"{pendulum.parse(deadline).isoformat()}: {', '.join(waiting)}",
    }
    assert {api.recordings_by_id()[rid]["state"] for rid in waiting} == {"ready_for_transcode"}


def test_a_deadline_already_past_still_gets_one_check(api, make_connection, take):
    recording_ids = take(2, ready=True)
    before = api.last_call_id()

    payload = only_event(trigger_for(make_connection(api.base_url), recording_ids, within=-60))

    assert payload["status"] == "ready"
    assert len(api.calls(since=before, endpoints="urls")) == 1


def test_waits_between_checks_grow_up_to_the_longest():
    assert list(itertools.islice(poll_waits(10.0, 40.0), 6)) == [10.0, 15.0, 22.5, 33.75, 40.0, 40.0]
    assert list(itertools.islice(poll_waits(5.0, 5.0), 3)) == [5.0, 5.0, 5.0]


# -- transient faults never fail the chunk ----------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "fault", "times"),
    [
        pytest.param("urls", "unavailable", 2, id="503"),
        # aiohttp may itself resend a request whose kept-alive connection was dropped, so how many
        # drops one attempt meets varies; the chunk still ends ready.
        pytest.param("urls", "drop", CHECK_RETRY_POLICY.max_attempts, id="dropped-connections"),
        pytest.param("urls", "too-many-requests", 2, id="429-with-retry-after"),
        pytest.param("urls", "html-error", 1, id="proxy-error-page"),
        pytest.param("token", "unavailable", 2, id="token-endpoint-503"),
        pytest.param("token", "drop", 1, id="token-endpoint-dropped"),
    ],
)
def test_transient_faults_are_survived(api, make_connection, take, warnings_logged, endpoint, fault, times):
    recording_ids = take(2, ready=True)
    conn_id = make_connection(api.base_url)
    api.handle.fail_next(endpoint, fault, times=times)
    before = api.last_call_id()

    payload = only_event(trigger_for(conn_id, recording_ids))

    assert payload["status"] == "ready"
    assert payload["ready"] == 2
    calls = api.calls(since=before, endpoints=endpoint, at_least=times + 1)
    assert len([call for call in calls if call.status in (0, 429, 502, 503)]) == times
    assert calls[-1].status == 200
    assert any("retrying in" in warning for warning in warnings_logged())


def test_a_check_that_fails_through_its_retries_gives_way_to_the_next(
    api, make_connection, take, warnings_logged
):
    recording_ids = take(2, ready=True)
    conn_id = make_connection(api.base_url)
    api.handle.fail_next("urls", "unavailable", times=CHECK_RETRY_POLICY.max_attempts + 1)
    before = api.last_call_id()

    payload = only_event(trigger_for(conn_id, recording_ids))

    assert payload["status"] == "ready"
    statuses = [call.status for call in api.calls(since=before, endpoints="urls", at_least=5)]
    assert statuses == [503] * (CHECK_RETRY_POLICY.max_attempts + 1) + [200]
    assert "Could not check the chunk of 2 recordings (HTTP 503); checking again later" in warnings_logged()


def test_a_fault_that_lasts_past_the_deadline_ends_in_a_timeout_saying_so(api, make_connection, take):
    recording_ids = take(2, ready=True)
    api.handle.set_faults(probabilities={"urls": {"unavailable": 1.0}})

    payload = only_event(trigger_for(make_connection(api.base_url), recording_ids, within=1.0))

    assert payload["status"] == "timeout"
    assert payload["waiting_ids"] == recording_ids
    assert payload["ready"] == 0
    assert payload["message"].endswith("(the last check failed: HTTP 503)")
    assert payload["message"].startswith(
        "2 of 2 recordings of the chunk of 2 recordings were still not ready"
    )


# -- what fails the chunk -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "server_changes", "reason"),
    [
        pytest.param(
            {"password": "wrong-secret"},
            {},
            "the token endpoint refused the credentials of connection",
            id="wrong-client-secret",
        ),
        pytest.param(
            {"refresh_token": "revoked"},
            {},
            "the token endpoint refused the credentials of connection",
            id="unknown-refresh-token",
        ),
        pytest.param(
            {"refresh_token": None, "personal_access_token": "not-a-pat"},
            {},
            "the token endpoint refused the credentials of connection",
            id="unknown-personal-access-token",
        ),
        pytest.param(
            {"refresh_token": None, "access_token": "not-a-token"},
            {"bad_token_status": 401},
            "the API refused the static access token of connection",
            id="refused-static-token",
        ),
        pytest.param(
            {"auth_scheme": "oauth"},
            {"auth_scheme": "bearer", "bad_token_status": 403},
            "even with a newly obtained access token",
            id="token-refused-after-renewal",
        ),
    ],
)
def test_refused_credentials_end_in_an_error(api, make_connection, take, overrides, server_changes, reason):
    api.handle.update_settings(**server_changes)
    conn_id = make_connection(api.base_url, **overrides)
    recording_ids = take(2, ready=True)

    payload = only_event(trigger_for(conn_id, recording_ids))

    assert payload["status"] == "error"
    assert payload["asked"] == 2
    assert payload["message"].startswith(
        "Could not check whether the chunk of 2 recordings is ready for download: GoToAssist "
    )
    assert reason in payload["message"]
    assert repr(conn_id) in payload["message"]
    for secret in ("wrong-secret", "revoked", "not-a-pat", "not-a-token"):
        assert secret not in payload["message"]


def test_an_answer_that_is_not_json_ends_in_an_error_at_once(api, make_connection, take):
    recording_ids = take(2, ready=True)
    api.handle.fail_next("urls", "malformed-json")
    before = api.last_call_id()

    payload = only_event(trigger_for(make_connection(api.base_url), recording_ids))

    assert payload["status"] == "error"
    assert (
        "GoToAssist download-links call answered HTTP 200 with a body that is not JSON" in payload["message"]
    )
    assert len(api.calls(since=before, endpoints="urls")) == 1


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        pytest.param(
            {"extra": {"refresh_token": "x", "colour": "blue"}}, "invalid extra fields", id="bad-extra"
        ),
        pytest.param(None, "isn't defined", id="no-such-connection"),
    ],
)
def test_an_unusable_connection_ends_in_an_error(monkeypatch, fields, problem):
    conn_id = "gotoassist_trigger_unusable"
    if fields is not None:
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "gotoassist", **fields})
        )

    payload = only_event(trigger_for(conn_id, [UNKNOWN_ID]))

    assert payload["status"] == "error"
    assert problem in payload["message"]


# -- serialisation and validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param(
            {
                "recording_ids": ["1000000000001", "1000000000002"],
                "deadline": "2026-12-04T19:00:00+00:00",
                "gotoassist_conn_id": "gotoassist_default",
                "poll_interval": 300.0,
                "max_poll_interval": 900.0,
                "chunk_label": "chunk 3/7 · 500 recordings",
                "first_check_delay": 300.0,
                "end_task_when_ready": True,
                "return_value": {"transcode_requested": 500},
            },
            id="all-fields",
        ),
        pytest.param(
            {
                "recording_ids": [str(1000000000000 + number) for number in range(500)],
                "deadline": "2026-12-04T19:00:00.250000+00:00",
                "gotoassist_conn_id": "other",
                "poll_interval": 0.5,
                "max_poll_interval": 0.5,
                "chunk_label": None,
                "first_check_delay": 0.0,
                "end_task_when_ready": False,
                "return_value": None,
            },
            id="full-chunk-fractions-no-label",
        ),
    ],
)
def test_serialize_round_trips_into_the_constructor(kwargs):
    classpath, serialized = GoToAssistRecordingsReadyTrigger(**kwargs).serialize()

    assert classpath == CLASSPATH
    assert serialized == kwargs
    assert json.loads(json.dumps(serialized)) == serialized
    # As Airflow stores and revives trigger arguments.
    revived = GoToAssistRecordingsReadyTrigger(**deserialize(serialize(serialized)))
    assert revived.serialize() == (CLASSPATH, kwargs)


def test_serialize_normalizes_what_it_was_given():
    trigger = GoToAssistRecordingsReadyTrigger(
        recording_ids=[1000000000001, "1000000000001", "1000000000002"],
        deadline="2026-12-04T20:00:00+01:00",
        poll_interval=60,
        max_poll_interval=600,
    )

    _, serialized = trigger.serialize()

    assert serialized == {
        "recording_ids": ["1000000000001", "1000000000002"],
        "deadline": "2026-12-04T19:00:00+00:00",
        "gotoassist_conn_id": "gotoassist_default",
        "poll_interval": 60.0,
        "max_poll_interval": 600.0,
        "chunk_label": None,
        "first_check_delay": 0.0,
        "end_task_when_ready": False,
        "return_value": None,
    }
    assert GoToAssistRecordingsReadyTrigger(**serialized).serialize() == (CLASSPATH, serialized)


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        pytest.param({"recording_ids": ["12/../3"]}, InvalidRecordingIdError, "'12/../3'", id="bad-id"),
        pytest.param(
            {"recording_ids": [str(n) for n in range(501)]}, ChunkTooLargeError, "at most 500", id="501-ids"
        ),
        pytest.param({"deadline": "2026-12-04T19:00:00"}, ValueError, "UTC offset", id="no-offset"),
        pytest.param({"deadline": "2026-12-04"}, ValueError, "'2026-12-04'", id="date-only"),
        pytest.param({"deadline": "tomorrow"}, ValueError, "'tomorrow'", id="not-a-date"),
        pytest.param({"poll_interval": 0}, ValueError, "poll_interval must be a positive", id="zero-poll"),
        pytest.param({"poll_interval": True}, ValueError, "poll_interval", id="boolean-poll"),
        pytest.param(
            {"poll_interval": 60, "max_poll_interval": 30}, ValueError, "must not be shorter", id="cap-below"
        ),
        pytest.param({"first_check_delay": -1}, ValueError, "non-negative number", id="negative-delay"),
        pytest.param({"end_task_when_ready": "yes"}, ValueError, "true or false", id="end-not-a-bool"),
        pytest.param({"return_value": {"at": object()}}, ValueError, "JSON-safe", id="result-not-json"),
    ],
)
def test_the_constructor_refuses_bad_arguments(changes, error, message):
    kwargs = {"recording_ids": ["1000000000001"], "deadline": "2026-12-04T19:00:00+00:00", **changes}

    with pytest.raises(error, match=re.escape(message)):
        GoToAssistRecordingsReadyTrigger(**kwargs)


def test_events_validate_as_readiness_events(api, make_connection, take):
    # Whatever the trigger sends must pass the check its task makes on arrival.
    recording_ids = take(1, ready=True) + take(1)
    payload = only_event(trigger_for(make_connection(api.base_url), recording_ids, within=0.5))

    event = ReadinessEvent.from_trigger(payload, recording_ids)

    assert event.status is ReadinessStatus.TIMEOUT
    assert event.model_dump(mode="json") == payload


def test_personal_access_token_grant_is_used_without_a_refresh_token(api, make_connection, take):
    conn_id = make_connection(
        api.base_url, refresh_token=None, personal_access_token=DEFAULT_PERSONAL_ACCESS_TOKEN
    )
    before = api.last_call_id()

    payload = only_event(trigger_for(conn_id, take(1, ready=True)))

    assert payload["status"] == "ready"
    assert [(call.endpoint, call.status) for call in api.calls(since=before, at_least=2)] == [
        ("token", 200),
        ("urls", 200),
    ]
