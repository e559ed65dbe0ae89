from __future__ import annotations

import time

import pytest
import requests

from gotoassist_api_server.cli import main
from gotoassist_api_server.faults import FaultPlan
from gotoassist_api_server.seeding import DEFAULT_PERSONAL_ACCESS_TOKEN, seed
from gotoassist_api_server.testing import running_server

DAY = "2026-11-13"

#: The faults that strike before the handler runs, so the state stays as it was.
BEFORE_FAULTS = [
    "too-many-requests",
    "too-many-requests-no-retry-after",
    "server-error",
    "unavailable",
    "html-error",
    "drop",
]


@pytest.fixture
def small_database(tmp_path):
    path = tmp_path / "faults.sqlite"
    result = seed(path, day=DAY, count=12, neighbours=1, ready_fraction=0.5, seed=5)
    return path, result


def _call_or_connection_error(call):
    try:
        return call()
    except requests.ConnectionError as error:
        return error


def _fault_counts(server):
    return server.stats()["faults"]["by_endpoint"]


@pytest.mark.parametrize(
    ("fault", "status", "content_type", "retry_after"),
    [
        pytest.param("too-many-requests", 429, "application/json", "7", id="429-retry-after"),
        pytest.param("too-many-requests-no-retry-after", 429, "application/json", None, id="429-bare"),
        pytest.param("server-error", 500, "application/json", None, id="500"),
        pytest.param("unavailable", 503, "application/json", None, id="503"),
        pytest.param("html-error", 502, "text/html", None, id="html-page"),
        pytest.param("server-error-after", 500, "application/json", None, id="500-after"),
    ],
)
def test_error_faults_answer_as_configured(api, server, fault, status, content_type, retry_after):
    server.set_faults(retry_after_seconds=7)
    server.fail_next("list", fault)

    failed = api.list()
    recovered = api.list()

    assert failed.status_code == status
    assert failed.headers["content-type"].startswith(content_type)
    assert failed.headers.get("retry-after") == retry_after
    if content_type == "text/html":
        assert "<html>" in failed.text
        with pytest.raises(requests.JSONDecodeError):
            failed.json()
    else:
        assert "error" in failed.json()
    assert recovered.status_code == 200


@pytest.mark.parametrize("endpoint", ["token", "list", "urls"])
def test_malformed_json_comes_with_status_200(api, server, day, request_token, endpoint):
    calls = {
        "token": lambda: request_token(
            server, grant_type="personal_access_token", pat=DEFAULT_PERSONAL_ACCESS_TOKEN
        ),
        "list": api.list,
        "urls": lambda: api.urls(day.ready_recording_ids[:1]),
    }
    server.fail_next(endpoint, "malformed-json")

    response = calls[endpoint]()

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    with pytest.raises(requests.JSONDecodeError):
        response.json()
    assert calls[endpoint]().json()


@pytest.mark.parametrize("fault", ["drop", "drop-after"])
def test_dropped_connections_raise_connection_error(api, server, fault):
    server.fail_next("list", fault, times=2)
    before = _fault_counts(server).get("list", {}).get(fault, 0)

    with pytest.raises(requests.ConnectionError):
        api.list()
    with requests.Session() as session, pytest.raises(requests.ConnectionError):
        session.get(f"{server.api_url}/archive/recordings", headers=api.headers, timeout=10)

    assert api.list().status_code == 200
    assert _fault_counts(server)["list"][fault] == before + 2
    assert server.stats()["calls"]["list"]["by_status"]["0"]["calls"] >= 2


def test_slow_faults_delay_and_then_answer(api, server):
    server.set_faults(slow_seconds=0.3, queued={"list": ["slow"]})

    started = time.monotonic()
    slow = api.list()
    slow_seconds = time.monotonic() - started
    started = time.monotonic()
    api.list()
    normal_seconds = time.monotonic() - started

    assert slow.status_code == 200
    assert slow.json()["readyForTranscode"]
    assert slow_seconds >= 0.3
    assert normal_seconds < 0.3


def test_latency_delays_every_call_and_admin_calls_not(api, server):
    server.update_settings(latency=0.3)
    try:
        started = time.monotonic()
        answer = api.list()
        delayed_seconds = time.monotonic() - started
        started = time.monotonic()
        server.stats()
        admin_seconds = time.monotonic() - started
    finally:
        server.update_settings(latency=0.0)

    assert answer.status_code == 200
    assert delayed_seconds >= 0.3
    assert admin_seconds < 0.3


@pytest.mark.parametrize("endpoint", ["token", "list", "transcode", "archive", "urls", "file"])
@pytest.mark.parametrize("fault", ["unavailable", "drop"])
def test_every_endpoint_can_fail(api, server, day, take_untouched, request_token, endpoint, fault):
    [untouched] = take_untouched(1)
    ready = day.ready_recording_ids[0]
    calls = {
        "token": lambda: request_token(
            server, grant_type="personal_access_token", pat=DEFAULT_PERSONAL_ACCESS_TOKEN
        ),
        "list": api.list,
        "transcode": lambda: api.transcode([untouched]),
        "archive": lambda: api.archive([untouched]),
        "urls": lambda: api.urls([ready]),
        "file": lambda: requests.get(f"{server.base_url}/files/{ready}/events.json", timeout=10),
    }
    server.fail_next(endpoint, fault)

    failed = _call_or_connection_error(calls[endpoint])
    recovered = calls[endpoint]()

    if fault == "drop":
        assert isinstance(failed, requests.ConnectionError)
    else:
        assert failed.status_code == 503
    assert recovered.ok


@pytest.mark.parametrize("fault", BEFORE_FAULTS)
def test_faults_before_the_handler_change_no_state(api, server, take_untouched, fault):
    recording_ids = take_untouched(2)
    before = api.recordings_by_id()
    server.fail_next("transcode", fault)
    server.fail_next("archive", fault)

    transcoded = _call_or_connection_error(lambda: api.transcode(recording_ids))
    archived = _call_or_connection_error(lambda: api.archive(recording_ids))

    for response in (transcoded, archived):
        assert isinstance(response, requests.ConnectionError) or response.status_code >= 429
    after = api.recordings_by_id()
    assert [after[rid] for rid in recording_ids] == [before[rid] for rid in recording_ids]
    assert all(after[rid]["transcode_calls"] == 0 for rid in recording_ids)
    assert all(after[rid]["archived"] is False for rid in recording_ids)


@pytest.mark.parametrize("fault", ["server-error-after", "drop-after"])
def test_faults_after_the_handler_lose_the_answer_of_an_applied_call(api, server, take_untouched, fault):
    [to_transcode, to_archive] = take_untouched(2)
    server.fail_next("transcode", fault)
    server.fail_next("archive", fault)

    transcoded = _call_or_connection_error(lambda: api.transcode([to_transcode]))
    archived = _call_or_connection_error(lambda: api.archive([to_archive]))
    applied = api.recordings_by_id()

    for response in (transcoded, archived):
        if fault == "drop-after":
            assert isinstance(response, requests.ConnectionError)
        else:
            assert response.status_code == 500
    assert applied[to_transcode]["state"] == "transcoding"
    assert applied[to_transcode]["transcode_calls"] == 1
    assert applied[to_archive]["archived"] is True

    # Retrying is harmless: the calls are idempotent.
    assert api.transcode([to_transcode]).status_code == 204
    assert api.archive([to_archive]).status_code == 204
    retried = api.recordings_by_id()
    assert retried[to_transcode]["ready_at"] == applied[to_transcode]["ready_at"]
    assert retried[to_archive]["archived_at"] == applied[to_archive]["archived_at"]


def test_a_short_file_looks_complete_but_lacks_its_last_quarter(api, server, day):
    [entry] = api.urls(day.ready_recording_ids[:1]).json()
    whole = requests.get(entry["recordingUrl"], timeout=10).content
    server.fail_next("file", "short-file")

    short = requests.get(entry["recordingUrl"], timeout=10)
    again = requests.get(entry["recordingUrl"], timeout=10)

    assert short.status_code == 200
    assert int(short.headers["content-length"]) == len(short.content) == len(whole) * 3 // 4
    assert short.content == whole[: len(short.content)]
    assert len(again.content) == int(entry["recordingSize"])
    assert _fault_counts(server)["file"]["short-file"] >= 1


def test_a_file_dropped_mid_way_breaks_off_after_half_its_body(api, server, day):
    [entry] = api.urls(day.ready_recording_ids[:1]).json()
    server.fail_next("file", "drop-mid-file")
    received = bytearray()

    def read_into_received(response: requests.Response) -> None:
        for chunk in response.iter_content(1024):
            received.extend(chunk)

    with requests.get(entry["recordingUrl"], stream=True, timeout=10) as response:
        assert response.status_code == 200
        assert int(response.headers["content-length"]) == int(entry["recordingSize"])
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            read_into_received(response)
    again = requests.get(entry["recordingUrl"], timeout=10)

    assert 0 < len(received) < int(entry["recordingSize"])
    assert bytes(received) == again.content[: len(received)]
    assert len(again.content) == int(entry["recordingSize"])
    assert _fault_counts(server)["file"]["drop-mid-file"] >= 1


def test_probability_plan_is_seeded_and_injects_about_its_share(server, day):
    url = f"{server.base_url}/files/{day.ready_recording_ids[0]}/events.json"
    plan = FaultPlan(probabilities={"file": {"server-error": 0.2, "unavailable": 0.1}}, seed=5)
    before = _fault_counts(server).get("file", {})

    def statuses():
        with requests.Session() as session:
            return [session.get(url, timeout=10).status_code for _ in range(200)]

    server.set_faults(plan)
    first = statuses()
    server.set_faults(plan)
    again = statuses()
    server.set_faults(plan.model_copy(update={"seed": 6}))
    other_seed = statuses()

    assert again == first
    assert other_seed != first
    assert set(first) == {200, 500, 503}
    assert 23 <= first.count(500) <= 57
    assert 7 <= first.count(503) <= 33
    after = _fault_counts(server)["file"]
    injected_500 = first.count(500) * 2 + other_seed.count(500)
    injected_503 = first.count(503) * 2 + other_seed.count(503)
    assert after["server-error"] - before.get("server-error", 0) == injected_500
    assert after["unavailable"] - before.get("unavailable", 0) == injected_503


def test_rate_limit_refuses_calls_beyond_n_per_second(api, server, day):
    ready = day.ready_recording_ids[:1]
    file_url = f"{server.base_url}/files/{ready[0]}/events.json"
    server.set_faults(rate_limit=3)

    # The recordings API calls count together; the files do not count.
    statuses = [api.urls(ready).status_code, api.list().status_code, api.urls(ready).status_code]
    refused = api.urls(ready)
    refused_list = api.list()
    file_status = requests.get(file_url, timeout=10).status_code
    time.sleep(1.05)
    after_a_second = api.urls(ready).status_code

    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert "retry-after" not in refused.headers
    assert refused_list.status_code == 429
    assert file_status == 200
    assert after_a_second == 200

    server.set_faults(rate_limit=1, rate_limit_retry_after=True)
    assert api.urls(ready).status_code == 200
    with_header = api.urls(ready)
    assert with_header.status_code == 429
    assert with_header.headers["retry-after"] == "1"
    assert _fault_counts(server)["urls"]["rate-limited"] >= 2


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"queued": {"transcode": ["malformed-json"]}}, id="malformed-json-on-204-endpoint"),
        pytest.param({"probabilities": {"file": {"malformed-json": 0.1}}}, id="malformed-json-on-file"),
        pytest.param({"queued": {"urls": ["short-file"]}}, id="short-file-on-urls"),
        pytest.param({"probabilities": {"list": {"drop-mid-file": 0.1}}}, id="drop-mid-file-on-list"),
        pytest.param({"probabilities": {"list": {"drop": 0.6, "slow": 0.5}}}, id="more-than-certain"),
        pytest.param({"probabilities": {"list": {"drop": 1.5}}}, id="probability-above-1"),
        pytest.param({"queued": {"list": ["explode"]}}, id="unknown-fault"),
        pytest.param({"queued": {"admin": ["drop"]}}, id="unknown-endpoint"),
        pytest.param({"rate_limit": 0}, id="zero-rate-limit"),
    ],
)
def test_invalid_plans_are_rejected(server, fields):
    response = requests.post(f"{server.base_url}/_admin/faults", json=fields, timeout=10)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid fault plan"
    assert server.faults_in_force() == FaultPlan()


def test_queueing_a_fault_that_does_not_fit_is_rejected(server):
    response = requests.post(
        f"{server.base_url}/_admin/faults/next",
        json={"endpoint": "archive", "fault": "malformed-json", "times": 2},
        timeout=10,
    )

    assert response.status_code == 400
    assert server.faults_in_force().queued == {}


def test_clearing_the_plan_stops_the_faults(api, server):
    server.set_faults(probabilities={"list": {"unavailable": 1.0}}, queued={"urls": ["drop"]}, rate_limit=1)
    assert api.list().status_code == 503

    server.clear_faults()

    assert server.faults_in_force() == FaultPlan()
    assert [api.list().status_code for _ in range(3)] == [200, 200, 200]


def test_faults_survive_restart_with_what_is_left_of_their_queues(small_database, make_api):
    path, result = small_database
    at_start = FaultPlan(
        probabilities={"list": {"unavailable": 0.25, "drop-after": 0.125}, "file": {"slow": 0.5}},
        queued={"transcode": ["drop", "drop", "server-error-after", "drop"]},
        seed=42,
        slow_seconds=0.01,
        retry_after_seconds=3,
        rate_limit=50,
        rate_limited_endpoints=frozenset({"list", "urls"}),
        rate_limit_retry_after=True,
    )
    with running_server(path, transcode_delay=0, faults=at_start) as server:
        assert server.faults_in_force() == at_start

        api = make_api(server)
        server.set_faults(queued={"list": ["unavailable", "server-error", "html-error"]}, seed=9)
        assert api.list().status_code == 503
        before = server.recordings()

        server.restart()

        assert server.recordings() == before
        assert server.faults_in_force().queued == {"list": ["server-error", "html-error"]}
        assert server.faults_in_force().seed == 9
        assert [api.list().status_code for _ in range(3)] == [500, 502, 200]
        assert _fault_counts(server)["list"] == {"unavailable": 1, "server-error": 1, "html-error": 1}
        assert api.transcode(result.day_recording_ids[:1]).status_code == 204


def test_stats_command_reports_faults_injected(small_database, make_api, capsys):
    path, result = small_database
    with running_server(path) as server:
        api = make_api(server)
        server.fail_next("list", "unavailable", times=2)
        server.fail_next("archive", "drop-after")
        assert [api.list().status_code for _ in range(3)] == [503, 503, 200]
        with pytest.raises(requests.ConnectionError):
            api.archive(result.ready_recording_ids[:1])

        figures = server.stats()

    assert figures["faults"] == {
        "injected": 3,
        "by_endpoint": {"archive": {"drop-after": 1}, "list": {"unavailable": 2}},
    }
    # The handler ran and counted the IDs; the answer never left.
    assert figures["calls"]["archive"]["by_status"] == {"0": {"calls": 1, "recording_ids": 1}}
    assert main(["stats", "--db", str(path)]) == 0
    table = capsys.readouterr().out
    assert "Faults injected: 3" in table
    assert "drop-after" in table


def test_serve_rejects_a_plan_that_does_not_fit(tmp_path, capsys):
    arguments = ["serve", "--db", str(tmp_path / "never.sqlite"), "--fault", "transcode:malformed-json:0.1"]

    assert main(arguments) == 2
    assert "malformed-json" in capsys.readouterr().err
    assert not (tmp_path / "never.sqlite").exists()
