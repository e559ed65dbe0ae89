"""Time helpers shared by the server, the seeding and the statistics.

Instants are stored in SQLite as POSIX timestamps (seconds, UTC), which keeps comparisons cheap and
exact; the helpers here convert between those numbers, ``pendulum`` date-times and the ISO 8601 text
the API speaks.
"""

from __future__ import annotations

import pendulum

#: How the API renders instants: UTC, whole seconds, ``Z`` suffix.
API_TIME_FORMAT = "YYYY-MM-DD[T]HH:mm:ss[Z]"


def now_timestamp() -> float:
    """Return the current instant as a POSIX timestamp.

    :return: seconds since the epoch, with sub-second precision.
    """
    return pendulum.now("UTC").timestamp()


def to_datetime(timestamp: float) -> pendulum.DateTime:
    """Convert a POSIX timestamp into a UTC date-time.

    :param timestamp: seconds since the epoch.
    :return: the matching UTC date-time.
    """
    return pendulum.from_timestamp(timestamp, tz="UTC")


def format_api_time(timestamp: float) -> str:
    """Render an instant the way the API does, e.g. ``2026-03-13T10:00:00Z``.

    :param timestamp: seconds since the epoch; any fraction is dropped.
    :return: the ISO 8601 text.
    """
    return to_datetime(int(timestamp)).format(API_TIME_FORMAT)


def format_optional_time(timestamp: float | None) -> str | None:
    """Render an optional instant in ISO 8601 UTC with a ``Z`` suffix, sub-second precision kept.

    :param timestamp: seconds since the epoch, or ``None``.
    :return: the ISO 8601 text, or ``None``.
    """
    if timestamp is None:
        return None
    return to_datetime(timestamp).isoformat().removesuffix("+00:00") + "Z"


def checked_timezone(timezone: str) -> pendulum.Timezone | pendulum.FixedTimezone:
    """Look a timezone up by name.

    :param timezone: an IANA timezone name such as ``Europe/Berlin``.
    :return: the timezone.
    :raises ValueError: if no timezone has that name.
    """
    try:
        return pendulum.timezone(timezone)
    except ValueError as error:
        raise ValueError(f"unknown timezone {timezone!r}") from error


def local_day_bounds(day: str, timezone: str) -> tuple[pendulum.DateTime, pendulum.DateTime]:
    """Return the first instant of a local calendar day and the first instant of the next one.

    The day is 23 or 25 hours long when the timezone changes its offset on that day.

    :param day: the calendar day, ``YYYY-MM-DD``.
    :param timezone: an IANA timezone name such as ``Europe/Berlin``.
    :return: the half-open interval ``[start, end)`` of the day.
    :raises ValueError: if the day or the timezone is not valid.
    """
    zone = checked_timezone(timezone)
    try:
        date = pendulum.Date.fromisoformat(day)
    except ValueError as error:
        raise ValueError(f"day must be YYYY-MM-DD, got {day!r}") from error
    start = pendulum.datetime(date.year, date.month, date.day, tz=zone)
    return start, start.add(days=1)


def local_day_of(timestamp: float, timezone: str) -> str:
    """Return the local calendar day an instant falls on.

    :param timestamp: seconds since the epoch.
    :param timezone: an IANA timezone name.
    :return: the day as ``YYYY-MM-DD``.
    """
    return to_datetime(timestamp).in_timezone(timezone).to_date_string()
