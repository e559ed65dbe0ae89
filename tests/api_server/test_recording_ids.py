from __future__ import annotations

import pytest
import requests

from gotoassist_api_server.settings import IdTransport

ACTIONS = {
    "transcode": ("POST", 204),
    "archived": ("PUT", 204),
    "urls": ("GET", 200),
}


def _forbidden_calls(server, endpoint):
    by_status = server.stats()["calls"].get(endpoint, {}).get("by_status", {})
    return by_status.get("403", {}).get("calls", 0)


def _send(api, action, recording_ids, transport):
    """Call an ID-taking endpoint with the IDs in the given form."""
    method, _ = ACTIONS[action]
    path = f"/archive/recordings/{action}"
    if transport is IdTransport.PATH:
        return api.request(method, f"{path}/{','.join(recording_ids)}")
    if transport is IdTransport.JSON:
        return api.request(method, path, json={"recordingIds": recording_ids})
    if transport is IdTransport.QUERY:
        return api.request(method, path, params={"recordingIds": ",".join(recording_ids)})
    return api.request(method, path, params=[("recordingIds", rid) for rid in recording_ids])


@pytest.mark.parametrize("action", list(ACTIONS))
@pytest.mark.parametrize("transport", list(IdTransport), ids=lambda transport: transport.value)
def test_each_transport_accepts_only_its_own_form(api, server, take_untouched, transport, action):
    server.update_settings(id_transport=transport)
    recording_ids = take_untouched(2)

    for other in IdTransport:
        if other is not transport:
            mismatched = _send(api, action, recording_ids, other)
            assert mismatched.status_code == 400, other
            assert "expected" in mismatched.json()["error"]
    response = _send(api, action, recording_ids, transport)

    assert response.status_code == ACTIONS[action][1]
    recordings = api.recordings_by_id()
    counter = {"transcode": "transcode_calls", "archived": "archive_calls"}.get(action)
    if counter is not None:
        assert [recordings[rid][counter] for rid in recording_ids] == [1, 1]
    else:
        assert response.json() == []


def test_ids_in_path_and_body_at_once_are_rejected(api, take_untouched):
    recording_ids = take_untouched(1)

    response = api.request(
        "POST", f"/archive/recordings/transcode/{recording_ids[0]}", json={"recordingIds": recording_ids}
    )

    assert response.status_code == 400
    assert api.recordings_by_id()[recording_ids[0]]["transcode_calls"] == 0


@pytest.mark.parametrize("action", list(ACTIONS))
def test_more_ids_than_the_limit_are_rejected(api, day, action):
    recording_ids = (day.day_recording_ids * 2)[:501]

    response = _send(api, action, recording_ids, IdTransport.PATH)

    assert response.status_code == 400
    assert "501" in response.json()["error"]


@pytest.mark.parametrize(
    ("id_list", "bad_value"),
    [
        pytest.param("12a4", "12a4", id="letters"),
        pytest.param("1,,2", "''", id="empty"),
        pytest.param("1.5", "1.5", id="decimal"),
    ],
)
def test_malformed_ids_are_rejected_by_value(api, id_list, bad_value):
    response = api.request("POST", f"/archive/recordings/transcode/{id_list}")

    assert response.status_code == 400
    assert bad_value in response.json()["error"]


def test_non_string_ids_in_json_are_rejected(api, server, take_untouched):
    server.update_settings(id_transport="json")
    [recording_id] = take_untouched(1)

    response = api.request(
        "POST", "/archive/recordings/transcode", json={"recordingIds": [int(recording_id)]}
    )

    assert response.status_code == 400
    assert recording_id in response.json()["error"]


@pytest.mark.parametrize("action", list(ACTIONS))
def test_unknown_ids_are_forbidden_and_change_nothing(api, server, take_untouched, action):
    known = take_untouched(2)
    unknown = ["1000000000000", "999"]
    endpoint = {"archived": "archive"}.get(action, action)
    before = api.recordings_by_id()
    forbidden_before = _forbidden_calls(server, endpoint)

    response = _send(api, action, [known[0], unknown[0], known[1], unknown[1], unknown[0]], IdTransport.PATH)

    assert response.status_code == 403
    assert response.json() == {"error": "invalid recording IDs", "invalidRecordingIds": unknown}
    after = api.recordings_by_id()
    assert [after[rid] for rid in known] == [before[rid] for rid in known]
    assert _forbidden_calls(server, endpoint) == forbidden_before + 1


def test_duplicate_ids_are_allowed_and_count_once(api, take_untouched):
    [recording_id] = take_untouched(1)

    response = api.transcode([recording_id, recording_id, recording_id])

    assert response.status_code == 204
    assert api.recordings_by_id()[recording_id]["transcode_calls"] == 1


def test_files_need_no_token(api, day):
    [recording_id] = day.ready_recording_ids[:1]

    [entry] = api.urls([recording_id]).json()

    assert requests.get(entry["thumbnailUrl"], timeout=10).status_code == 200
