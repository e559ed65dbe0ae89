"""The transcode operator waiting until its chunk is ready, against the local API server over real HTTP.

The task defers right after asking for transcoding; the trigger it defers to ends it in the triggerer
once the chunk is ready, and resumes it on a worker only when waiting failed.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pendulum
import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException, TaskDeferred
from airflow.triggers.base import TaskSuccessEvent, TriggerEvent

from gotoassist_recordings.exceptions import GoToAssistError, RecordingsRefusedError
from gotoassist_recordings.operators.recordings import GoToAssistTranscodeRecordingsOperator
from gotoassist_recordings.sensors.recordings import DEFERRAL_GRACE
from gotoassist_recordings.triggers.recordings import GoToAssistRecordingsReadyTrigger

CLASSPATH = "gotoassist_recordings.triggers.recordings.GoToAssistRecordingsReadyTrigger"
UNKNOWN_ID = "1000000000000"
WAIT_TIMEOUT = timedelta(seconds=30)


def waiting_transcode(
    conn_id: str, recording_ids: list[str], **kwargs
) -> GoToAssistTranscodeRecordingsOperator:
    return GoToAssistTranscodeRecordingsOperator(
        task_id="transcode",
        gotoassist_conn_id=conn_id,
        recording_ids=recording_ids,
        chunk_label="chunk 1/1",
        **{"wait_until_ready": True, "poll_interval": 0.2, "wait_timeout": WAIT_TIMEOUT, **kwargs},
    )


def deferral(operator: GoToAssistTranscodeRecordingsOperator) -> TaskDeferred:
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})
    return deferred.value


def events_of(trigger: GoToAssistRecordingsReadyTrigger) -> list[TriggerEvent]:
    async def collect() -> list[TriggerEvent]:
        return [event async for event in trigger.run()]

    return asyncio.run(collect())


def test_it_asks_then_defers_to_a_trigger_that_ends_the_task_when_ready(api, make_connection, take):
    conn_id = make_connection(api.base_url)
    recording_ids = take(3)
    before = pendulum.now("UTC")

    deferred = deferral(waiting_transcode(conn_id, recording_ids, poll_interval=2, max_poll_interval=60))

    after = pendulum.now("UTC")
    assert {api.recordings_by_id()[rid]["transcode_calls"] for rid in recording_ids} == {1}
    assert deferred.method_name == "execute_complete"
    assert deferred.timeout == WAIT_TIMEOUT + DEFERRAL_GRACE
    classpath, kwargs = deferred.trigger.serialize()
    assert classpath == CLASSPATH
    deadline = pendulum.parse(kwargs.pop("deadline"))
    assert before + WAIT_TIMEOUT <= deadline <= after + WAIT_TIMEOUT
    assert kwargs == {
        "recording_ids": recording_ids,
        "gotoassist_conn_id": conn_id,
        "poll_interval": 2.0,
        "max_poll_interval": 60.0,
        "chunk_label": "chunk 1/1",
        "first_check_delay": 2.0,
        "end_task_when_ready": True,
        "return_value": {"transcode_requested": 3},
    }


def test_the_trigger_ends_the_task_with_its_result_once_the_chunk_is_ready(api, make_connection, take):
    api.handle.update_settings(transcode_delay=0.5)
    recording_ids = take(2)
    deferred = deferral(waiting_transcode(make_connection(api.base_url), recording_ids, poll_interval=1.0))
    before = api.last_call_id()

    events = events_of(deferred.trigger)

    assert len(events) == 1
    assert isinstance(events[0], TaskSuccessEvent)
    assert events[0].xcoms == {"return_value": {"transcode_requested": 2}}
    assert {api.recordings_by_id()[rid]["state"] for rid in recording_ids} == {"ready_for_download"}
    # The first check waited out the poll interval, longer than transcoding took: one check was enough.
    assert len(api.calls(since=before, endpoints="urls")) == 1


def test_a_timeout_resumes_the_task_and_fails_it_naming_what_is_not_ready(api, make_connection, take):
    api.handle.update_settings(transcode_delay=60.0)
    recording_ids = take(2)
    operator = waiting_transcode(
        make_connection(api.base_url), recording_ids, wait_timeout=timedelta(seconds=0.5)
    )

    (event,) = events_of(deferral(operator).trigger)

    assert not isinstance(event, TaskSuccessEvent)
    assert event.payload["status"] == "timeout"
    with pytest.raises(AirflowFailException, match="2 of 2 recordings of chunk 1/1 were still not ready"):
        operator.execute_complete({}, event.payload)


def test_an_error_resumes_the_task_and_fails_it_with_its_cause(api, make_connection, take):
    operator = waiting_transcode(make_connection(api.base_url), take(1))
    trigger = deferral(operator).trigger
    trigger.gotoassist_conn_id = make_connection(api.base_url, password="wrong-secret")

    (event,) = events_of(trigger)

    assert event.payload["status"] == "error"
    with pytest.raises(GoToAssistError, match="refused the credentials"):
        operator.execute_complete({}, event.payload)


def test_a_runner_that_resumes_the_ended_task_gets_its_result():
    # `airflow dags test` resumes a task the trigger ended, passing the state it ended in.
    operator = waiting_transcode("gotoassist_default", ["1000000000001", "1000000000002"])

    assert operator.execute_complete({}, "success") == {"transcode_requested": 2}


def test_an_event_for_another_chunk_is_refused():
    operator = waiting_transcode("gotoassist_default", ["1000000000001", "1000000000002"])
    event = {"status": "ready", "asked": 1, "ready": 1, "message": "All 1 recordings are ready"}

    with pytest.raises(GoToAssistError, match="about another chunk"):
        operator.execute_complete({}, event)


def test_refused_ids_fail_the_task_before_it_waits(api, make_connection, take):
    operator = waiting_transcode(make_connection(api.base_url), [*take(1), UNKNOWN_ID])

    with pytest.raises(RecordingsRefusedError, match=UNKNOWN_ID):
        operator.execute({})


def test_a_chunk_ready_when_listed_is_skipped_without_waiting(api, make_connection, take):
    operator = waiting_transcode(make_connection(api.base_url), take(1, ready=True), already_ready=True)
    before = api.last_call_id()

    with pytest.raises(AirflowSkipException):
        operator.execute({})

    assert api.calls(since=before) == []


def test_without_waiting_it_returns_at_once(api, make_connection, take):
    operator = waiting_transcode(make_connection(api.base_url), take(2), wait_until_ready=False)

    assert operator.execute({}) == {"transcode_requested": 2}


def test_waiting_needs_a_poll_interval():
    with pytest.raises(ValueError, match="poll_interval above 0"):
        waiting_transcode("gotoassist_default", ["1000000000001"], poll_interval=0)
