"""The request budget holds every process that shares it to one rate, seen at the server over HTTP."""

from __future__ import annotations

import bisect
import contextlib
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from gotoassist_recordings.exceptions import GoToAssistConfigError
from gotoassist_recordings.rate_limit import RequestBudget

PER_SECOND = 8
PROCESSES = 3
CALLS_EACH = 12

#: Each process obtains its token first (the token endpoint is not the API), then, from one shared
#: moment on, makes its list calls as fast as its budget lets it.
CALLER = textwrap.dedent(
    """
    import sys, time
    import pendulum
    from gotoassist_recordings.hooks.gotoassist import GoToAssistHook
    from gotoassist_recordings.windows import TimeWindow

    conn_id, start_at, calls = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    hook = GoToAssistHook(conn_id)
    hook.tokens.get()
    window = TimeWindow(pendulum.datetime(2026, 11, 13, 9), pendulum.datetime(2026, 11, 13, 9, 1))
    time.sleep(max(0.0, start_at - time.time()))
    for _ in range(calls):
        hook.list_recordings(window)
    """
)


def _busiest_second(arrivals: list[float]) -> int:
    """The most calls that arrived within any one second."""
    arrivals = sorted(arrivals)
    return max(bisect.bisect_left(arrivals, t + 1.0) - i for i, t in enumerate(arrivals))


def _list_arrivals(api, since: int) -> list[float]:
    api.calls(since, endpoints="list", at_least=PROCESSES * CALLS_EACH)
    with contextlib.closing(sqlite3.connect(api.db_path, timeout=30)) as connection:
        rows = connection.execute(
            "SELECT called_at FROM calls WHERE call_id > ? AND endpoint = 'list'", (since,)
        ).fetchall()
    return [called_at for (called_at,) in rows]


def _run_callers(conn_id: str) -> None:
    # Starting Python and importing Airflow takes seconds; the calls start together after that.
    start_at = time.time() + 8
    callers = [
        subprocess.Popen([sys.executable, "-c", CALLER, conn_id, str(start_at), str(CALLS_EACH)])
        for _ in range(PROCESSES)
    ]
    for caller in callers:
        assert caller.wait(timeout=120) == 0


def test_processes_sharing_a_budget_stay_within_it_together(api, make_connection, tmp_path):
    store = f"sqlite:///{tmp_path / 'budget.sqlite'}"
    conn_id = make_connection(api.base_url, max_requests_per_second=PER_SECOND, rate_limit_store=store)
    before = api.last_call_id()

    _run_callers(conn_id)

    arrivals = _list_arrivals(api, before)
    assert len(arrivals) == PROCESSES * CALLS_EACH
    assert _busiest_second(arrivals) <= PER_SECOND


def test_budgets_kept_per_process_add_up_beyond_the_rate(api, make_connection):
    # Why the budget is shared by default: three processes with one each call three times as fast.
    conn_id = make_connection(api.base_url, max_requests_per_second=PER_SECOND, rate_limit_store="memory")
    before = api.last_call_id()

    _run_callers(conn_id)

    assert _busiest_second(_list_arrivals(api, before)) > PER_SECOND


@pytest.mark.parametrize(
    ("store", "message"),
    [
        pytest.param("sqlite:///budget.sqlite", "must name an absolute path", id="relative-sqlite-path"),
        pytest.param(
            "postgres://db/budget", "must be 'memory', 'sqlite:///<path>' or 'redis://...'", id="unknown"
        ),
    ],
)
def test_a_store_it_cannot_use_is_refused_naming_it(store, message):
    with pytest.raises(GoToAssistConfigError, match=message):
        RequestBudget(10, store, "key")


def test_a_rate_below_one_is_refused():
    with pytest.raises(GoToAssistConfigError, match="max_requests_per_second must be at least 1, got 0"):
        RequestBudget(0, "memory", "key")
