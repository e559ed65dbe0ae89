"""The list, transcode and archive operators against the local API server, over real HTTP.

The operators are run through ``execute`` with an empty context: none of them reads the context,
and Airflow only warns that ``execute`` is called outside a task runner.
"""

from __future__ import annotations

import math

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from gotoassist_api_server.seeding import DEFAULT_PERSONAL_ACCESS_TOKEN
from gotoassist_recordings.exceptions import (
    ChunkTooLargeError,
    CredentialsRefusedError,
    GoToAssistConfigError,
    GoToAssistError,
    RecordingsRefusedError,
)
from gotoassist_recordings.operators.recordings import (
    GoToAssistArchiveRecordingsOperator,
    GoToAssistListRecordingsOperator,
    GoToAssistTranscodeRecordingsOperator,
)
from gotoassist_recordings.sensors.recordings import GoToAssistRecordingsReadySensor

DAY = "2026-11-13"
NEXT_DAY = "2026-11-14"
UNKNOWN_IDS = ["1000000000000", "9999999999999"]


def list_day(conn_id: str) -> list[dict]:
    operator = GoToAssistListRecordingsOperator(
        task_id="list_recordings",
        gotoassist_conn_id=conn_id,
        window_start=f"{DAY}T00:00:00Z",
        window_end=f"{NEXT_DAY}T00:00:00Z",
    )
    return operator.execute({})


def transcode(conn_id: str, recording_ids: list[str], **kwargs) -> dict:
    operator = GoToAssistTranscodeRecordingsOperator(
        task_id="transcode_recordings", gotoassist_conn_id=conn_id, recording_ids=recording_ids, **kwargs
    )
    return operator.execute({})


def archive(conn_id: str, recording_ids: list[str], **kwargs) -> dict:
    operator = GoToAssistArchiveRecordingsOperator(
        task_id="archive_recordings", gotoassist_conn_id=conn_id, recording_ids=recording_ids, **kwargs
    )
    return operator.execute({})


def poke(conn_id: str, recording_ids: list[str]) -> bool:
    sensor = GoToAssistRecordingsReadySensor(
        task_id="wait_until_ready", gotoassist_conn_id=conn_id, recording_ids=recording_ids
    )
    return sensor.poke({})


def call_counts(api, recording_ids: list[str]) -> list[tuple[int, int]]:
    """How often each recording was named in a transcode and in an archive call, by the server."""
    recordings = api.recordings_by_id(DAY)
    return [(recordings[rid]["transcode_calls"], recordings[rid]["archive_calls"]) for rid in recording_ids]


# -- chunks -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 1, 499, 500, 501, 1000, 1001], ids=lambda count: f"{count}-ids")
def test_listed_chunks_cover_the_day_and_each_takes_one_transcode_call(fresh_api, make_connection, count):
    api = fresh_api({DAY: {"count": count, "neighbours": 3, "ready_fraction": 0.0}})
    seeded = api.seeded[DAY]
    conn_id = make_connection(api.base_url)

    chunks = list_day(conn_id)

    assert len(chunks) == math.ceil(count / 500)
    assert all(0 < len(chunk["recording_ids"]) <= 500 for chunk in chunks)
    assert not any(chunk["already_ready"] for chunk in chunks)
    listed = [rid for chunk in chunks for rid in chunk["recording_ids"]]
    assert len(listed) == count
    assert set(listed) == set(seeded.day_recording_ids)

    before = api.last_call_id()
    for chunk in chunks:
        outcome = transcode(conn_id, chunk["recording_ids"])
        assert outcome == {"transcode_requested": len(chunk["recording_ids"])}

    transcode_calls = api.calls(since=before, endpoints="transcode", at_least=math.ceil(count / 500))
    assert len(transcode_calls) == math.ceil(count / 500)
    assert {c.status for c in transcode_calls} <= {204}
    assert all(c.recording_id_count <= 500 for c in transcode_calls)
    assert sum(c.recording_id_count for c in transcode_calls) == count
    stats = api.handle.stats(day=DAY)
    assert stats["calls"].get("transcode", {"calls": 0})["calls"] == math.ceil(count / 500)
    assert stats["day"]["transcoded"] == count
    assert stats["day"]["touched_on_other_days"] == 0


def test_chunks_already_ready_skip_transcoding(fresh_api, make_connection):
    api = fresh_api({DAY: {"count": 40, "neighbours": 0, "ready_fraction": 0.5}})
    conn_id = make_connection(api.base_url)

    chunks = list_day(conn_id)

    assert [chunk["already_ready"] for chunk in chunks] == [False, True]
    assert set(chunks[1]["recording_ids"]) == set(api.seeded[DAY].ready_recording_ids)
    before = api.last_call_id()
    with pytest.raises(AirflowSkipException, match="already ready"):
        transcode(conn_id, chunks[1]["recording_ids"], already_ready=True)
    assert api.calls(since=before) == []


def test_the_look_back_sweep_adds_left_over_ready_recordings_only(fresh_api, make_connection):
    # Two days before DAY: recordings transcoded but never archived (their run gave up waiting),
    # and recordings never transcoded; three days before: leftovers outside the look-back.
    api = fresh_api(
        {
            DAY: {"count": 30, "neighbours": 0, "ready_fraction": 0.0},
            "2026-11-11": {"count": 20, "neighbours": 0, "ready_fraction": 0.5},
            "2026-11-10": {"count": 5, "neighbours": 0, "ready_fraction": 1.0},
        }
    )
    left_over = api.seeded["2026-11-11"]
    operator = GoToAssistListRecordingsOperator(
        task_id="list_recordings",
        gotoassist_conn_id=make_connection(api.base_url),
        window_start=f"{DAY}T00:00:00Z",
        window_end=f"{NEXT_DAY}T00:00:00Z",
        look_back_start="2026-11-11T00:00:00Z",
    )

    chunks = operator.execute({})

    assert [(chunk["already_ready"], chunk["label"]) for chunk in chunks] == [
        (False, "chunk 1/2 · 30 recordings"),
        (True, "chunk 2/2 · 10 recordings · ready when listed · left over from earlier days"),
    ]
    assert set(chunks[0]["recording_ids"]) == set(api.seeded[DAY].day_recording_ids)
    assert set(chunks[1]["recording_ids"]) == set(left_over.ready_recording_ids)


def test_a_look_back_that_does_not_end_before_the_window_is_refused(api, make_connection):
    operator = GoToAssistListRecordingsOperator(
        task_id="list_recordings",
        gotoassist_conn_id=make_connection(api.base_url),
        window_start=f"{DAY}T00:00:00Z",
        window_end=f"{NEXT_DAY}T00:00:00Z",
        look_back_start=f"{DAY}T06:00:00Z",
    )
    before = api.last_call_id()

    with pytest.raises(GoToAssistConfigError, match=r"look_back_start .* must be before window_start"):
        operator.execute({})

    assert api.calls(since=before, endpoints="list") == []


def test_more_chunks_than_airflow_can_map_fail_the_listing_saying_what_to_change(
    api, make_connection, monkeypatch
):
    # 1,234 recordings make three chunks; Airflow is told to map at most two.
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "2")
    conn_id = make_connection(api.base_url)

    with pytest.raises(GoToAssistError) as raised:
        list_day(conn_id)

    assert str(raised.value) == (
        "The window holds 3 chunks of up to 500 recordings, more than Airflow's [core] max_map_length "
        "of 2. Raise max_map_length (AIRFLOW__CORE__MAX_MAP_LENGTH) or process the window in shorter "
        "runs; nothing was transcoded or archived."
    )


def test_full_chunk_with_duplicates_is_one_call(api, make_connection):
    conn_id = make_connection(api.base_url)
    recording_ids = api.seeded[DAY].day_recording_ids[:500]
    before = api.last_call_id()

    assert transcode(conn_id, recording_ids + recording_ids[:20]) == {"transcode_requested": 500}

    transcode_calls = api.calls(since=before, endpoints="transcode", at_least=1)
    assert [(c.status, c.recording_id_count) for c in transcode_calls] == [(204, 500)]


@pytest.mark.parametrize(
    "run",
    [
        pytest.param(transcode, id="transcode-operator"),
        pytest.param(archive, id="archive-operator"),
        pytest.param(lambda conn_id, ids: archive(conn_id, ids, require_ready=False), id="archive-unchecked"),
        pytest.param(poke, id="readiness-sensor"),
    ],
)
def test_chunk_over_500_ids_is_refused_before_any_call(api, make_connection, run):
    conn_id = make_connection(api.base_url)
    recording_ids = api.seeded[DAY].day_recording_ids[-501:]
    counts_before = call_counts(api, recording_ids)
    before = api.last_call_id()

    with pytest.raises(ChunkTooLargeError, match="at most 500 recording IDs, got 501"):
        run(conn_id, recording_ids)

    assert api.calls(since=before) == []
    assert call_counts(api, recording_ids) == counts_before


# -- refused recording IDs ----------------------------------------------------------------------------


def test_transcode_operator_processes_valid_ids_and_fails_naming_the_refused(api, make_connection, take):
    conn_id = make_connection(api.base_url)
    valid = take(4)
    named = [valid[0], UNKNOWN_IDS[0], valid[1], valid[2], UNKNOWN_IDS[1], valid[3]]

    with pytest.raises(RecordingsRefusedError) as raised:
        transcode(conn_id, named)

    assert sorted(raised.value.refused_ids) == sorted(UNKNOWN_IDS)
    assert all(rid in str(raised.value) for rid in UNKNOWN_IDS)
    assert not any(rid in str(raised.value) for rid in valid)
    recordings = api.recordings_by_id()
    assert [recordings[rid]["transcode_calls"] for rid in valid] == [1, 1, 1, 1]


def test_full_chunk_with_one_unknown_id_takes_two_calls(api, make_connection):
    conn_id = make_connection(api.base_url)
    valid = api.seeded[DAY].day_recording_ids[500:999]
    named = [*valid[:250], UNKNOWN_IDS[0], *valid[250:]]
    before = api.last_call_id()

    with pytest.raises(RecordingsRefusedError) as raised:
        transcode(conn_id, named)

    assert raised.value.refused_ids == [UNKNOWN_IDS[0]]
    transcode_calls = api.calls(since=before, endpoints="transcode", at_least=2)
    assert [(c.status, c.recording_id_count) for c in transcode_calls] == [(403, 500), (204, 499)]
    recordings = api.recordings_by_id(DAY)
    assert all(recordings[rid]["transcode_calls"] == 1 for rid in valid)


def test_archive_operator_archives_valid_ids_and_fails_naming_the_refused(api, make_connection, take):
    conn_id = make_connection(api.base_url)
    valid = take(3, ready=True)

    with pytest.raises(RecordingsRefusedError) as raised:
        archive(conn_id, [UNKNOWN_IDS[0], *valid, UNKNOWN_IDS[1]])

    assert sorted(raised.value.refused_ids) == sorted(UNKNOWN_IDS)
    assert raised.value.call == "archive"
    recordings = api.recordings_by_id()
    assert all(recordings[rid]["archived"] for rid in valid)
    assert not any(recordings[rid]["archived_before_ready"] for rid in valid)


def test_bad_credentials_fail_the_operator(api, make_connection, take):
    conn_id = make_connection(
        api.base_url,
        refresh_token=None,
        personal_access_token=DEFAULT_PERSONAL_ACCESS_TOKEN,
        password="wrong-secret",
    )
    recording_ids = take(1)

    with pytest.raises(CredentialsRefusedError, match="refused the credentials"):
        transcode(conn_id, recording_ids)

    assert api.recordings_by_id()[recording_ids[0]]["transcode_calls"] == 0


# -- archiving only what is ready ---------------------------------------------------------------------


def test_archive_waits_for_transcoding_to_finish(api, make_connection, take):
    api.handle.update_settings(transcode_delay=1.0)
    conn_id = make_connection(api.base_url)
    recording_ids = take(3)
    transcode(conn_id, recording_ids)

    with pytest.raises(GoToAssistError, match="3 recordings are not ready for download") as raised:
        archive(conn_id, recording_ids)

    assert all(rid in str(raised.value) for rid in recording_ids)
    recordings = api.recordings_by_id()
    assert [recordings[rid]["archived"] for rid in recording_ids] == [False] * 3
    assert [recordings[rid]["archive_calls"] for rid in recording_ids] == [0] * 3

    api.wait_until_ready(recording_ids)
    assert archive(conn_id, recording_ids) == {"archived": 3}

    recordings = api.recordings_by_id()
    assert [recordings[rid]["archived"] for rid in recording_ids] == [True] * 3
    assert api.handle.stats(day=api.work_day)["day"]["archived_before_ready"] == 0


def test_archive_of_a_mixed_chunk_archives_only_the_ready(api, make_connection, take):
    conn_id = make_connection(api.base_url)
    ready = take(2, ready=True)
    waiting = take(2)

    with pytest.raises(GoToAssistError, match="2 recordings are not ready") as raised:
        archive(conn_id, [waiting[0], *ready, waiting[1]])

    assert not isinstance(raised.value, RecordingsRefusedError)
    assert all(rid in str(raised.value) for rid in waiting)
    assert not any(rid in str(raised.value) for rid in ready)
    recordings = api.recordings_by_id()
    assert [recordings[rid]["archived"] for rid in ready] == [True, True]
    assert [recordings[rid]["archived"] for rid in waiting] == [False, False]


def test_archive_without_the_readiness_check_archives_anything(api, make_connection, take):
    # The readiness check is what protects: turned off, the API itself accepts the data loss.
    conn_id = make_connection(api.base_url)
    waiting = take(1)

    assert archive(conn_id, waiting, require_ready=False) == {"archived": 1}

    assert api.recordings_by_id()[waiting[0]]["archived_before_ready"] is True
