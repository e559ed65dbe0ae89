"""Query parameters of the list call, checked and turned into a :class:`RecordingQuery`.

Every malformed parameter earns a 400 naming it and its value; a well-formed key that names no known
account, user or company earns a 403, as the real API documents.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pendulum

from gotoassist_api_server.clock import to_datetime
from gotoassist_api_server.errors import ApiError, bad_request
from gotoassist_api_server.store import DirectoryKind, RecordingQuery, RecordingStore

# ISO 8601 with whole seconds and either Z or an explicit offset, e.g. 2026-03-13T10:00:00Z.
_API_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:Z|[+-]\d{2}:\d{2})")
# An offset whose "+" arrived unencoded and was decoded as a space.
_UNENCODED_PLUS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2} \d{2}:\d{2}")
_DIGITS = re.compile(r"[0-9]+")

# timePeriod values beyond this many days reach before any recording could exist; they are capped
# so the arithmetic stays inside the calendar pendulum supports.
_MAX_TIME_PERIOD_DAYS = 100_000


def _digits(parameters: Mapping[str, str], name: str) -> str | None:
    value = parameters.get(name)
    if value is None:
        return None
    if not _DIGITS.fullmatch(value):
        raise bad_request(
            f"{name} must be a number made of digits, got {value!r}", parameter=name, value=value
        )
    return value


def _flag(parameters: Mapping[str, str], name: str) -> int | None:
    value = parameters.get(name)
    if value is None:
        return None
    if value not in ("0", "1"):
        raise bad_request(f"{name} must be 0 or 1, got {value!r}", parameter=name, value=value)
    return int(value)


def _instant(parameters: Mapping[str, str], name: str) -> pendulum.DateTime | None:
    value = parameters.get(name)
    if value is None:
        return None
    if _UNENCODED_PLUS.fullmatch(value):
        raise bad_request(
            f"{name} {value!r} has a space where its UTC offset sign should be; "
            "a '+' in a query string must be URL-encoded as %2B",
            parameter=name,
            value=value,
        )
    if not _API_TIME.fullmatch(value):
        raise bad_request(
            f"{name} must be ISO 8601 in whole seconds with a zone, e.g. 2026-03-13T10:00:00Z; got {value!r}",
            parameter=name,
            value=value,
        )
    try:
        parsed = pendulum.parse(value, strict=True)
    except ValueError as error:
        raise bad_request(
            f"{name} is not a valid date and time: {value!r}", parameter=name, value=value
        ) from error
    assert isinstance(parsed, pendulum.DateTime)
    return parsed


def _time_period_days(parameters: Mapping[str, str]) -> int | None:
    value = parameters.get("timePeriod")
    if value is None:
        return None
    if not _DIGITS.fullmatch(value) or int(value) == 0:
        raise bad_request(
            f"timePeriod must be a positive whole number of days, got {value!r}",
            parameter="timePeriod",
            value=value,
        )
    return min(int(value), _MAX_TIME_PERIOD_DAYS)


def build_recording_query(
    parameters: Mapping[str, str], store: RecordingStore, now: float, to_time_inclusive: bool
) -> RecordingQuery:
    """Check the list call's query parameters and combine them into one query.

    All filters combine with AND. ``fromTime`` is inclusive; ``toTime`` is exclusive unless
    ``to_time_inclusive`` is set. ``timePeriod=N`` keeps recordings started in the last N days up to
    now.

    :param parameters: the query parameters.
    :param store: the server state, to check that the named keys exist.
    :param now: the current instant.
    :param to_time_inclusive: whether a recording started exactly at ``toTime`` matches.
    :return: the query.
    :raises ApiError: 400 for a missing or malformed parameter, 403 for an unknown key.
    """
    keys = {kind: _digits(parameters, kind.value) for kind in DirectoryKind}
    if all(key is None for key in keys.values()):
        raise bad_request("at least one of accountKey, userKey or companyId is required")
    session_type = _flag(parameters, "sessionType")
    archived = _flag(parameters, "archived")
    from_time = _instant(parameters, "fromTime")
    to_time = _instant(parameters, "toTime")
    if from_time is not None and to_time is not None and from_time > to_time:
        raise bad_request(
            f"fromTime {parameters['fromTime']!r} is after toTime {parameters['toTime']!r}",
            parameter="fromTime",
            value=parameters["fromTime"],
        )
    time_period_days = _time_period_days(parameters)

    for kind, key in keys.items():
        if key is not None and not store.is_known_key(kind, key):
            raise ApiError(403, f"invalid {kind.value}: {key} is not known", parameter=kind.value, value=key)

    # Collect every bound the parameters set; the tightest of each kind wins.
    lower_bounds: list[float] = []
    inclusive_upper_bounds: list[float] = []
    exclusive_upper_bounds: list[float] = []
    if from_time is not None:
        lower_bounds.append(from_time.timestamp())
    if to_time is not None:
        upper_bounds = inclusive_upper_bounds if to_time_inclusive else exclusive_upper_bounds
        upper_bounds.append(to_time.timestamp())
    if time_period_days is not None:
        lower_bounds.append(to_datetime(now).subtract(days=time_period_days).timestamp())
        inclusive_upper_bounds.append(now)

    return RecordingQuery(
        account_key=keys[DirectoryKind.ACCOUNT],
        user_key=keys[DirectoryKind.USER],
        company_id=keys[DirectoryKind.COMPANY],
        session_type=session_type,
        archived=archived == 1,
        start_at_or_after=max(lower_bounds) if lower_bounds else None,
        start_before=min(exclusive_upper_bounds) if exclusive_upper_bounds else None,
        start_at_or_before=min(inclusive_upper_bounds) if inclusive_upper_bounds else None,
    )
