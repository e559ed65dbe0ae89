"""The readiness sensor against the local API server, over real HTTP."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import timedelta

import pendulum
import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException, TaskDeferred

from gotoassist_recordings.exceptions import GoToAssistError, InvalidTriggerEventError
from gotoassist_recordings.hooks.gotoassist import GoToAssistHook
from gotoassist_recordings.sensors.recordings import (
    DEFAULT_MAX_POLL_INTERVAL_SECONDS,
    DEFERRAL_GRACE,
    GoToAssistRecordingsReadySensor,
)
from gotoassist_recordings.triggers.recordings import GoToAssistRecordingsReadyTrigger

UNKNOWN_ID = "1000000000000"
#: A chunk for the tests that make no call.
IDS = ["1000000000001", "1000000000002"]
POKE_TIMEOUT_SECONDS = 10.0


def sensor_for(conn_id: str, recording_ids: list[str]) -> GoToAssistRecordingsReadySensor:
    return GoToAssistRecordingsReadySensor(
        task_id="wait_until_ready", gotoassist_conn_id=conn_id, recording_ids=recording_ids
    )


def states(api, recording_ids: list[str]) -> set[str]:
    recordings = api.recordings_by_id()
    return {recordings[rid]["state"] for rid in recording_ids}


def test_poke_turns_true_once_every_recording_is_ready(api, make_connection, take):
    api.handle.update_settings(transcode_delay=1.0)
    conn_id = make_connection(api.base_url)
    recording_ids = take(3)
    sensor = sensor_for(conn_id, recording_ids)

    assert sensor.poke({}) is False
    GoToAssistHook(conn_id).transcode_recordings(recording_ids)
    assert sensor.poke({}) is False

    # Poke until True, noting before each poke whether the server already had them all ready.
    pokes: list[tuple[bool, bool]] = []
    deadline = time.monotonic() + POKE_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        ready_before = states(api, recording_ids) == {"ready_for_download"}
        pokes.append((ready_before, sensor.poke({})))
        if pokes[-1][1]:
            break
        time.sleep(0.1)

    assert pokes[-1][1] is True
    assert states(api, recording_ids) == {"ready_for_download"}
    assert not [poke for poke in pokes if poke == (True, False)], "a poke missed recordings already ready"
    assert len(pokes) > 1, "the recordings were ready too early to watch the sensor wait"


@pytest.mark.parametrize(
    ("ready", "waiting", "unknown", "expected"),
    [
        pytest.param(2, 0, 0, True, id="all-ready"),
        pytest.param(2, 1, 0, False, id="one-not-transcoded"),
        pytest.param(1, 0, 1, True, id="unknown-ids-not-waited-for"),
        pytest.param(0, 1, 1, False, id="unknown-id-beside-a-waiting-one"),
    ],
)
def test_poke_reports_whether_the_chunk_is_ready(
    api, make_connection, take, ready, waiting, unknown, expected
):
    recording_ids = take(ready, ready=True) + take(waiting) + [UNKNOWN_ID] * unknown

    assert sensor_for(make_connection(api.base_url), recording_ids).poke({}) is expected


# -- deferrable mode --------------------------------------------------------------------------------

CLASSPATH = "gotoassist_recordings.triggers.recordings.GoToAssistRecordingsReadyTrigger"
TIMEOUT_SECONDS = 30.0


def deferrable_sensor(conn_id: str, recording_ids: list[str], **kwargs) -> GoToAssistRecordingsReadySensor:
    return GoToAssistRecordingsReadySensor(
        task_id="wait_until_ready",
        gotoassist_conn_id=conn_id,
        recording_ids=recording_ids,
        **{
            "deferrable": True,
            "poke_interval": 0.1,
            "timeout": TIMEOUT_SECONDS,
            "chunk_label": "chunk 1/1",
            **kwargs,
        },
    )


def deferred_trigger(sensor: GoToAssistRecordingsReadySensor) -> GoToAssistRecordingsReadyTrigger:
    """Execute the sensor, which must defer, and return the trigger it deferred to."""
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    assert deferred.value.method_name == "execute_complete"
    return deferred.value.trigger


def event_of(trigger: GoToAssistRecordingsReadyTrigger) -> dict:
    async def events() -> list[dict]:
        return [event.payload async for event in trigger.run()]

    (only,) = asyncio.run(events())
    return only


def test_a_ready_chunk_finishes_at_once_without_deferring(api, make_connection, take):
    conn_id = make_connection(api.base_url)
    before = api.last_call_id()

    assert deferrable_sensor(conn_id, take(2, ready=True)).execute({}) is None

    assert len(api.calls(since=before, endpoints="urls")) == 1


def test_a_waiting_chunk_defers_to_the_trigger_until_the_timeout(api, make_connection, take):
    conn_id = make_connection(api.base_url)
    recording_ids = take(2)
    sensor = deferrable_sensor(conn_id, recording_ids)
    before = pendulum.now("UTC")

    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})

    after = pendulum.now("UTC")
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout == timedelta(seconds=TIMEOUT_SECONDS) + DEFERRAL_GRACE
    classpath, kwargs = deferred.value.trigger.serialize()
    assert classpath == CLASSPATH
    deadline = pendulum.parse(kwargs.pop("deadline"))
    assert before.add(seconds=TIMEOUT_SECONDS) <= deadline <= after.add(seconds=TIMEOUT_SECONDS)
    assert kwargs == {
        "recording_ids": recording_ids,
        "gotoassist_conn_id": conn_id,
        "poll_interval": 0.1,
        "max_poll_interval": DEFAULT_MAX_POLL_INTERVAL_SECONDS,
        "chunk_label": "chunk 1/1",
        # The sensor's own task finishes on the worker with the event, as it always did.
        "first_check_delay": 0.0,
        "end_task_when_ready": False,
        "return_value": None,
    }


@pytest.mark.parametrize(
    ("sensor_arguments", "poll_interval", "max_poll_interval"),
    [
        pytest.param({"poke_interval": 300}, 300.0, DEFAULT_MAX_POLL_INTERVAL_SECONDS, id="defaults"),
        pytest.param({"poke_interval": 60, "max_wait": timedelta(minutes=2)}, 60.0, 120.0, id="max-wait"),
        pytest.param({"poke_interval": 60, "max_wait": 30}, 60.0, 60.0, id="max-wait-below-poke"),
        pytest.param({"poke_interval": 3600}, 3600.0, 3600.0, id="poke-above-default-cap"),
    ],
)
def test_poke_interval_and_max_wait_shape_the_trigger_waits(
    sensor_arguments, poll_interval, max_poll_interval
):
    sensor = deferrable_sensor("gotoassist_default", ["1000000000001"], **sensor_arguments)

    _, kwargs = sensor.trigger(pendulum.datetime(2026, 12, 4, 19, tz="Europe/Berlin")).serialize()

    assert (kwargs["poll_interval"], kwargs["max_poll_interval"]) == (poll_interval, max_poll_interval)
    assert kwargs["deadline"] == "2026-12-04T18:00:00+00:00"


def test_a_deferrable_sensor_needs_a_poke_interval():
    with pytest.raises(ValueError, match="poke_interval above 0"):
        deferrable_sensor("gotoassist_default", ["1000000000001"], poke_interval=0)


def test_the_ready_event_completes_the_task(api, make_connection, take):
    api.handle.update_settings(transcode_delay=1.0)
    conn_id = make_connection(api.base_url)
    recording_ids = take(2)
    GoToAssistHook(conn_id).transcode_recordings(recording_ids)
    sensor = deferrable_sensor(conn_id, recording_ids)

    event = event_of(deferred_trigger(sensor))

    assert event["status"] == "ready"
    assert sensor.resume_execution("execute_complete", {"event": event}, {}) is None


@pytest.mark.parametrize(
    ("soft_fail", "raised"),
    [
        pytest.param(False, AirflowSensorTimeout, id="fails"),
        pytest.param(True, AirflowSkipException, id="soft"),
    ],
)
def test_the_timeout_event_fails_the_task_naming_what_is_not_ready(
    api, make_connection, take, soft_fail, raised
):
    recording_ids = take(2)
    sensor = deferrable_sensor(make_connection(api.base_url), recording_ids, timeout=0.5, soft_fail=soft_fail)

    event = event_of(deferred_trigger(sensor))

    with pytest.raises(raised) as failure:
        sensor.resume_execution("execute_complete", {"event": event}, {})
    message = str(failure.value.__cause__ or failure.value)
    assert "2 of 2 recordings of chunk 1/1 were still not ready for download at the deadline" in message


def test_the_error_event_fails_the_task_with_its_cause(api, make_connection, take):
    sensor = deferrable_sensor(make_connection(api.base_url, password="wrong-secret"), take(1, ready=True))
    # The check on the worker would fail the same way; the trigger is taken directly.
    event = event_of(sensor.trigger(pendulum.now("UTC").add(seconds=TIMEOUT_SECONDS)))

    with pytest.raises(GoToAssistError, match="the token endpoint refused the credentials of connection"):
        sensor.execute_complete({}, event)


def _event(**changes) -> dict:
    event = {
        "status": "ready",
        "asked": 2,
        "ready": 2,
        "waiting_ids": [],
        "refused_ids": [],
        "message": "All 2 recordings of chunk 1/1 accepted by the API are ready for download",
    }
    return {**event, **changes}


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        pytest.param(None, "event: Input should be a valid dictionary", id="no-event"),
        pytest.param("ready", "event: Input should be a valid dictionary", id="a-string"),
        pytest.param(
            _event(status="done"), "status: Input should be 'ready', 'timeout' or 'error'", id="status"
        ),
        pytest.param(
            _event(ready=1), "reports a chunk ready whose recordings are not all ready", id="half-ready"
        ),
        pytest.param(
            _event(ready=1, waiting_ids=[IDS[0]]),
            "reports a chunk ready whose recordings",
            id="ready-but-waiting",
        ),
        pytest.param(
            _event(status="timeout", ready=2),
            "without naming the recordings still waiting",
            id="empty-timeout",
        ),
        pytest.param(
            _event(ready=3, asked=3), "an event about another chunk: 3 recordings", id="other-chunk"
        ),
        pytest.param(
            _event(status="error", ready=0, refused_ids=["1000000000009"]),
            "1 IDs not in this chunk",
            id="stranger",
        ),
        pytest.param(_event(waiting_ids=["1/../2"]), "waiting_ids.0", id="bad-id"),
        pytest.param(_event(message=""), "message", id="no-message"),
        pytest.param(_event(extra=1), "extra: Extra inputs are not permitted", id="unknown-field"),
    ],
)
def test_events_that_cannot_be_trusted_are_refused(event, problem):
    sensor = deferrable_sensor("gotoassist_default", IDS)

    with pytest.raises(InvalidTriggerEventError, match=re.escape(problem)):
        sensor.execute_complete({}, event)


def test_a_sensor_that_does_not_defer_still_pokes(api, make_connection, take):
    conn_id = make_connection(api.base_url)
    waiting = GoToAssistRecordingsReadySensor(
        task_id="wait_until_ready",
        gotoassist_conn_id=conn_id,
        recording_ids=take(1),
        deferrable=False,
        poke_interval=0.1,
        timeout=0.3,
    )
    ready = deferrable_sensor(conn_id, take(1, ready=True), deferrable=False)

    assert ready.execute({}) is None
    with pytest.raises(AirflowSensorTimeout):
        waiting.execute({})
