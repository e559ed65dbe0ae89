"""The window-narrowing walk, against an in-memory list call that caps lists like the API."""

from __future__ import annotations

import itertools
import random

import pendulum
import pytest

from gotoassist_recordings.listing import WindowTooDenseError, list_window
from gotoassist_recordings.models import RecordingList
from gotoassist_recordings.windows import TimeWindow

DAY = TimeWindow(pendulum.datetime(2026, 11, 13), pendulum.datetime(2026, 11, 14))


class CappedListCall:
    """Answers like the list call: start-time order, half-open windows, 500 IDs per list."""

    def __init__(self, start_offsets: list[int], ready_every: int = 0) -> None:
        base = DAY.start
        self.recordings = sorted(
            (base.add(seconds=offset), f"{1000000 + n}", bool(ready_every) and n % ready_every == 0)
            for n, offset in enumerate(start_offsets)
        )
        self.calls: list[TimeWindow] = []

    def __call__(self, window: TimeWindow) -> RecordingList:
        self.calls.append(window)
        inside = [r for r in self.recordings if window.start <= r[0] < window.end]
        return RecordingList.parse_api(
            {
                "readyForTranscode": [rid for _, rid, ready in inside if not ready][:500],
                "readyForDownload": [rid for _, rid, ready in inside if ready][:500],
            },
            "list",
        )


def business_hours(count: int, seed: int = 3) -> list[int]:
    rng = random.Random(seed)
    return [min(86399, max(0, int(rng.gauss(13 * 3600, 3 * 3600)))) for _ in range(count)]


@pytest.mark.parametrize("count", [0, 1, 499, 500, 501, 1234, 10_000])
def test_every_recording_is_listed_exactly_once(count):
    fetch = CappedListCall(business_hours(count), ready_every=7)
    listed = list_window(fetch, DAY)

    expected = {rid for _, rid, _ in fetch.recordings}
    assert len(listed.ready_for_transcode) + len(listed.ready_for_download) == count
    assert set(listed.ready_for_transcode) | set(listed.ready_for_download) == expected
    assert set(listed.ready_for_download) == {rid for _, rid, ready in fetch.recordings if ready}
    assert listed.list_calls == len(fetch.calls)


def test_windows_are_walked_in_order_without_gap_or_overlap():
    fetch = CappedListCall(business_hours(5000))
    list_window(fetch, DAY)

    accepted = []
    for window in fetch.calls:
        if accepted and accepted[-1].start == window.start:
            accepted[-1] = window  # a narrower retry of a window that came back full
        else:
            accepted.append(window)
    assert accepted[0].start == DAY.start
    assert accepted[-1].end == DAY.end
    assert all(a.end == b.start for a, b in itertools.pairwise(accepted))


def test_a_quiet_day_takes_one_call():
    fetch = CappedListCall(business_hours(499))
    assert list_window(fetch, DAY).list_calls == 1


def test_500_recordings_in_one_second_fail_clearly():
    fetch = CappedListCall([3600] * 500)
    with pytest.raises(WindowTooDenseError, match="2026-11-13T01:00:00Z"):
        list_window(fetch, DAY)


def test_499_recordings_in_one_second_are_listed():
    fetch = CappedListCall([3600] * 499 + business_hours(2000))
    assert list_window(fetch, DAY).total == 2499
