"""Statistics over the server's state: what became of the recordings and which calls arrived.

The figures let a demo summarise a run and let tests prove what a client did and did not do, above all
that it never archived a recording before that recording was ready for download, and never touched
recordings outside the day it was asked to process, and that it did so through the faults the server
injected on purpose.
"""

from __future__ import annotations

import os
from typing import Any

from gotoassist_api_server.clock import (
    checked_timezone,
    format_api_time,
    local_day_bounds,
    local_day_of,
    now_timestamp,
)
from gotoassist_api_server.store import RecordingStore, open_store

# Recordings are counted per quarter hour in SQL and the quarters mapped to local days in Python.
# Every UTC offset in use today is a whole number of quarter hours, so no quarter straddles two
# local days.
_QUARTER_HOUR = 15 * 60


def _recordings_by_day(store: RecordingStore, timezone: str, now: float) -> list[dict[str, Any]]:
    counts: dict[tuple[str, str, bool], int] = {}
    for row in store.state_counts_by_period(now, _QUARTER_HOUR):
        key = (local_day_of(row["period_start"], timezone), row["state"], bool(row["archived"]))
        counts[key] = counts.get(key, 0) + row["count"]
    return [
        {"day": day, "state": state, "archived": archived, "count": count}
        for (day, state, archived), count in sorted(counts.items())
    ]


def _day_summary(store: RecordingStore, day: str, timezone: str, now: float) -> dict[str, Any]:
    start, end = local_day_bounds(day, timezone)
    summary = store.window_summary(start.timestamp(), end.timestamp(), now)
    return {
        "day": day,
        "total": summary["total"],
        "listed": summary["listed"],
        "transcoded": summary["transcoded"],
        "ready": summary["ready"],
        "archived": summary["archived"],
        "unarchived": summary["total"] - summary["archived"],
        "archived_before_ready": summary["archived_before_ready"],
        "touched_on_other_days": summary["touched_outside"],
    }


def _calls(store: RecordingStore) -> dict[str, dict[str, Any]]:
    calls: dict[str, dict[str, Any]] = {}
    for count in store.call_counts():
        endpoint = calls.setdefault(count.endpoint, {"calls": 0, "recording_ids": 0, "by_status": {}})
        endpoint["calls"] += count.calls
        endpoint["recording_ids"] += count.recording_ids
        endpoint["by_status"][str(count.status)] = {
            "calls": count.calls,
            "recording_ids": count.recording_ids,
        }
    return calls


def _faults(store: RecordingStore) -> dict[str, Any]:
    by_endpoint: dict[str, dict[str, int]] = {}
    for count in store.fault_counts():
        by_endpoint.setdefault(count.endpoint, {})[count.fault] = count.calls
    return {
        "injected": sum(sum(by_fault.values()) for by_fault in by_endpoint.values()),
        "by_endpoint": by_endpoint,
    }


def compute_stats(
    store: RecordingStore, day: str | None = None, timezone: str = "UTC", now: float | None = None
) -> dict[str, Any]:
    """Compute the statistics of a store.

    :param store: the server state.
    :param day: a local day, ``YYYY-MM-DD``, to summarise in detail; ``None`` for none.
    :param timezone: the IANA timezone that days are local to.
    :param now: the instant states are judged at; the current instant when ``None``.
    :return: a JSON-ready mapping with ``recordings_by_day`` (counts by local day, state and
        archived flag), ``day`` (the summary of ``day``, or ``None``), ``calls`` (counts and
        recording IDs named, per endpoint and split by HTTP status, status 0 meaning the connection
        was dropped unanswered) and ``faults`` (``injected``, the number of calls a fault was
        injected into, and ``by_endpoint``, those calls counted per endpoint and fault).
    :raises ValueError: if the day or the timezone is not valid.
    """
    moment = now_timestamp() if now is None else now
    checked_timezone(timezone)
    return {
        "timezone": timezone,
        "computed_at": format_api_time(moment),
        "recordings_by_day": _recordings_by_day(store, timezone, moment),
        "day": None if day is None else _day_summary(store, day, timezone, moment),
        "calls": _calls(store),
        "faults": _faults(store),
    }


def stats(
    db: RecordingStore | str | os.PathLike[str], day: str | None = None, timezone: str = "UTC"
) -> dict[str, Any]:
    """Compute the statistics of a database, as the ``stats`` command and ``/_admin/stats`` report them.

    :param db: an open store, or the path of a database file.
    :param day: a local day, ``YYYY-MM-DD``, to summarise in detail; ``None`` for none.
    :param timezone: the IANA timezone that days are local to.
    :return: see :func:`compute_stats`.
    :raises ValueError: if the day or the timezone is not valid.
    """
    with open_store(db) as store:
        return compute_stats(store, day=day, timezone=timezone)
