from __future__ import annotations

import pendulum
import pytest

from gotoassist_api_server.seeding import ACCOUNT_KEY, COMPANY_ID, USER_KEYS

DAY_START = "2026-11-13T00:00:00Z"
NEXT_DAY_START = "2026-11-14T00:00:00Z"


def _in_list_order(recordings):
    return [r["recording_id"] for r in sorted(recordings, key=lambda r: (r["start_time"], r["recording_id"]))]


@pytest.mark.parametrize(
    ("parameters", "named"),
    [
        pytest.param({"accountKey": None}, "accountKey", id="no-key"),
        pytest.param({"accountKey": "41x"}, "accountKey", id="account-not-digits"),
        pytest.param({"userKey": "-5"}, "userKey", id="user-not-digits"),
        pytest.param({"companyId": "6.1"}, "companyId", id="company-not-digits"),
        pytest.param({"sessionType": "2"}, "sessionType", id="session-type"),
        pytest.param({"fromTime": "2026-11-13T00:00:00.000Z"}, "fromTime", id="fractional-seconds"),
        pytest.param({"fromTime": "2026-11-13"}, "fromTime", id="date-only"),
        pytest.param({"toTime": "yesterday"}, "toTime", id="unparseable"),
        pytest.param({"toTime": "2026-02-30T00:00:00Z"}, "toTime", id="no-such-date"),
        pytest.param({"fromTime": "2026-11-13T00:00:00 01:00"}, "fromTime", id="unencoded-plus"),
        pytest.param({"fromTime": NEXT_DAY_START, "toTime": DAY_START}, "fromTime", id="from-after-to"),
        pytest.param({"timePeriod": "0"}, "timePeriod", id="period-zero"),
        pytest.param({"timePeriod": "-3"}, "timePeriod", id="period-negative"),
        pytest.param({"timePeriod": "1.5"}, "timePeriod", id="period-fraction"),
        pytest.param({"archived": "yes"}, "archived", id="archived"),
    ],
)
def test_malformed_parameters_are_rejected(api, parameters, named):
    response = api.list(**parameters)

    assert response.status_code == 400
    assert named in response.json()["error"]


@pytest.mark.parametrize(
    "parameters",
    [
        pytest.param({"accountKey": "4100000000999"}, id="account"),
        pytest.param({"userKey": "5100000000999"}, id="user"),
        pytest.param({"companyId": "6100000000999"}, id="company"),
    ],
)
def test_unknown_keys_are_forbidden(api, parameters):
    response = api.list(**{"accountKey": None, **parameters})

    assert response.status_code == 403
    [(name, value)] = parameters.items()
    assert response.json()["parameter"] == name
    assert name in response.json()["error"]
    assert value in response.json()["error"]


def test_lists_are_capped_and_in_start_time_order(api, server, day):
    response = api.list(fromTime=DAY_START, toTime=NEXT_DAY_START)

    assert response.status_code == 200
    listing = response.json()
    assert all(isinstance(rid, str) and rid.isdigit() for rid in listing["readyForTranscode"])
    recordings = {r["recording_id"]: r for r in server.recordings(day=day.day)}
    waiting = [r for r in recordings.values() if r["state"] != "ready_for_download" and not r["archived"]]
    assert len(waiting) > 500
    assert listing["readyForTranscode"] == _in_list_order(waiting)[:500]
    ready = [recordings[rid] for rid in listing["readyForDownload"]]
    assert listing["readyForDownload"] == _in_list_order(ready)
    assert all(r["state"] == "ready_for_download" for r in ready)


def test_shared_start_times_are_ordered_by_id(api, server, day):
    listing = api.list(fromTime=DAY_START, toTime=NEXT_DAY_START).json()

    starts = {r["recording_id"]: r["start_time"] for r in server.recordings(day=day.day)}
    pairs = zip(listing["readyForTranscode"], listing["readyForTranscode"][1:], strict=False)
    ties = [(first, second) for first, second in pairs if starts[first] == starts[second]]
    assert ties
    assert all(first < second for first, second in ties)


def test_from_time_is_inclusive(api, day):
    first = day.day_recording_ids[0]

    at_start = api.list(fromTime=DAY_START, toTime="2026-11-13T00:00:01Z").json()
    after_start = api.list(fromTime="2026-11-13T00:00:01Z", toTime="2026-11-13T01:00:00Z").json()

    assert first in at_start["readyForTranscode"] + at_start["readyForDownload"]
    assert first not in after_start["readyForTranscode"] + after_start["readyForDownload"]


@pytest.mark.parametrize(
    ("to_time_inclusive", "includes_next_midnight"),
    [pytest.param(False, False, id="half-open"), pytest.param(True, True, id="inclusive")],
)
def test_to_time_bound(api, server, day, to_time_inclusive, includes_next_midnight):
    server.update_settings(to_time_inclusive=to_time_inclusive)
    next_midnight = day.next_day_recording_ids[0]

    listing = api.list(fromTime="2026-11-13T23:00:00Z", toTime=NEXT_DAY_START).json()

    listed = listing["readyForTranscode"] + listing["readyForDownload"]
    assert (next_midnight in listed) is includes_next_midnight
    assert day.previous_day_recording_ids[0] not in listed


def test_explicit_offsets_are_accepted(api):
    in_utc = api.list(fromTime=DAY_START, toTime="2026-11-13T06:00:00Z").json()
    with_offset = api.list(fromTime="2026-11-13T01:00:00+01:00", toTime="2026-11-13T07:00:00+01:00").json()

    assert with_offset == in_utc
    assert in_utc["readyForTranscode"]


def test_filters_combine(api, server, day):
    listing = api.list(
        accountKey=None, userKey=USER_KEYS[0], companyId=COMPANY_ID, sessionType="1", fromTime=DAY_START
    ).json()

    recordings = {r["recording_id"]: r for r in server.recordings()}
    listed = [recordings[rid] for rid in listing["readyForTranscode"] + listing["readyForDownload"]]
    assert listed
    assert all(r["user_key"] == USER_KEYS[0] and r["session_type"] == 1 for r in listed)
    assert all(r["company_id"] == COMPANY_ID and r["account_key"] == ACCOUNT_KEY for r in listed)


def test_attended_recordings_have_no_company(api, server):
    listing = api.list(sessionType="0", fromTime=DAY_START, toTime="2026-11-13T12:00:00Z").json()

    recordings = {r["recording_id"]: r for r in server.recordings()}
    listed = [recordings[rid] for rid in listing["readyForTranscode"] + listing["readyForDownload"]]
    assert listed
    assert all(r["session_type"] == 0 and r["company_id"] is None for r in listed)


def test_time_period_counts_back_from_now(api, seeded_database):
    recent = seeded_database.recent_day.day_recording_ids
    days_back = (
        pendulum.now("UTC").date() - pendulum.Date.fromisoformat(seeded_database.recent_day.day)
    ).days

    covering = api.list(timePeriod=str(days_back + 1)).json()
    too_short = api.list(timePeriod=str(days_back - 1)).json()

    assert covering["readyForTranscode"] == recent
    assert too_short == {"readyForTranscode": [], "readyForDownload": []}


def test_archived_flag_selects_archived_recordings(api, take_untouched):
    recording_ids = take_untouched(2)
    assert api.archive(recording_ids).status_code == 204

    archived = api.list(archived="1", fromTime=DAY_START, toTime=NEXT_DAY_START).json()
    unarchived = api.list(archived="0", fromTime="2026-11-13T20:00:00Z", toTime=NEXT_DAY_START).json()
    default = api.list(fromTime="2026-11-13T20:00:00Z", toTime=NEXT_DAY_START).json()

    assert set(recording_ids) <= set(archived["readyForTranscode"])
    assert not set(recording_ids) & set(unarchived["readyForTranscode"] + unarchived["readyForDownload"])
    assert default == unarchived
