"""Listing every recording of a time window, although the API returns at most 500 per list.

The list call has no paging: a list that comes back full may have been cut short, and
the only way to reach the rest is a narrower window. Recordings come back without their
start times, so the width of each window has to be guessed from what the windows before
it held. The windows are walked in time order, each one starting where the previous
complete one ended, so every recording is counted once.

Every call that comes back full is wasted, and so is every window that holds far fewer
than 500 recordings, so the guess is worth making well. Each of the two lists is sized
on its own, since each is capped on its own:

- a complete window gives the density of its stretch of time, and the last two give the
  trend, which is followed into the next window;
- a full list gives a lower bound: at least 500 recordings between its start and end,
  which leaves at least ``500 - k`` for the rest of it once ``k`` of them were listed;
- after a full list from a window sized to a trusted density the true count was probably
  not much above 500, so the next probe is shrunk in proportion; after a blind guess, or
  a second full list in a row, it is shrunk much faster, since the density may be many
  times higher (a burst of recordings).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from gotoassist_recordings.exceptions import GoToAssistError
from gotoassist_recordings.models import MAX_IDS_PER_CALL, RecordingList
from gotoassist_recordings.windows import TimeWindow

log = logging.getLogger(__name__)

#: Aim each window at this many recordings in its fuller list, leaving room for chance.
TARGET_PER_WINDOW = 425
#: After the whole window came back full with nothing else known, probe this share of it.
COLD_SHARE = 0.25
#: How much narrower each further blind probe is, after another full list with nothing known.
COLD_SHRINK = 4.0
#: After a full list from a probe sized to a steady density, aim this much below the bound it gives.
FULL_MARGIN = 0.8
#: How much narrower the next probe is after a full list nothing predicted, or a second one in a row.
SURPRISE_SHRINK = 2.5
#: How much faster each further full list in a row shrinks the probe.
SURPRISE_GROWTH = 2.0
#: Two windows with at least this many recordings in a list give a density worth trusting...
TRUSTED_COUNT = 200
#: ...if their densities differ by at most this factor, once chance is allowed for.
STEADY_CHANGE = 1.2
#: Both windows need this many recordings in a list for their trend to be followed.
TREND_COUNT = 30
#: How many standard deviations of a change in density are put down to chance.
TREND_NOISE = 2.0
#: At most how much the density may be expected to rise, or fall, over the next window.
MAX_TREND = 3.0
#: How much wider than the last complete window the next one may be.
MAX_GROWTH = 8.0
#: How many complete windows back the widest one is remembered.
MEMORY = 16
#: How many standard deviations above its count a window's density may plausibly be.
CHANCE = 2.0
#: A bound holding more than this many times the recordings the density predicts is unexplained.
UNEXPLAINED = 1.2
#: A probe is widened to the end of the window if that adds at most this share to it.
SNAP_SHARE = 0.1
#: A probe is widened by one second while its fuller list is expected to stay within this share of 500.
ROUND_UP_SHARE = 0.92

#: The two lists of an answer, by the names used for them here.
_LISTS = ("ready_for_transcode", "ready_for_download")


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
    planner = _WidthPlanner(window.seconds)
    offset = 0  # seconds after window.start that the next probe starts at

    while offset < window.seconds:
        # Step 1: probe the next window of the planned width.
        width = planner.next_width(offset)
        probe = TimeWindow(window.start.add(seconds=offset), window.start.add(seconds=offset + width))
        answer = fetch(probe)
        result.list_calls += 1
        counts = (len(answer.ready_for_transcode), len(answer.ready_for_download))

        if answer.is_full:
            # Step 2a: cut short; what it says about the density sizes the narrower retry.
            if width == 1:
                raise WindowTooDenseError(
                    f"At least {MAX_IDS_PER_CALL} recordings started within the second {probe}; "
                    "the list call cannot return them all. Narrow the filter (user key, session "
                    "type) so fewer recordings match, or archive some of them by other means."
                )
            planner.record_full(offset, width, counts)
            log.debug("List of %s came back full (%d, %d IDs); retrying narrower", probe, *counts)
            continue

        # Step 2b: complete; keep its recordings and move on to the next stretch of time.
        for recording_id in answer.ready_for_transcode:
            seen.setdefault(recording_id, False)
        for recording_id in answer.ready_for_download:
            seen[recording_id] = True
        result.windows += 1
        planner.record_complete(offset, width, counts)
        offset += width

    result.ready_for_download = [rid for rid, ready in seen.items() if ready]
    result.ready_for_transcode = [rid for rid, ready in seen.items() if not ready]
    return result


@dataclass(frozen=True)
class _Span:
    """A complete window: where it started and how long it was, in seconds, and what each list held."""

    start: int
    seconds: int
    counts: tuple[int, int]

    @property
    def middle(self) -> float:
        return self.start + self.seconds / 2


@dataclass(frozen=True)
class _Bound:
    """At least ``counts`` recordings in each list between the next probe's start and ``end``."""

    end: int
    counts: tuple[int, int]


class _WidthPlanner:
    """Chooses the width of each probe from the windows already listed and the lists that came back full.

    Works in whole seconds after the start of the window being listed.
    """

    def __init__(self, seconds: int) -> None:
        self._seconds = seconds
        self._recent: list[_Span] = []  # the last two complete windows
        self._widths: list[int] = []  # widths of the last few complete windows
        self._bounds: list[_Bound] = []
        self._full_widths: list[int] = []  # widths of the full probes at the current start
        self._steady = False  # whether the last probe was sized to a steady, well-counted density
        self._first_miss_steady = False  # whether the first full probe at this start was

    def record_full(self, start: int, seconds: int, counts: tuple[int, int]) -> None:
        # A full list holds at least 500; the other list of the answer is complete, so exact.
        self._bounds.append(_Bound(start + seconds, counts))
        if not self._full_widths:
            self._first_miss_steady = self._steady
        self._full_widths.append(seconds)

    def record_complete(self, start: int, seconds: int, counts: tuple[int, int]) -> None:
        end = start + seconds
        self._bounds = [
            _Bound(bound.end, (bound.counts[0] - counts[0], bound.counts[1] - counts[1]))
            for bound in self._bounds
            if bound.end > end
        ]
        self._recent = [*self._recent, _Span(start, seconds, counts)][-2:]
        self._widths = [*self._widths, seconds][-MEMORY:]
        self._full_widths = []

    def next_width(self, start: int) -> int:
        """Width of the next probe starting ``start`` seconds into the window; at least one second."""
        left = self._seconds - start
        plans: list[_Plan] = []
        if not self._recent:
            width, self._steady = self._blind_width(left), False
        else:
            plans = [self._plan_list(start, which) for which in range(len(_LISTS))]
            binding = min(plans, key=lambda plan: plan.width)
            width, self._steady = binding.width, binding.steady
            # Grow by a bounded factor, from the widest recent window: after a burst or a peak
            # the windows may return to the width they had before it at once.
            width = min(width, max(self._widths) * MAX_GROWTH)

        limit = left
        if self._full_widths:
            width = min(width, self._width_after_full())
            limit = self._full_widths[-1] - 1
        if width * (1 + SNAP_SHARE) >= limit:
            # Leave no sliver of the window for a call of its own.
            width = limit
        seconds = max(1, min(int(width), limit))
        # Whole seconds are coarse where recordings are dense: take one more if it fits.
        if seconds < limit and all(
            plan.count_within(seconds + 1) <= MAX_IDS_PER_CALL * ROUND_UP_SHARE for plan in plans
        ):
            seconds += 1
        return seconds

    def _blind_width(self, left: int) -> float:
        # Nothing listed yet: first the whole window, then a share of it, then ever narrower.
        if not self._full_widths:
            return left
        if len(self._full_widths) == 1:
            return self._full_widths[0] * COLD_SHARE
        return self._full_widths[-1] / COLD_SHRINK

    def _width_after_full(self) -> float:
        narrowest = self._full_widths[-1]
        if len(self._full_widths) == 1 and self._first_miss_steady:
            # The density was steady and well counted, so the count most likely overshot 500 by little.
            return narrowest * TARGET_PER_WINDOW / MAX_IDS_PER_CALL * FULL_MARGIN
        # A surprise, or a second miss: the density may be many times higher (a burst), and
        # each further miss in a row makes that likelier, so shrink faster each time.
        misses = len(self._full_widths) - (1 if self._first_miss_steady else 0)
        return narrowest / (SURPRISE_SHRINK * SURPRISE_GROWTH ** (misses - 1))

    def _plan_list(self, start: int, which: int) -> _Plan:
        """How wide the next probe can be for one list to hold about the target count."""
        last = self._recent[-1]
        count = last.counts[which]
        # One recording more keeps an empty window from meaning "none, ever".
        rate = (count + 1) / last.seconds
        growth = 0.0  # change of the log of the density, per second
        steady = False
        if len(self._recent) == 2 and min(self._recent[0].counts[which], count) >= TREND_COUNT:
            before = self._recent[0]
            change = math.log(count / last.seconds) - math.log(before.counts[which] / before.seconds)
            # Counts are noisy (about the square root of the count): follow only the part of the
            # change that chance does not explain, so noise does not swing the widths.
            noise = TREND_NOISE * math.sqrt(1 / count + 1 / before.counts[which])
            change = math.copysign(max(0.0, abs(change) - noise), change)
            growth = change / (last.middle - before.middle)
            steady = min(before.counts[which], count) >= TRUSTED_COUNT and abs(change) <= math.log(
                STEADY_CHANGE
            )
        # Density at this start, following the trend from the middle of the last window.
        rate_here = rate * math.exp(growth * (start - last.middle))

        # The lists that came back full say how many recordings at least lie just ahead.
        width_cap = math.inf
        for bound in self._bounds:
            ahead = bound.counts[which]
            span = bound.end - start
            if ahead <= 0 or span <= 0:
                continue
            expected = rate_here * span
            if ahead >= TARGET_PER_WINDOW / 2 and ahead > UNEXPLAINED * expected + 3 * math.sqrt(expected):
                # Far more than the density explains: they crowd somewhere in there, so halve it.
                width_cap = min(width_cap, span / 2)
            else:
                rate_here = max(rate_here, ahead / span)

        # A count may be lower than usual by chance: stay short enough for a density as high as
        # the count plausibly allows.
        plausible = (count + CHANCE * math.sqrt(count) + CHANCE**2) / (count + 1)
        width_cap = min(width_cap, MAX_IDS_PER_CALL * 0.95 / (rate_here * plausible))
        width = min(_width_holding(TARGET_PER_WINDOW, rate_here, growth), width_cap)
        return _Plan(width, rate_here, growth, steady)


@dataclass(frozen=True)
class _Plan:
    """The width planned for one list, and the density it was planned from."""

    width: float
    rate: float
    growth: float
    steady: bool

    def count_within(self, seconds: float) -> float:
        """How many recordings of the list the plan expects in a probe ``seconds`` wide."""
        change = self.growth * seconds
        if abs(change) < 1e-9:
            return self.rate * seconds
        return self.rate * math.expm1(min(change, math.log(MAX_TREND))) / self.growth


def _width_holding(target: float, rate: float, growth: float) -> float:
    """How long a window starting at density ``rate`` and changing by ``growth`` takes to hold ``target``.

    The change over the window is held within :data:`MAX_TREND` either way, a trend
    followed too far being a guess.
    """
    flat = target / rate
    if growth == 0.0:
        return flat
    # With density rate * exp(growth * t), the count up to w is rate / growth * (exp(growth * w) - 1).
    reach = 1 + target * growth / rate
    width = math.log(reach) / growth if reach > 0 else math.inf
    return min(max(width, flat / MAX_TREND), flat * MAX_TREND)
