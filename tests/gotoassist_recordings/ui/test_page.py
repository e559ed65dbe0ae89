"""The page as rendered from what the runs left: bars per announced day, the runs, and no markup
smuggled in through any value."""

from __future__ import annotations

import re
from typing import Any

import pendulum
import pytest
from markupsafe import escape

from gotoassist_recordings.ui.app import render_page
from gotoassist_recordings.ui.history import ArchivedWindow, RunOutcome

FIRST_DAY = pendulum.Date(2026, 11, 1)
LAST_DAY = pendulum.Date(2026, 11, 14)
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _window(first_day: str, last_day: str | None = None, **counts: Any) -> ArchivedWindow:
    extra = {"first_day": first_day, "last_day": last_day or first_day, **counts}
    return ArchivedWindow(
        pendulum.Date.fromisoformat(first_day),
        pendulum.Date.fromisoformat(last_day or first_day),
        extra,
        pendulum.datetime(2026, 11, 15, tz="UTC"),
        "run",
    )


def _run(run_id: str, state: str, report: dict[str, Any] | None, announced: bool = False) -> RunOutcome:
    start = pendulum.datetime(2026, 11, 14, 0, 0, 5, tz="UTC")
    return RunOutcome(
        run_id=run_id,
        run_type="scheduled",
        state=state,
        logical_date=pendulum.datetime(2026, 11, 14, tz="UTC"),
        data_interval_start=pendulum.datetime(2026, 11, 13, tz="UTC"),
        data_interval_end=pendulum.datetime(2026, 11, 14, tz="UTC"),
        start_date=start,
        end_date=start.add(minutes=3, seconds=7),
        report=report,
        announced=announced,
    )


def _bars(page: str) -> dict[str, str]:
    return dict(re.findall(r'<g class="day" data-day="([^"]+)" data-archived="([^"]*)"', page))


def test_each_announced_day_gets_a_bar_and_every_other_day_a_dash() -> None:
    # 2026-11-13 was announced twice: by its nightly run, and by a run of it again that found two
    # recordings left; the runs of a day overlap, so the day shows the run that archived the most.
    page = render_page(
        windows=[
            _window("2026-11-12", archived=700),
            _window("2026-11-13", archived=2),
            _window("2026-11-13", archived=1300, already_ready=260, transcode_requested=1040),
        ],
        runs=[],
        first_day=FIRST_DAY,
        last_day=LAST_DAY,
    )

    bars = _bars(page)
    assert len(bars) == 14
    assert bars["2026-11-12"] == "700"
    assert bars["2026-11-13"] == "1300"
    dashed = {day for day, archived in bars.items() if archived == ""}
    assert dashed == set(bars) - {"2026-11-12", "2026-11-13"}
    assert page.count('<rect class="bar"') == 2
    assert '<strong id="total-archived">2,000</strong>' in page
    assert (
        "2026-11-13: 1,300 recordings archived (1,040 sent for transcoding, 260 ready when listed); "
        "1 more run announced the day too" in page
    )
    assert 'id="no-runs"' in page


def test_windows_of_several_days_are_listed_apart_from_the_bars() -> None:
    page = render_page(
        windows=[_window("2026-11-02", "2026-11-04", archived=3000)],
        runs=[],
        first_day=FIRST_DAY,
        last_day=LAST_DAY,
    )

    assert _bars(page) == {}
    assert 'id="no-events"' in page
    assert "2026-11-02 to 2026-11-04: 3,000 recordings archived" in page


def test_without_any_data_the_page_says_so() -> None:
    page = render_page(windows=[], runs=[], first_day=FIRST_DAY, last_day=LAST_DAY)

    assert 'id="no-events"' in page
    assert 'id="no-runs"' in page
    assert "<svg" not in page


def test_runs_show_their_state_window_counts_and_duration() -> None:
    report = {
        "first_day": "2026-11-13",
        "last_day": "2026-11-13",
        "timezone": "Europe/Berlin",
        "listed": 40,
        "already_ready": 20,
        "transcode_requested": 20,
        "archived": 20,
        "refused": 0,
        "list_calls": 1,
        "chunks": 2,
        "chunks_archived": 1,
    }
    page = render_page(
        windows=[],
        runs=[_run("manual__1", "failed", report), _run("scheduled__2", "running", None)],
        first_day=FIRST_DAY,
        last_day=LAST_DAY,
    )

    failed = page[page.index('data-run-id="manual__1"') : page.index('data-run-id="scheduled__2"')]
    assert '<span class="state state-failed">failed</span>' in failed
    assert "2026-11-13 Europe/Berlin" in failed
    assert '<td class="number" data-count="listed">40</td>' in failed
    assert '<td class="number" data-count="archived">20</td>' in failed
    assert "1 of 2" in failed
    assert "3 min 07 s" in failed
    running = page[page.index('data-run-id="scheduled__2"') :]
    assert "2026-11-13 00:00 to 2026-11-14 00:00 UTC" in running
    assert '<td class="number" data-count="listed">\N{EN DASH}</td>' in running
    assert 'href="../dags/gotoassist_recordings/runs/manual__1" target="_top"' in page


@pytest.mark.parametrize("field", ["run_id", "state", "timezone", "first_day"])
def test_no_value_reaches_the_page_unescaped(field: str) -> None:
    report = {"first_day": "2026-11-13", "last_day": "2026-11-13", "timezone": "UTC", "listed": 1}
    run = {"run_id": "manual__1", "state": "success"}
    if field in run:
        run[field] = HOSTILE
    else:
        report[field] = HOSTILE

    page = render_page(
        windows=[],
        runs=[_run(run["run_id"], run["state"], report)],
        first_day=FIRST_DAY,
        last_day=LAST_DAY,
    )

    assert "<script>" not in page
    assert "<img" not in page
    assert str(escape(HOSTILE)) in page
