from __future__ import annotations

import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor

import pendulum
import pytest
import requests

from gotoassist_api_server.cli import main
from gotoassist_api_server.seeding import DEFAULT_REFRESH_TOKEN, seed
from gotoassist_api_server.stats import stats
from gotoassist_api_server.testing import running_server

DAY = "2026-11-13"


@pytest.fixture
def small_database(tmp_path):
    path = tmp_path / "small.sqlite"
    result = seed(path, day=DAY, count=12, neighbours=2, ready_fraction=0.5, seed=3)
    return path, result


def _start_times(path):
    with sqlite3.connect(path) as connection:
        return dict(connection.execute("SELECT recording_id, start_time FROM recordings"))


def test_same_seed_gives_same_recordings(tmp_path):
    first = seed(tmp_path / "first.sqlite", count=50, seed=21)
    second = seed(tmp_path / "second.sqlite", count=50, seed=21)
    other = seed(tmp_path / "other.sqlite", count=50, seed=22)

    assert first == second
    assert _start_times(tmp_path / "first.sqlite") == _start_times(tmp_path / "second.sqlite")
    assert other.day_recording_ids != first.day_recording_ids
    assert all(len(rid) == 13 and rid.isdigit() for rid in first.day_recording_ids)


@pytest.mark.parametrize("timezone", ["UTC", "Europe/Berlin", "America/New_York"])
def test_seeded_day_has_its_edges(tmp_path, timezone):
    path = tmp_path / "edges.sqlite"
    result = seed(path, day=DAY, count=200, neighbours=3, ready_fraction=0.1, timezone=timezone)
    starts = _start_times(path)
    day_start = pendulum.datetime(2026, 11, 13, tz=timezone)
    day_end = day_start.add(days=1)

    assert len(result.day_recording_ids) == 200
    assert len(result.ready_recording_ids) == 20
    assert starts[result.day_recording_ids[0]] == day_start.int_timestamp
    assert starts[result.next_day_recording_ids[0]] == day_end.int_timestamp
    assert starts[result.previous_day_recording_ids[-1]] == day_start.int_timestamp - 1
    day_starts = [starts[rid] for rid in result.day_recording_ids]
    assert all(day_start.int_timestamp <= start < day_end.int_timestamp for start in day_starts)
    assert len(set(day_starts)) < len(day_starts)
    business_hours = [s for s in day_starts if 8 <= pendulum.from_timestamp(s, tz=timezone).hour < 18]
    assert len(business_hours) > len(day_starts) * 0.6


def test_seeding_again_appends_or_resets(tmp_path):
    path = tmp_path / "repeat.sqlite"
    first = seed(path, count=10, neighbours=1)
    appended = seed(path, count=10, neighbours=1)

    assert not set(first.day_recording_ids) & set(appended.day_recording_ids)
    assert len(_start_times(path)) == 24

    seed(path, count=10, neighbours=1, reset=True)
    assert len(_start_times(path)) == 12


def test_restart_keeps_state_port_and_tokens(small_database, make_api):
    path, result = small_database
    with running_server(path, transcode_delay=0) as server:
        api = make_api(server)
        waiting = [rid for rid in result.day_recording_ids if rid not in result.ready_recording_ids][:2]
        assert api.transcode(waiting).status_code == 204
        assert api.archive(waiting[:1]).status_code == 204
        server.update_settings(id_transport="json")
        port = server.port
        before = server.recordings()

        server.restart()

        assert server.port == port
        assert server.recordings() == before
        assert server.settings.id_transport == "json"
        assert api.list(archived="1").json()["readyForDownload"] == waiting[:1]
        assert (
            api.request("GET", "/archive/recordings/urls", json={"recordingIds": waiting}).status_code == 200
        )


def test_stats_count_recordings_and_calls(small_database, make_api, request_token):
    path, result = small_database
    with running_server(path, transcode_delay=30) as server:
        api = make_api(server)
        waiting = [rid for rid in result.day_recording_ids if rid not in result.ready_recording_ids]
        ready = result.ready_recording_ids
        outside = result.next_day_recording_ids[:1]
        assert request_token(server, grant_type="refresh_token", refresh_token="nope").status_code == 400
        assert api.list().status_code == 200
        assert api.list(sessionType="3").status_code == 400
        assert api.transcode(waiting[:3] + outside).status_code == 204
        assert api.archive(ready[:2] + waiting[3:4]).status_code == 204
        assert api.urls(ready[:3]).status_code == 200
        assert requests.get(f"{server.base_url}/files/{ready[0]}/events.json", timeout=10).status_code == 200

        figures = server.stats(day=DAY)

    assert figures["day"] == {
        "day": DAY,
        "total": 12,
        "listed": 12,
        "transcoded": 3,
        "ready": 6,
        "archived": 3,
        "unarchived": 9,
        "archived_before_ready": 1,
        "touched_on_other_days": 1,
    }
    calls = figures["calls"]
    assert calls["token"]["by_status"] == {
        "200": {"calls": 1, "recording_ids": 0},
        "400": {"calls": 1, "recording_ids": 0},
    }
    assert calls["list"]["by_status"]["200"]["calls"] == 1
    assert calls["list"]["by_status"]["400"] == {"calls": 1, "recording_ids": 0}
    assert calls["transcode"] == {
        "calls": 1,
        "recording_ids": 4,
        "by_status": {"204": {"calls": 1, "recording_ids": 4}},
    }
    assert calls["archive"]["recording_ids"] == 3
    assert calls["urls"]["recording_ids"] == 3
    assert calls["file"]["calls"] == 1
    by_day = {
        (row["day"], row["state"], row["archived"]): row["count"] for row in figures["recordings_by_day"]
    }
    assert by_day[("2026-11-12", "ready_for_transcode", False)] == 2
    assert by_day[(DAY, "ready_for_download", True)] == 2
    assert sum(count for (day, _, _), count in by_day.items() if day == DAY) == 12
    assert stats(path, day=DAY)["day"]["transcoded"] == 3


def test_concurrent_calls_are_all_applied(small_database, make_api):
    path, result = small_database
    with running_server(path, transcode_delay=60) as server:
        api = make_api(server)
        recording_ids = result.day_recording_ids

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(lambda rid: api.transcode([rid]).status_code, recording_ids * 4))
            listings = list(pool.map(lambda _: api.list().status_code, range(16)))

        assert set(statuses) == {204}
        assert set(listings) == {200}
        recordings = api.recordings_by_id()
        assert all(recordings[rid]["transcode_calls"] == 4 for rid in recording_ids)
        assert server.stats()["calls"]["transcode"]["calls"] == len(recording_ids) * 4


def test_refresh_token_survives_restart_until_rotated(small_database, request_token):
    path, _ = small_database
    with running_server(path, rotate_refresh_tokens=True) as server:
        rotated = request_token(server, grant_type="refresh_token", refresh_token=DEFAULT_REFRESH_TOKEN)
        server.restart()

        assert (
            request_token(server, grant_type="refresh_token", refresh_token=DEFAULT_REFRESH_TOKEN).status_code
            == 400
        )
        next_one = request_token(
            server, grant_type="refresh_token", refresh_token=rotated.json()["refresh_token"]
        )
        assert next_one.status_code == 200


def test_command_line_seeds_and_reports(tmp_path, capsys):
    path = tmp_path / "cli.sqlite"

    assert (
        main(["seed", "--db", str(path), "--day", DAY, "--count", "7", "--neighbours", "1", "--reset"]) == 0
    )
    assert "Seeded 7 recordings" in capsys.readouterr().out
    assert main(["stats", "--db", str(path), "--day", DAY, "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert main(["stats", "--db", str(path), "--day", DAY]) == 0
    table = capsys.readouterr().out

    assert figures["day"]["total"] == 7
    assert "ready_for_transcode" in table
    assert "archived_before_ready" in table
    assert main(["seed", "--db", str(path), "--day", "13.11.2026", "--count", "1"]) == 2


def test_admin_settings_reject_unknown_or_invalid_options(small_database):
    path, _ = small_database
    with running_server(path) as server:
        unknown = requests.post(f"{server.base_url}/_admin/settings", json={"speed": 3}, timeout=10)
        invalid = requests.post(
            f"{server.base_url}/_admin/settings", json={"bad_token_status": 500}, timeout=10
        )
        current = requests.get(f"{server.base_url}/_admin/settings", timeout=10).json()

    assert unknown.status_code == 400
    assert invalid.status_code == 400
    assert current["bad_token_status"] == 403
