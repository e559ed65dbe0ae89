"""Deterministic demo data: one account, its technicians, their recordings and OAuth credentials.

The same seed always produces the same recordings. Start times cluster around a morning and an
afternoon peak of the working day, with a thin spread over the rest of it, and the edges a careful
client must get right are always present: a recording at the day's first second, one at the last
second of the previous day, one at the first second of the next day (which is not part of the day),
and, from three recordings on, two recordings of the day sharing a start time, so ordering ties are
exercised.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import pendulum

from gotoassist_api_server.clock import local_day_bounds, now_timestamp
from gotoassist_api_server.store import Recording, RecordingStore, open_store

#: The account every seeded recording belongs to.
ACCOUNT_KEY = "4100000000001"
#: The technicians who started the seeded recordings.
USER_KEYS = ("5100000000001", "5100000000002", "5100000000003")
#: The company of the unattended devices.
COMPANY_ID = "6100000000001"

DEFAULT_CLIENT_ID = "demo-client"
DEFAULT_CLIENT_SECRET = "demo-secret"
DEFAULT_REFRESH_TOKEN = "demo-refresh-token"
DEFAULT_PERSONAL_ACCESS_TOKEN = "demo-pat"

# How the technicians share the recordings, and how many of them are unattended.
_USER_WEIGHTS = (5, 3, 2)
_UNATTENDED_SHARE = 0.25
# Start-time shape: peaks at 10:30 and 15:00 local time; the rest spread over the whole day.
_PEAKS_HOURS = (10.5, 15.0)
_PEAK_SPREAD_HOURS = 1.5
_OFF_PEAK_SHARE = 0.2
# Seeded recordings that start out ready became ready this long after they started.
_SEEDED_TRANSCODE_SECONDS = 15 * 60

_FIRST_RECORDING_ID = 10**12
_RECORDING_ID_END = 10**13


@dataclass(frozen=True)
class SeedResult:
    """The recordings one seeding created, each list in start-time order."""

    day: str
    timezone: str
    day_recording_ids: list[str]
    previous_day_recording_ids: list[str]
    next_day_recording_ids: list[str]
    ready_recording_ids: list[str]


class _RecordingFactory:
    """Draws recordings from one random generator, never reusing a recording ID."""

    def __init__(self, rng: random.Random, taken_ids: set[str], now: float) -> None:
        self._rng = rng
        self._taken_ids = taken_ids
        self._now = now

    def _new_recording_id(self) -> str:
        while True:
            recording_id = str(self._rng.randrange(_FIRST_RECORDING_ID, _RECORDING_ID_END))
            if recording_id not in self._taken_ids:
                self._taken_ids.add(recording_id)
                return recording_id

    def start_offset(self, day_seconds: int) -> int:
        """Draw a start time, in seconds after a day's first instant, shaped like a working day.

        :param day_seconds: the length of the day.
        :return: the offset, within the day.
        """
        if self._rng.random() < _OFF_PEAK_SHARE:
            hours = self._rng.uniform(0, 24)
        else:
            hours = self._rng.gauss(self._rng.choice(_PEAKS_HOURS), _PEAK_SPREAD_HOURS)
        return min(max(int(hours * 3600), 0), day_seconds - 1)

    def day_starts(
        self, start: pendulum.DateTime, end: pendulum.DateTime, count: int
    ) -> list[pendulum.DateTime]:
        """Draw the start times of a day's recordings, with the first at the day's first instant.

        From three recordings on, the last shares its start time with another one.

        :param start: the day's first instant.
        :param end: the next day's first instant.
        :param count: how many start times to draw.
        :return: the start times, in drawing order.
        """
        day_seconds = int((end - start).total_seconds())
        starts = [start.add(seconds=self.start_offset(day_seconds)) for _ in range(count)]
        if count >= 1:
            starts[0] = start
        if count >= 3:
            starts[-1] = starts[self._rng.randrange(1, count - 1)]
        return starts

    def neighbour_starts(
        self, start: pendulum.DateTime, end: pendulum.DateTime, count: int, edge: pendulum.DateTime
    ) -> list[pendulum.DateTime]:
        """Draw the start times of a neighbouring day's recordings, the first at a given edge.

        :param start: the neighbouring day's first instant.
        :param end: the first instant after the neighbouring day.
        :param count: how many start times to draw; at least one.
        :param edge: the first start time, at the border with the seeded day.
        :return: the start times, in drawing order.
        """
        day_seconds = int((end - start).total_seconds())
        return [edge] + [start.add(seconds=self.start_offset(day_seconds)) for _ in range(count - 1)]

    def recording(self, start: pendulum.DateTime, ready: bool) -> Recording:
        """Create a recording that started at an instant.

        :param start: the start time; fractions of a second are dropped.
        :param ready: whether it is ready for download already.
        :return: the recording.
        """
        start_time = int(start.timestamp())
        unattended = self._rng.random() < _UNATTENDED_SHARE
        return Recording(
            recording_id=self._new_recording_id(),
            account_key=ACCOUNT_KEY,
            user_key=self._rng.choices(USER_KEYS, weights=_USER_WEIGHTS)[0],
            company_id=COMPANY_ID if unattended else None,
            session_type=1 if unattended else 0,
            start_time=start_time,
            ready_at=min(start_time + _SEEDED_TRANSCODE_SECONDS, self._now) if ready else None,
        )


def _in_start_order(recordings: list[Recording]) -> list[str]:
    return [r.recording_id for r in sorted(recordings, key=lambda r: (r.start_time, r.recording_id))]


def seed(
    db: RecordingStore | str | os.PathLike[str],
    day: str = "2026-11-13",
    count: int = 1234,
    neighbours: int = 5,
    ready_fraction: float = 0.0,
    timezone: str = "UTC",
    seed: int = 7,
    *,
    reset: bool = False,
    client_id: str = DEFAULT_CLIENT_ID,
    client_secret: str = DEFAULT_CLIENT_SECRET,
    refresh_token: str = DEFAULT_REFRESH_TOKEN,
    personal_access_token: str = DEFAULT_PERSONAL_ACCESS_TOKEN,
) -> SeedResult:
    """Fill a database with recordings of one local day, a few on each neighbouring day, and credentials.

    Seeding again adds recordings beside the existing ones, drawing fresh IDs, unless ``reset`` is set.
    The credentials are written each time; a rotated-away refresh token of the same value works again.

    :param db: an open store, or the path of a database file.
    :param day: the local calendar day, ``YYYY-MM-DD``.
    :param count: how many recordings start on the day; the first at its very first second.
    :param neighbours: how many recordings start on the previous day and on the next day each; the
        previous day's include one at its last second, the next day's one at its first.
    :param ready_fraction: the share of the day's recordings that are ready for download already.
    :param timezone: the IANA timezone the day is local to.
    :param seed: the random seed; the same seed gives the same recordings on an empty database.
    :param reset: delete all existing state first.
    :param client_id: the OAuth client ID to register.
    :param client_secret: the OAuth client secret to register.
    :param refresh_token: the refresh token to issue to the client.
    :param personal_access_token: the personal access token to register.
    :return: the IDs of the recordings created.
    :raises ValueError: if an argument is out of range, or the day or the timezone is not valid.
    """
    if count < 0 or neighbours < 0:
        raise ValueError(f"count and neighbours must not be negative, got {count} and {neighbours}")
    if not 0.0 <= ready_fraction <= 1.0:
        raise ValueError(f"ready_fraction must be between 0 and 1, got {ready_fraction}")
    day_start, day_end = local_day_bounds(day, timezone)
    previous_day_start = day_start.subtract(days=1)
    next_day_end = day_end.add(days=1)
    now = now_timestamp()

    with open_store(db) as store:
        if reset:
            store.reset()
        rng = random.Random(seed)
        factory = _RecordingFactory(rng, store.existing_recording_ids(), now)

        # The day itself, some of it ready for download already.
        ready_positions = set(rng.sample(range(count), round(count * ready_fraction)))
        day_recordings = [
            factory.recording(start, ready=position in ready_positions)
            for position, start in enumerate(factory.day_starts(day_start, day_end, count))
        ]

        # The neighbouring days, each with a recording right at the border.
        previous_day_recordings, next_day_recordings = [], []
        if neighbours:
            last_second = day_start.subtract(seconds=1)
            previous_starts = factory.neighbour_starts(previous_day_start, day_start, neighbours, last_second)
            next_starts = factory.neighbour_starts(day_end, next_day_end, neighbours, day_end)
            previous_day_recordings = [factory.recording(start, ready=False) for start in previous_starts]
            next_day_recordings = [factory.recording(start, ready=False) for start in next_starts]

        store.add_account(ACCOUNT_KEY, USER_KEYS, [COMPANY_ID])
        store.add_recordings(day_recordings + previous_day_recordings + next_day_recordings)
        store.save_client(client_id, client_secret)
        store.save_refresh_token(refresh_token, client_id, issued_at=now)
        store.save_personal_access_token(personal_access_token, created_at=now)

    return SeedResult(
        day=day,
        timezone=timezone,
        day_recording_ids=_in_start_order(day_recordings),
        previous_day_recording_ids=_in_start_order(previous_day_recordings),
        next_day_recording_ids=_in_start_order(next_day_recordings),
        ready_recording_ids=_in_start_order([r for r in day_recordings if r.ready_at is not None]),
    )
