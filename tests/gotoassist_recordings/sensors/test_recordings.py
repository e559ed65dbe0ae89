"""The readiness sensor against the local API server, over real HTTP."""

from __future__ import annotations

import time

import pytest

from gotoassist_recordings.hooks.gotoassist import GoToAssistHook
from gotoassist_recordings.sensors.recordings import GoToAssistRecordingsReadySensor

UNKNOWN_ID = "1000000000000"
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
