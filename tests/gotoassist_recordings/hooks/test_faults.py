"""What the hook and the operators do when things go wrong, against the local API server over HTTP.

Each test makes the server misbehave on purpose (see :mod:`gotoassist_api_server.faults`) or hands the
hook something it must refuse, and checks one row of the README's "When things go wrong" table by its
effects: the result of the call, the server's call log and the server's own record of each recording.
Transient faults are retried under a small retry policy so the suite stays fast; the defaults the
README states are checked on their own.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import Any

import pendulum
import pytest
import requests
import structlog

from gotoassist_api_server.faults import FaultPlan
from gotoassist_recordings.exceptions import (
    GoToAssistApiError,
    GoToAssistTransientError,
    InvalidResponseError,
)
from gotoassist_recordings.hooks.gotoassist import GoToAssistHook
from gotoassist_recordings.operators.recordings import (
    GoToAssistArchiveRecordingsOperator,
    GoToAssistListRecordingsOperator,
    GoToAssistTranscodeRecordingsOperator,
)
from gotoassist_recordings.retries import RetryPolicy
from gotoassist_recordings.sensors.recordings import GoToAssistRecordingsReadySensor
from gotoassist_recordings.windows import TimeWindow

LIST_DAY = "2026-11-13"
#: A few hundred recordings of the list day, which no test of this module changes.
MORNING = TimeWindow(pendulum.datetime(2026, 11, 13, 9), pendulum.datetime(2026, 11, 13, 12))
#: Retries in a blink, so a test can fault several attempts; waits are capped at ``max_wait``.
FAST_RETRIES = RetryPolicy(max_attempts=3, initial_wait=0.05, max_wait=0.2)
#: What the server answers each injected fault with; 0 is a connection closed without an answer.
FAULT_STATUS = {
    "too-many-requests": 429,
    "too-many-requests-no-retry-after": 429,
    "server-error": 500,
    "unavailable": 503,
    "html-error": 502,
    "drop": 0,
    "server-error-after": 500,
    "drop-after": 0,
}
#: How the retry warning names each fault's cause.
FAULT_CAUSE = {
    "too-many-requests-no-retry-after": "HTTP 429",
    "server-error": "HTTP 500",
    "unavailable": "HTTP 503",
    "html-error": "HTTP 502",
    "drop": "connection failed",
    "server-error-after": "HTTP 500",
    "drop-after": "connection failed",
}
ID_CALL_ENDPOINTS = {"transcode", "archive", "urls"}


@pytest.fixture(autouse=True)
def _no_faults_left(shared_api) -> Iterator[None]:
    """Clear the module server's fault plan after each test, queued faults left over included."""
    yield
    shared_api.handle.clear_faults()


@pytest.fixture
def retry_warnings(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], list[str]]]:
    """Read the retry warnings logged so far in the test, as text.

    The hook logs through Airflow's structlog logger, which pytest's ``caplog`` never sees, so its
    events are taken with structlog's own capture; the token provider logs through the standard
    library, which ``caplog`` sees.
    """
    caplog.set_level(logging.WARNING)
    with structlog.testing.capture_logs() as events:

        def read() -> list[str]:
            messages = [event["event"] for event in events if event.get("log_level") == "warning"]
            messages += [
                record.getMessage() for record in caplog.records if record.levelno == logging.WARNING
            ]
            return [message for message in messages if "; retrying in " in message]

        yield read


def fast_hook(conn_id: str, retry_policy: RetryPolicy = FAST_RETRIES) -> GoToAssistHook:
    return GoToAssistHook(conn_id, retry_policy=retry_policy)


def chunk_label(recording_ids: list[str]) -> str:
    """How the hook names a chunk in its log messages."""
    if len(recording_ids) == 1:
        return f"recording {recording_ids[0]}"
    return f"{len(recording_ids)} recordings ({recording_ids[0]}…{recording_ids[-1]})"


def arrival_times(api, since: int, endpoint: str, count: int = 2) -> list[float]:
    """When each call to ``endpoint`` after call ``since`` reached the server, as POSIX timestamps.

    Waits until the server has logged at least ``count`` of them (it logs a call just after answering).
    """
    api.calls(since, endpoints=endpoint, at_least=count)
    with contextlib.closing(sqlite3.connect(api.db_path, timeout=30)) as connection:
        rows = connection.execute(
            "SELECT called_at FROM calls WHERE call_id > ? AND endpoint = ? ORDER BY call_id",
            (since, endpoint),
        ).fetchall()
    return [called_at for (called_at,) in rows]


def timestamp(iso_time: str) -> float:
    return pendulum.parse(iso_time).timestamp()


def expected_morning(api) -> tuple[list[str], list[str]]:
    """What one list call of :data:`MORNING` returns, from the server's own records."""
    in_window = [
        recording
        for recording in api.handle.recordings(day=LIST_DAY)
        if MORNING.start <= pendulum.parse(recording["start_time"]) < MORNING.end
        and not recording["archived"]
    ]
    waiting = [r["recording_id"] for r in in_window if r["state"] != "ready_for_download"]
    ready = [r["recording_id"] for r in in_window if r["state"] == "ready_for_download"]
    return waiting, ready


def closed_port_url() -> str:
    """The URL of a local port nothing listens on, so connecting to it is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# -- operators, run as their tasks would run them -------------------------------------------------


def list_day(conn_id: str, day: str, chunk_size: int = 500) -> list[dict[str, Any]]:
    start = pendulum.parse(day)
    operator = GoToAssistListRecordingsOperator(
        task_id="list_recordings",
        gotoassist_conn_id=conn_id,
        window_start=start.isoformat(),
        window_end=start.add(days=1).isoformat(),
        chunk_size=chunk_size,
    )
    return operator.execute({})


def transcode(conn_id: str, recording_ids: Any) -> dict[str, int]:
    operator = GoToAssistTranscodeRecordingsOperator(
        task_id="transcode", gotoassist_conn_id=conn_id, recording_ids=recording_ids
    )
    return operator.execute({})


def archive(conn_id: str, recording_ids: Any) -> dict[str, int]:
    operator = GoToAssistArchiveRecordingsOperator(
        task_id="archive", gotoassist_conn_id=conn_id, recording_ids=recording_ids
    )
    return operator.execute({})


def poke(conn_id: str, recording_ids: Any) -> bool:
    sensor = GoToAssistRecordingsReadySensor(
        task_id="wait_until_ready", gotoassist_conn_id=conn_id, recording_ids=recording_ids
    )
    return sensor.poke({})


def wait_with_sensor(conn_id: str, recording_ids: list[str], timeout: float = 10.0) -> None:
    """Poke the readiness sensor until it succeeds, as the sensor task would."""
    deadline = time.monotonic() + timeout
    while not poke(conn_id, recording_ids):
        if time.monotonic() > deadline:
            raise AssertionError(f"the sensor still waited after {timeout} s")
        time.sleep(0.1)


# -- transient faults are retried -------------------------------------------------------------------


def run_list(api, hook, take):
    expected = expected_morning(api)
    listed = hook.list_recordings(MORNING)
    assert (listed.ready_for_transcode, listed.ready_for_download) == expected
    return "list", f"list call for {MORNING}"


def run_transcode(api, hook, take):
    recording_ids = take(3)
    assert hook.transcode_recordings(recording_ids).processed == recording_ids
    recordings = api.recordings_by_id()
    assert [recordings[rid]["transcode_calls"] for rid in recording_ids] == [1, 1, 1]
    return "transcode", f"transcode call for {chunk_label(recording_ids)}"


def run_archive(api, hook, take):
    recording_ids = take(3, ready=True)
    assert hook.archive_recordings(recording_ids).processed == recording_ids
    recordings = api.recordings_by_id()
    assert [recordings[rid]["archive_calls"] for rid in recording_ids] == [1, 1, 1]
    assert all(recordings[rid]["archived"] for rid in recording_ids)
    assert not any(recordings[rid]["archived_before_ready"] for rid in recording_ids)
    return "archive", f"archive call for {chunk_label(recording_ids)}"


def run_download_links(api, hook, take):
    ready = take(2, ready=True)
    waiting = take(1)
    recording_ids = [ready[0], waiting[0], ready[1]]
    links, outcome = hook.get_download_links(recording_ids)
    assert [link.recording_id for link in links] == ready
    assert outcome.processed == recording_ids
    return "urls", f"download-links call for {chunk_label(recording_ids)}"


def run_token(api, hook, take):
    # The first call of a hook obtains its access token; the fault hits that token request.
    run_list(api, hook, take)
    return "token", "token request"


RETRIED_CALLS = [
    pytest.param(run_list, id="list"),
    pytest.param(run_transcode, id="transcode"),
    pytest.param(run_archive, id="archive"),
    pytest.param(run_download_links, id="download-links"),
    pytest.param(run_token, id="token"),
]
ENDPOINT_OF = {"list": "list", "transcode": "transcode", "archive": "archive", "download-links": "urls"}


@pytest.mark.parametrize("run", RETRIED_CALLS)
@pytest.mark.parametrize(
    "fault", ["too-many-requests-no-retry-after", "server-error", "unavailable", "html-error", "drop"]
)
def test_transient_fault_is_retried_and_the_call_succeeds(
    api, make_connection, take, retry_warnings, run, fault
):
    hook = fast_hook(make_connection(api.base_url))
    endpoint = (
        "token" if run is run_token else ENDPOINT_OF[run.__name__.removeprefix("run_").replace("_", "-")]
    )
    api.handle.fail_next(endpoint, fault)
    before = api.last_call_id()

    faulted_endpoint, what = run(api, hook, take)

    assert faulted_endpoint == endpoint
    calls = api.calls(since=before, endpoints=endpoint, at_least=2)
    assert [call.status for call in calls] == [
        FAULT_STATUS[fault],
        200 if endpoint in {"list", "urls", "token"} else 204,
    ]
    warnings = retry_warnings()
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"GoToAssist {what} failed on attempt 1 of 3 ({FAULT_CAUSE[fault]})")


@pytest.mark.parametrize("endpoint", ["transcode", "archive"])
@pytest.mark.parametrize("fault", ["server-error-after", "drop-after"])
def test_a_call_applied_but_unanswered_is_repeated_harmlessly(
    api, make_connection, take, retry_warnings, endpoint, fault
):
    # The server acted on the first call and the answer was lost: the retry repeats an applied call.
    hook = fast_hook(make_connection(api.base_url))
    recording_ids = take(3, ready=endpoint == "archive")
    api.handle.fail_next(endpoint, fault)
    hook.list_recordings(MORNING)  # obtain the access token first, so only the API call is timed
    before = api.last_call_id()

    call = hook.transcode_recordings if endpoint == "transcode" else hook.archive_recordings
    assert call(recording_ids).processed == recording_ids

    calls = api.calls(since=before, endpoints=endpoint, at_least=2)
    assert [(c.status, c.recording_id_count) for c in calls] == [(FAULT_STATUS[fault], 3), (204, 3)]
    retried_at = arrival_times(api, before, endpoint)[1]
    recordings = api.recordings_by_id()
    for rid in recording_ids:
        recording = recordings[rid]
        if endpoint == "transcode":
            assert recording["transcode_calls"] == 2
            assert recording["state"] in {"transcoding", "ready_for_download"}
            # The clock started with the first, lost call; the repeated one did not restart it.
            assert timestamp(recording["transcode_requested_at"]) < retried_at
            assert timestamp(recording["ready_at"]) == pytest.approx(
                timestamp(recording["transcode_requested_at"]) + api.handle.settings.transcode_delay
            )
        else:
            assert recording["archive_calls"] == 2
            assert recording["archived"] is True
            assert timestamp(recording["archived_at"]) < retried_at
            assert recording["archived_before_ready"] is False
    warnings = retry_warnings()
    assert len(warnings) == 1, warnings
    assert f"{endpoint} call for {chunk_label(recording_ids)}" in warnings[0]
    assert f"({FAULT_CAUSE[fault]})" in warnings[0]


def test_a_slow_answer_within_the_timeout_is_waited_for(api, make_connection, take, retry_warnings):
    api.handle.set_faults(FaultPlan(queued={"transcode": ["slow"]}, slow_seconds=0.4))
    hook = fast_hook(make_connection(api.base_url))
    recording_ids = take(3)
    hook.list_recordings(MORNING)
    before = api.last_call_id()
    started = time.monotonic()

    assert hook.transcode_recordings(recording_ids).processed == recording_ids

    assert time.monotonic() - started >= 0.4
    assert [c.status for c in api.calls(since=before, endpoints="transcode", at_least=1)] == [204]
    recordings = api.recordings_by_id()
    assert [recordings[rid]["transcode_calls"] for rid in recording_ids] == [1, 1, 1]
    assert retry_warnings() == []


@pytest.mark.parametrize("endpoint", ["list", "transcode"])
def test_an_answer_slower_than_the_timeout_is_retried(api, make_connection, take, retry_warnings, endpoint):
    api.handle.set_faults(FaultPlan(queued={endpoint: ["slow"]}, slow_seconds=1.0))
    hook = fast_hook(make_connection(api.base_url, timeout=0.3))
    recording_ids = take(3)
    hook.list_recordings(MORNING)
    before = api.last_call_id()

    if endpoint == "list":
        expected = expected_morning(api)
        listed = hook.list_recordings(MORNING)
        assert (listed.ready_for_transcode, listed.ready_for_download) == expected
        what = f"list call for {MORNING}"
    else:
        assert hook.transcode_recordings(recording_ids).processed == recording_ids
        answered = api.recordings_by_id()
        assert [answered[rid]["transcode_calls"] for rid in recording_ids] == [1, 1, 1]
        what = f"transcode call for {chunk_label(recording_ids)}"

    warnings = retry_warnings()
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"GoToAssist {what} failed on attempt 1 of 3 (timed out)")
    # The server finished the call the client gave up on: the hook must have been fine with that.
    calls = api.calls(since=before, endpoints=endpoint, at_least=2)
    assert len(calls) == 2
    assert {c.status for c in calls} == {200 if endpoint == "list" else 204}
    if endpoint == "transcode":
        recordings = api.recordings_by_id()
        assert [recordings[rid]["transcode_calls"] for rid in recording_ids] == [2, 2, 2]
        assert [recordings[rid]["ready_at"] for rid in recording_ids] == [
            answered[rid]["ready_at"] for rid in recording_ids
        ]


def test_retry_after_is_honoured(api, make_connection, retry_warnings):
    api.handle.set_faults(FaultPlan(queued={"list": ["too-many-requests"]}, retry_after_seconds=2))
    # Without Retry-After this policy waits at most 0.02 s plus up to 1 s of jitter.
    hook = fast_hook(
        make_connection(api.base_url), RetryPolicy(max_attempts=3, initial_wait=0.01, max_wait=5)
    )
    hook.tokens.get()
    before = api.last_call_id()

    hook.list_recordings(MORNING)

    assert [c.status for c in api.calls(since=before, endpoints="list", at_least=2)] == [429, 200]
    first, retried = arrival_times(api, before, "list")
    assert retried - first >= 1.9
    warnings = retry_warnings()
    assert len(warnings) == 1, warnings
    assert warnings[0] == (
        f"GoToAssist list call for {MORNING} failed on attempt 1 of 3 (HTTP 429); retrying in 2.0 s"
    )


def test_retry_after_is_capped_by_the_longest_wait(api, make_connection, retry_warnings):
    api.handle.set_faults(FaultPlan(queued={"list": ["too-many-requests"]}, retry_after_seconds=30))
    hook = fast_hook(
        make_connection(api.base_url), RetryPolicy(max_attempts=3, initial_wait=0.01, max_wait=0.3)
    )
    hook.tokens.get()
    before = api.last_call_id()

    hook.list_recordings(MORNING)

    first, retried = arrival_times(api, before, "list")
    assert retried - first < 5
    assert retry_warnings()[0].endswith("(HTTP 429); retrying in 0.3 s")


def test_default_retry_bounds_are_the_documented_ones(api, make_connection):
    hook = GoToAssistHook(make_connection(api.base_url))

    policy = hook.retry_policy

    # "up to 8 attempts and 5 minutes per call", "a Retry-After header ... (at most 30 s)",
    # "timeout (default 30 s per request)".
    assert (policy.max_attempts, policy.max_total, policy.max_wait) == (8, 300.0, 30.0)
    assert hook.settings.extra.timeout == 30.0


# -- retries are bounded ----------------------------------------------------------------------------


def test_a_permanently_failing_endpoint_is_given_up_after_max_attempts(
    api, make_connection, take, retry_warnings
):
    api.handle.fail_next("transcode", "unavailable", times=20)
    hook = fast_hook(make_connection(api.base_url))
    recording_ids = take(2)
    before = api.last_call_id()

    with pytest.raises(GoToAssistTransientError) as raised:
        hook.transcode_recordings(recording_ids)

    assert str(raised.value) == "GoToAssist transcode call failed with HTTP 503: service unavailable"
    assert (raised.value.call, raised.value.status) == ("transcode", 503)
    assert [c.status for c in api.calls(since=before, endpoints="transcode", at_least=3)] == [503] * 3
    warnings = retry_warnings()
    assert [w.split(" failed on ")[1].split(";")[0] for w in warnings] == [
        "attempt 1 of 3 (HTTP 503)",
        "attempt 2 of 3 (HTTP 503)",
    ]
    recordings = api.recordings_by_id()
    assert [recordings[rid]["transcode_calls"] for rid in recording_ids] == [0, 0]


def test_a_connection_dropped_every_time_is_given_up_after_max_attempts(
    api, make_connection, take, retry_warnings
):
    api.handle.fail_next("archive", "drop", times=20)
    hook = fast_hook(make_connection(api.base_url))
    recording_ids = take(2, ready=True)
    before = api.last_call_id()

    with pytest.raises(requests.ConnectionError):
        hook.archive_recordings(recording_ids)

    assert [c.status for c in api.calls(since=before, endpoints="archive", at_least=3)] == [0] * 3
    warnings = retry_warnings()
    assert len(warnings) == 2
    assert all(f"archive call for {chunk_label(recording_ids)}" in w for w in warnings)
    assert not any(api.recordings_by_id()[rid]["archived"] for rid in recording_ids)


def test_retries_stop_when_the_time_bound_is_reached(api, make_connection, retry_warnings):
    api.handle.fail_next("list", "unavailable", times=100)
    hook = fast_hook(
        make_connection(api.base_url),
        RetryPolicy(max_attempts=100, initial_wait=0.05, max_wait=0.1, max_total=0.5),
    )
    hook.tokens.get()
    before = api.last_call_id()

    with pytest.raises(GoToAssistTransientError, match="list call failed with HTTP 503"):
        hook.list_recordings(MORNING)

    calls = api.calls(since=before, endpoints="list", at_least=2)
    assert 2 <= len(calls) < 20
    assert len(retry_warnings()) == len(calls) - 1


# -- faults that are not retried --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "endpoint"),
    [
        pytest.param("transcode", "transcode", id="transcode"),
        pytest.param("archive", "archive", id="archive"),
        pytest.param("download-links", "urls", id="download-links"),
    ],
)
def test_bad_request_fails_after_one_call_with_the_server_reason(
    api, make_connection, take, retry_warnings, name, endpoint
):
    api.handle.update_settings(list_limit=2)
    hook = fast_hook(make_connection(api.base_url))
    recording_ids = take(3, ready=True)
    before = api.last_call_id()
    call = {
        "transcode": hook.transcode_recordings,
        "archive": hook.archive_recordings,
        "download-links": hook.get_download_links,
    }[name]

    with pytest.raises(GoToAssistApiError) as raised:
        call(recording_ids)

    assert not isinstance(raised.value, GoToAssistTransientError)
    assert str(raised.value) == (
        f"GoToAssist {name} call failed with HTTP 400: 3 recording IDs were given; at most 2 are allowed"
    )
    assert [c.status for c in api.calls(since=before, endpoints=ID_CALL_ENDPOINTS, at_least=1)] == [400]
    assert retry_warnings() == []
    recordings = api.recordings_by_id()
    assert [
        (recordings[rid]["transcode_calls"], recordings[rid]["archive_calls"]) for rid in recording_ids
    ] == [(0, 0)] * 3


@pytest.mark.parametrize(
    ("endpoint", "named"),
    [
        pytest.param(
            "list", "GoToAssist list call answered HTTP 200 with a body that is not JSON", id="list"
        ),
        pytest.param(
            "urls", "GoToAssist download-links call answered HTTP 200 with a body that is not JSON", id="urls"
        ),
        pytest.param("token", "The token endpoint answered without a usable access_token", id="token"),
    ],
)
def test_a_body_that_is_not_json_fails_after_one_call(
    api, make_connection, take, retry_warnings, endpoint, named
):
    hook = fast_hook(make_connection(api.base_url))
    if endpoint != "token":
        hook.tokens.get()
    api.handle.fail_next(endpoint, "malformed-json")
    recording_ids = take(2, ready=True)
    before = api.last_call_id()

    if endpoint == "urls":
        call = functools.partial(hook.get_download_links, recording_ids)
    else:
        call = functools.partial(hook.list_recordings, MORNING)

    with pytest.raises(InvalidResponseError) as raised:
        call()

    assert str(raised.value).startswith(named)
    assert [(c.endpoint, c.status) for c in api.calls(since=before, at_least=1)] == [(endpoint, 200)]
    assert retry_warnings() == []


@pytest.mark.parametrize(
    ("endpoint", "step"),
    [
        pytest.param("list", "list", id="list-step-with-a-broken-list"),
        pytest.param("token", "transcode", id="transcode-step-with-a-broken-token"),
        pytest.param("urls", "wait", id="sensor-with-broken-download-links"),
        pytest.param("urls", "archive", id="archive-step-with-broken-download-links"),
    ],
)
def test_a_body_that_is_not_json_sends_nothing_on_its_strength(api, make_connection, take, endpoint, step):
    conn_id = make_connection(api.base_url)
    recording_ids = take(3, ready=True)
    api.handle.fail_next(endpoint, "malformed-json")
    before = api.last_call_id()

    run_step = {
        "list": lambda: list_day(conn_id, LIST_DAY),
        "transcode": lambda: transcode(conn_id, recording_ids),
        "wait": lambda: poke(conn_id, recording_ids),
        "archive": lambda: archive(conn_id, recording_ids),
    }[step]

    with pytest.raises(InvalidResponseError):
        run_step()

    calls = api.calls(since=before, at_least=1)
    assert [(c.endpoint, c.status) for c in calls if c.endpoint == endpoint] == [(endpoint, 200)]
    assert not [c for c in calls if c.endpoint in {"transcode", "archive"}]
    recordings = api.recordings_by_id()
    assert [
        (recordings[rid]["transcode_calls"], recordings[rid]["archive_calls"]) for rid in recording_ids
    ] == [(0, 0)] * 3


def test_a_list_of_more_than_500_ids_is_refused(api, make_connection, retry_warnings):
    # A server whose lists go past the documented 500 breaks the promise the paging rests on.
    api.handle.update_settings(list_limit=600)
    conn_id = make_connection(api.base_url)
    day = TimeWindow(pendulum.datetime(2026, 11, 13), pendulum.datetime(2026, 11, 14))
    before = api.last_call_id()

    with pytest.raises(InvalidResponseError) as raised:
        fast_hook(conn_id).list_recordings(day)

    assert str(raised.value) == (
        "GoToAssist list response is not as documented: readyForTranscode: "
        "Value error, holds 600 IDs, more than the documented 500"
    )
    assert [c.status for c in api.calls(since=before, endpoints="list", at_least=1)] == [200]

    with pytest.raises(InvalidResponseError, match="more than the documented 500"):
        list_day(conn_id, LIST_DAY)

    assert not api.calls(since=before, endpoints=ID_CALL_ENDPOINTS)
    assert retry_warnings() == []
