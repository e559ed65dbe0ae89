"""The run's report: what its asset event's ``extra`` holds and the line its log shows."""

from __future__ import annotations

import pytest

from gotoassist_recordings.day_report import DayReport, _local_days


def _report(**changes: object) -> DayReport:
    fields: dict[str, object] = {
        "window_start": "2026-11-13T00:00:00+00:00",
        "window_end": "2026-11-14T00:00:00+00:00",
        "first_day": "2026-11-13",
        "last_day": "2026-11-13",
        "timezone": "UTC",
        "listed": 1300,
        "already_ready": 260,
        "list_calls": 8,
        "chunks": 4,
        "chunks_archived": 4,
        "steps": {"transcode_requested": 1040, "archived": 1300},
    }
    return DayReport(**{**fields, **changes})


def test_the_extra_is_flat_and_always_names_the_step_counts() -> None:
    extra = _report(steps={"archived": 1300, "downloaded": 1290}).as_extra()

    assert extra == {
        "window_start": "2026-11-13T00:00:00+00:00",
        "window_end": "2026-11-14T00:00:00+00:00",
        "first_day": "2026-11-13",
        "last_day": "2026-11-13",
        "timezone": "UTC",
        "listed": 1300,
        "already_ready": 260,
        "list_calls": 8,
        "chunks": 4,
        "chunks_archived": 4,
        "transcode_requested": 0,
        "archived": 1300,
        "refused": 0,
        "downloaded": 1290,
        "complete": True,
    }


@pytest.mark.parametrize(
    ("changes", "complete"),
    [
        pytest.param({}, True, id="every-chunk-archived"),
        pytest.param({"listed": 0, "chunks": 0, "chunks_archived": 0, "steps": {}}, True, id="empty-day"),
        pytest.param({"chunks_archived": 3}, False, id="a-chunk-left"),
        pytest.param({"listed": None, "chunks": 0, "chunks_archived": 0}, False, id="listing-failed"),
    ],
)
def test_a_window_is_complete_only_when_listed_and_every_chunk_archived(
    changes: dict[str, object], complete: bool
) -> None:
    assert _report(**changes).complete is complete


def test_the_summary_counts_what_happened() -> None:
    assert _report(chunks_archived=3, steps={"archived": 1000, "refused": 2}).summary() == (
        "The window 2026-11-13 (UTC): 1300 recordings listed in 8 list calls (260 already ready for "
        "download) and cut into 4 chunks; 3 of 4 archived; transcode requested 0, archived 1000, "
        "refused 2; 1 chunk not archived, so the window is not announced"
    )
    assert _report(listed=None, chunks=0, chunks_archived=0).summary() == (
        "The window 2026-11-13 (UTC): the listing did not finish, so no chunk was transcoded or archived"
    )


@pytest.mark.parametrize(
    ("start", "end", "timezone", "days"),
    [
        pytest.param(
            "2026-11-13T00:00:00+00:00",
            "2026-11-14T00:00:00+00:00",
            "UTC",
            ("2026-11-13", "2026-11-13"),
            id="one-utc-day",
        ),
        pytest.param(
            "2026-10-24T22:00:00+00:00",
            "2026-10-25T23:00:00+00:00",
            "Europe/Berlin",
            ("2026-10-25", "2026-10-25"),
            id="a-25-hour-local-day",
        ),
        pytest.param(
            "2026-11-01T00:00:00+00:00",
            "2026-11-04T00:00:00+00:00",
            "UTC",
            ("2026-11-01", "2026-11-03"),
            id="several-days",
        ),
        pytest.param(None, None, "UTC", (None, None), id="no-window"),
    ],
)
def test_the_window_is_named_by_its_local_days(
    start: str | None, end: str | None, timezone: str, days: tuple[str | None, str | None]
) -> None:
    assert _local_days(start, end, timezone) == days
