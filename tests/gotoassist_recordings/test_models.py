from __future__ import annotations

import pytest

from gotoassist_recordings.exceptions import ChunkTooLargeError, InvalidRecordingIdError, InvalidResponseError
from gotoassist_recordings.models import (
    RecordingFilter,
    RecordingList,
    check_chunk_size,
    normalize_recording_ids,
    split_into_chunks,
)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param(["1", "22", "333"], ["1", "22", "333"], id="digit-strings"),
        pytest.param([1, 9007199254740993], ["1", "9007199254740993"], id="integers-kept-exact"),
        pytest.param(["5", "4", "5", "4", "6"], ["5", "4", "6"], id="duplicates-once-in-order"),
        pytest.param([], [], id="empty"),
    ],
)
def test_normalize_recording_ids_accepts(values, expected):
    assert normalize_recording_ids(values) == expected


@pytest.mark.parametrize(
    ("values", "named"),
    [
        pytest.param(["1/../2"], "'1/../2'", id="path-traversal"),
        pytest.param(["12%2F34"], "'12%2F34'", id="encoded-slash"),
        pytest.param(["12 34"], "'12 34'", id="space"),
        pytest.param(["-5"], "'-5'", id="negative-string"),
        pytest.param([-5], "'-5'", id="negative-int"),
        pytest.param([""], "''", id="empty-string"),
        pytest.param([1.0], "1.0", id="float"),
        pytest.param([True], "True", id="bool"),
        pytest.param([None], "None", id="none"),
        pytest.param("123", "str", id="string-instead-of-list"),
        pytest.param({"recording_ids": ["1"]}, "dict", id="dict-instead-of-list"),
    ],
)
def test_normalize_recording_ids_refuses_and_names_the_value(values, named):
    with pytest.raises(InvalidRecordingIdError, match=named.replace("(", r"\(")) as raised:
        normalize_recording_ids(values)
    assert named in str(raised.value)


@pytest.mark.parametrize("count", [0, 1, 499, 500, 501, 1000, 1001])
def test_split_into_chunks_keeps_every_id_once_within_the_limit(count):
    ids = [str(n) for n in range(count)]
    chunks = split_into_chunks(ids)
    assert len(chunks) == -(-count // 500)
    assert all(1 <= len(chunk) <= 500 for chunk in chunks)
    assert [rid for chunk in chunks for rid in chunk] == ids


def test_check_chunk_size_refuses_501():
    check_chunk_size([str(n) for n in range(500)], "transcode")
    with pytest.raises(ChunkTooLargeError, match="at most 500 recording IDs, got 501"):
        check_chunk_size([str(n) for n in range(501)], "transcode")


def test_recording_list_refuses_more_than_500_ids():
    with pytest.raises(InvalidResponseError, match=r"readyForTranscode: .*501 IDs"):
        RecordingList.parse_api(
            {"readyForTranscode": [str(n) for n in range(501)], "readyForDownload": []}, "list"
        )


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"readyForTranscode": "1,2", "readyForDownload": []}, id="not-a-list"),
        pytest.param({"readyForTranscode": ["1", "x2"], "readyForDownload": []}, id="non-digit-id"),
        pytest.param({"readyForTranscode": [1.5], "readyForDownload": []}, id="float-id"),
        pytest.param({"readyForDownload": []}, id="missing-list"),
        pytest.param(["1", "2"], id="array-instead-of-object"),
    ],
)
def test_recording_list_refuses_malformed_payloads(payload):
    with pytest.raises(InvalidResponseError, match="list response is not as documented"):
        RecordingList.parse_api(payload, "list")


def test_recording_list_is_full_at_500_in_either_list():
    ids = [str(n) for n in range(500)]
    assert RecordingList.parse_api({"readyForTranscode": ids, "readyForDownload": []}, "list").is_full
    assert RecordingList.parse_api({"readyForTranscode": [], "readyForDownload": ids}, "list").is_full
    assert not RecordingList.parse_api(
        {"readyForTranscode": ids[:499], "readyForDownload": []}, "list"
    ).is_full


def test_recording_filter_falls_back_to_connection_keys_only_when_none_given():
    connection = RecordingFilter(account_key="41", user_key="51")
    assert RecordingFilter(session_type=1).or_defaults(connection).api_params() == {
        "accountKey": "41",
        "userKey": "51",
        "sessionType": "1",
    }
    assert RecordingFilter(company_id=61).or_defaults(connection).api_params() == {"companyId": "61"}


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"account_key": "41a"}, id="non-digit-key"),
        pytest.param({"user_key": 4.1}, id="float-key"),
        pytest.param({"session_type": 2}, id="unknown-session-type"),
        pytest.param({"acount_key": "41"}, id="misspelt-field"),
    ],
)
def test_recording_filter_refuses_bad_values(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        RecordingFilter(**kwargs)
