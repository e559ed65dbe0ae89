"""Listing every recording of a time window, although the API returns at most 500 per list.

The list call has no paging: a list that comes back full may have been cut short, and
the only way to reach the rest is a narrower window. Recordings come back without their
start times, so the width of each window is chosen from the density of recordings seen
in the windows before it. The windows are walked in time order, each one starting where
the previous complete one ended, so every recording is counted once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from gotoassist_recordings.exceptions import GoToAssistError
from gotoassist_recordings.models import MAX_IDS_PER_CALL, RecordingList
from gotoassist_recordings.windows import TimeWindow

log = logging.getLogger(__name__)

#: Aim each window at this many recordings, leaving room for the density to rise.
TARGET_PER_WINDOW = int(MAX_IDS_PER_CALL * 0.9)
#: How much narrower the next probe is after a full list when no density is known yet.
BLIND_SHRINK = 8
#: How much narrower the next probe is after a full list from a probe sized to a known density.
FULL_SHRINK = 0.75
#: A window with at least this many recordings gives a density worth trusting.
TRUSTED_COUNT = 100
#: How many recent complete windows the density is averaged over.
DENSITY_WINDOWS = 2
#: How much wider than the last window the next one may be when the density is not trusted.
MAX_GROWTH = 4


class WindowTooDenseError(GoToAssistError):
    """A one-second window still holds a full list: the API cannot list it completely."""


@dataclass
class ListedRecordings:
    """Every recording of a window, by what it is ready for, and what listing them cost."""

    ready_for_transcode: list[str] = field(default_factory=list)
    ready_for_download: list[str] = field(default_factory=list)
    list_calls: int = 0
    windows: int = 0

    @property
    def total(self) -> int:
        return len(self.ready_for_transcode) + len(self.ready_for_download)


def list_window(fetch: Callable[[TimeWindow], RecordingList], window: TimeWindow) -> ListedRecordings:
    """List every recording that started in ``window``, narrowing windows where lists come back full.

    :param fetch: makes one list call for a window.
    :param window: the window to cover completely.
    :raises WindowTooDenseError: if 500 or more recordings started within one second.
    """
    result = ListedRecordings()
    # A recording seen twice (a server whose toTime is inclusive, or one that changed list
    # between calls) is kept once; ready for download wins, since that is its newer state.
    seen: dict[str, bool] = {}
    start = window.start
    width = window.seconds
    recent: list[tuple[int, int]] = []  # (recordings, seconds) of the last complete windows
    sized_from_density = False

    while start < window.end:
        # Step 1: probe the next window of the chosen width.
        probe = TimeWindow(start, min(start.add(seconds=width), window.end))
        answer = fetch(probe)
        result.list_calls += 1

        if answer.is_full:
            # Step 2a: cut short, so retry narrower. A probe sized from a trustworthy density
            # overshot by little; otherwise nothing is known but that it held 500 or more.
            if probe.seconds == 1:
                raise WindowTooDenseError(
                    f"At least {MAX_IDS_PER_CALL} recordings started within the second {probe}; "
                    "the list call cannot return them all. Narrow the filter (user key, session "
                    "type) so fewer recordings match, or archive some of them by other means."
                )
            if result.windows == 0:
                width = probe.seconds // BLIND_SHRINK
            elif sized_from_density:
                width = int(probe.seconds * FULL_SHRINK)
            else:
                width = probe.seconds // 2
            width = max(1, min(width, probe.seconds - 1))
            log.debug("List of %s came back full; retrying %d s wide", probe, width)
            continue

        # Step 2b: complete; keep its recordings and size the next window to the density seen.
        for recording_id in answer.ready_for_transcode:
            seen.setdefault(recording_id, False)
        for recording_id in answer.ready_for_download:
            seen[recording_id] = True
        result.windows += 1
        start = probe.end
        count = max(len(answer.ready_for_transcode), len(answer.ready_for_download))
        recent = [*recent, (count, probe.seconds)][-DENSITY_WINDOWS:]
        width, sized_from_density = _next_width(count, probe.seconds, recent, window.seconds)

    result.ready_for_download = [rid for rid, ready in seen.items() if ready]
    result.ready_for_transcode = [rid for rid, ready in seen.items() if not ready]
    return result


def _next_width(count: int, seconds: int, recent: list[tuple[int, int]], limit: int) -> tuple[int, bool]:
    """Width of the next probe after a complete window, and whether a density backs it.

    Few recordings make a poor estimate, so after a sparse window the width grows at most
    :data:`MAX_GROWTH` times. A dense window is sized from the recent windows' density, or
    from its own where that is higher, so a rising density is not underestimated.
    """
    if count == 0:
        return min(limit, seconds * MAX_GROWTH), False
    density = count / seconds
    if count < TRUSTED_COUNT:
        return max(1, min(int(TARGET_PER_WINDOW / density), seconds * MAX_GROWTH)), False
    recent_density = sum(c for c, _ in recent) / sum(s for _, s in recent)
    return max(1, int(TARGET_PER_WINDOW / max(density, recent_density))), True
