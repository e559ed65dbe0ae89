from __future__ import annotations

import json
import time

import pendulum
import requests

from gotoassist_api_server.clock import API_TIME_FORMAT
from gotoassist_api_server.media import recording_mp4


def _window_of(api, recording):
    """List the recordings started in the same second as a recording."""
    start = pendulum.parse(recording["start_time"])
    return api.list(
        fromTime=start.format(API_TIME_FORMAT), toTime=start.add(seconds=1).format(API_TIME_FORMAT)
    ).json()


def test_transcode_makes_recordings_ready_after_the_delay(api, take_untouched):
    recording_ids = take_untouched(2)

    assert api.transcode(recording_ids).status_code == 204

    recordings = api.recordings_by_id()
    assert [recordings[rid]["state"] for rid in recording_ids] == ["transcoding", "transcoding"]
    listing = _window_of(api, recordings[recording_ids[0]])
    assert recording_ids[0] in listing["readyForTranscode"]
    assert api.urls(recording_ids).json() == []

    time.sleep(api.server.settings.transcode_delay + 0.1)

    recordings = api.recordings_by_id()
    assert [recordings[rid]["state"] for rid in recording_ids] == ["ready_for_download"] * 2
    listing = _window_of(api, recordings[recording_ids[0]])
    assert recording_ids[0] in listing["readyForDownload"]
    assert recording_ids[0] not in listing["readyForTranscode"]
    assert [entry["recordingId"] for entry in api.urls(recording_ids).json()] == recording_ids


def test_transcoding_again_is_accepted_and_keeps_readiness(api, day):
    recording_id = day.ready_recording_ids[1]
    before = api.recordings_by_id()[recording_id]

    assert api.transcode([recording_id]).status_code == 204
    assert api.transcode([recording_id]).status_code == 204

    after = api.recordings_by_id()[recording_id]
    assert after["ready_at"] == before["ready_at"]
    assert after["state"] == "ready_for_download"
    assert after["transcode_calls"] == before["transcode_calls"] + 2
    assert after["transcode_requested_at"] is not None


def test_urls_leave_out_recordings_not_ready(api, day, take_untouched):
    ready = day.ready_recording_ids[2:4]
    waiting = take_untouched(1)

    response = api.urls([waiting[0], *ready, ready[0]])

    assert response.status_code == 200
    entries = response.json()
    assert [entry["recordingId"] for entry in entries] == ready
    recordings = api.recordings_by_id()
    for entry in entries:
        recording_id = entry["recordingId"]
        assert entry["recordingUrl"] == f"{api.server.base_url}/files/{recording_id}/recording.mp4"
        assert entry["eventsUrl"] == f"{api.server.base_url}/files/{recording_id}/events.json"
        assert entry["thumbnailUrl"] == f"{api.server.base_url}/files/{recording_id}/thumbnail.png"
        assert entry["recordingStartTime"] == recordings[recording_id]["start_time"]
        assert entry["recordingStartTime"].endswith("Z")
        assert isinstance(entry["recordingSize"], str)


def test_files_are_deterministic_and_match_the_reported_size(api, day):
    [entry] = api.urls(day.ready_recording_ids[:1]).json()

    mp4 = requests.get(entry["recordingUrl"], timeout=10)
    again = requests.get(entry["recordingUrl"], timeout=10)
    events = requests.get(entry["eventsUrl"], timeout=10)
    thumbnail = requests.get(entry["thumbnailUrl"], timeout=10)

    assert mp4.headers["content-type"] == "video/mp4"
    assert len(mp4.content) == int(entry["recordingSize"])
    assert 4_000 < len(mp4.content) < 50_000
    assert mp4.content[4:8] == b"ftyp"
    assert again.content == mp4.content
    assert json.loads(events.content)["recordingId"] == entry["recordingId"]
    assert thumbnail.content.startswith(b"\x89PNG\r\n\x1a\n")


def test_links_point_to_the_files_base_url_when_one_is_set(api, server, day):
    # Another name of the same server stands in for a storage host apart from the API.
    files_host = f"http://localhost:{server.port}"
    server.update_settings(files_base_url=files_host)

    [entry] = api.urls(day.ready_recording_ids[:1]).json()
    mp4 = requests.get(entry["recordingUrl"], timeout=10)

    recording_id = entry["recordingId"]
    assert entry["recordingUrl"] == f"{files_host}/files/{recording_id}/recording.mp4"
    assert entry["eventsUrl"] == f"{files_host}/files/{recording_id}/events.json"
    assert len(mp4.content) == int(entry["recordingSize"])


def test_the_recording_scale_makes_large_mp4_files(api, server, day):
    [entry] = api.urls(day.ready_recording_ids[:1]).json()
    small = requests.get(entry["recordingUrl"], timeout=10).content
    server.update_settings(recording_scale=50)

    [large_entry] = api.urls(day.ready_recording_ids[:1]).json()
    large = requests.get(large_entry["recordingUrl"], timeout=30).content
    events = requests.get(large_entry["eventsUrl"], timeout=10).content

    assert len(large) == int(large_entry["recordingSize"])
    assert len(large) > 40 * len(small)
    assert large == recording_mp4(entry["recordingId"], scale=50)
    assert events == requests.get(entry["eventsUrl"], timeout=10).content


def test_unknown_files_are_not_found(api, day):
    recording_id = day.day_recording_ids[0]

    unknown_recording = requests.get(f"{api.server.base_url}/files/1000000000000/recording.mp4", timeout=10)
    unknown_name = requests.get(f"{api.server.base_url}/files/{recording_id}/secret.txt", timeout=10)

    assert unknown_recording.status_code == 404
    assert unknown_name.status_code == 404
    assert "error" in unknown_name.json()


def test_archiving_before_ready_is_recorded(api, server, day, take_untouched):
    waiting = take_untouched(1)
    ready = day.ready_recording_ids[4:5]
    before = server.stats(day=day.day)["day"]

    assert api.archive(waiting + ready).status_code == 204
    assert api.archive(waiting + ready).status_code == 204

    recordings = api.recordings_by_id()
    assert recordings[waiting[0]]["archived_before_ready"] is True
    assert recordings[ready[0]]["archived_before_ready"] is False
    assert [recordings[rid]["archive_calls"] for rid in waiting + ready] == [2, 2]
    after = server.stats(day=day.day)["day"]
    assert after["archived_before_ready"] == before["archived_before_ready"] + 1
    assert after["archived"] == before["archived"] + 2
