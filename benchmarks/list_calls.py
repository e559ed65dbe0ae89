"""How many list calls it takes to list a whole day, against an in-memory list call.

The list call returns at most 500 IDs in each of its two lists, without start times, so
listing a day means splitting it into windows small enough that no list comes back full.
Every list call that comes back full is wasted, and so is every window sized far below
500. This benchmark counts the calls :func:`~gotoassist_recordings.listing.list_window`
makes for days of several sizes and shapes, next to the least any client could make
(``ceil(n / 500)``, and one call for an empty day) and the calls of plain halving (split
every window whose list comes back full in two), and checks that every recording was listed
exactly once.

Run it from the project root::

    .venv/bin/python -m benchmarks.list_calls
    .venv/bin/python benchmarks/list_calls.py --seeds 20
"""

from __future__ import annotations

import argparse
import bisect
import math
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass

import pendulum

from gotoassist_api_server.seeding import _RecordingFactory
from gotoassist_recordings.listing import list_window
from gotoassist_recordings.models import MAX_IDS_PER_CALL, RecordingList
from gotoassist_recordings.windows import TimeWindow

DAY = TimeWindow(pendulum.datetime(2026, 11, 13), pendulum.datetime(2026, 11, 14))
SIZES = (0, 1, 500, 501, 1234, 10_000, 100_000)

# A recording as the simulated server keeps it: start time (epoch seconds), ID, ready for download.
Recording = tuple[int, str, bool]


def uniform(count: int, rng: random.Random) -> list[Recording]:
    """Start times spread evenly over the day; nothing transcoded yet."""
    start = int(DAY.start.timestamp())
    return [(start + rng.randrange(DAY.seconds), "", False) for _ in range(count)]


def working_day(count: int, rng: random.Random) -> list[Recording]:
    """The local API server's seeded shape: peaks at 10:30 and 15:00, a fifth spread over the day.

    The same draws as the server's seeding: its generator of start offsets, the first recording
    at the day's first second and, from three on, the last sharing a start time with another.
    """
    factory = _RecordingFactory(rng, set(), now=0.0)
    offsets = [factory.start_offset(DAY.seconds) for _ in range(count)]
    if count >= 1:
        offsets[0] = 0
    if count >= 3:
        offsets[-1] = offsets[rng.randrange(1, count - 1)]
    start = int(DAY.start.timestamp())
    return [(start + offset, "", False) for offset in offsets]


def _with_bursts(
    recordings: list[Recording], rng: random.Random, bursts: int, share: float
) -> list[Recording]:
    # Move ``share`` of the recordings, chosen at random, into ``bursts`` bursts of two to six minutes.
    start = int(DAY.start.timestamp())
    spans = [(start + rng.randrange(DAY.seconds - 360), rng.randrange(120, 361)) for _ in range(bursts)]
    moved = []
    for moment, rid, ready in recordings:
        if rng.random() < share:
            burst_start, burst_seconds = rng.choice(spans)
            moment = burst_start + rng.randrange(burst_seconds)
        moved.append((moment, rid, ready))
    return moved


def bursty(count: int, rng: random.Random) -> list[Recording]:
    """The working-day shape, with a tenth of the day's recordings in each of two bursts of minutes.

    Like a script that opens unattended sessions on a fleet of machines, twice a day.
    """
    return _with_bursts(working_day(count, rng), rng, bursts=2, share=0.2)


def burst_storm(count: int, rng: random.Random) -> list[Recording]:
    """A stress case beyond the target: three-fifths of the day in three bursts of minutes, the rest even.

    Each burst holds a fifth of the day; at 100,000 recordings that is 100 or more a second, where
    whole-second windows cannot be filled well (3 s hold 400, 4 s already overflow).
    """
    return _with_bursts(uniform(count, rng), rng, bursts=3, share=0.6)


def mixed(count: int, rng: random.Random) -> list[Recording]:
    """The working-day shape with both lists in use: most of the morning is ready for download.

    Each list is capped on its own, and which one fills first changes over the day.
    """
    noon = int(DAY.start.add(hours=12).timestamp())
    return [
        (moment, "", rng.random() < (0.7 if moment < noon else 0.25))
        for moment, _, _ in working_day(count, rng)
    ]


DISTRIBUTIONS: dict[str, Callable[[int, random.Random], list[Recording]]] = {
    "uniform": uniform,
    "working-day": working_day,
    "bursty": bursty,
    "mixed": mixed,
    "burst-storm": burst_storm,
}
#: Distributions shown for what they cost, not held to the target.
STRESS = frozenset({"burst-storm"})


class SimulatedListCall:
    """Answers like the list call: start-time order, half-open windows, at most 500 IDs per list."""

    def __init__(self, recordings: list[Recording]) -> None:
        # Give every recording a distinct ID, then keep each list sorted by start time.
        numbered = [(moment, f"{10**12 + n}", ready) for n, (moment, _, ready) in enumerate(recordings)]
        self.recordings = sorted(numbered)
        self._lists = {
            ready: (
                [moment for moment, _, r in self.recordings if r == ready],
                [rid for _, rid, r in self.recordings if r == ready],
            )
            for ready in (False, True)
        }
        self.calls = 0

    def _ids(self, ready: bool, start: int, end: int) -> list[str]:
        moments, ids = self._lists[ready]
        first = bisect.bisect_left(moments, start)
        last = min(bisect.bisect_left(moments, end), first + MAX_IDS_PER_CALL)
        return ids[first:last]

    def __call__(self, window: TimeWindow) -> RecordingList:
        self.calls += 1
        start, end = int(window.start.timestamp()), int(window.end.timestamp())
        return RecordingList.model_validate(
            {
                "readyForTranscode": self._ids(False, start, end),
                "readyForDownload": self._ids(True, start, end),
            }
        )


def halving_calls(fetch: SimulatedListCall, window: TimeWindow) -> int:
    """List calls of the plain way, for comparison: halve every window whose list came back full."""
    calls = 0
    pending = [window]
    while pending:
        current = pending.pop()
        calls += 1
        # A full list of one second cannot be split further; the planner refuses such a window.
        if fetch(current).is_full and current.seconds > 1:
            earlier, later = current.split_at(current.start.add(seconds=current.seconds // 2))
            # Earlier half on top, so windows are listed in time order.
            pending.extend([later, earlier])
    return calls


@dataclass(frozen=True)
class Run:
    distribution: str
    count: int
    list_calls: int
    windows: int
    halving_calls: int

    @property
    def minimum(self) -> int:
        return max(1, math.ceil(self.count / MAX_IDS_PER_CALL))

    @property
    def ratio(self) -> float:
        return self.list_calls / self.minimum

    @property
    def halving_ratio(self) -> float:
        return self.halving_calls / self.minimum

    @property
    def within_target(self) -> bool:
        return self.list_calls <= 1.3 * self.minimum + 4


def measure(distribution: str, count: int, seed: int) -> Run:
    """List one simulated day and check that every recording came back exactly once."""
    fetch = SimulatedListCall(DISTRIBUTIONS[distribution](count, random.Random(seed)))
    listed = list_window(fetch, DAY)

    expected_download = sorted(rid for _, rid, ready in fetch.recordings if ready)
    expected_transcode = sorted(rid for _, rid, ready in fetch.recordings if not ready)
    if (
        sorted(listed.ready_for_download) != expected_download
        or sorted(listed.ready_for_transcode) != expected_transcode
    ):
        raise AssertionError(f"{distribution}, n={count}, seed {seed}: recordings missing or listed twice")
    if listed.list_calls != fetch.calls:
        raise AssertionError(
            f"{distribution}, n={count}: {fetch.calls} calls made, {listed.list_calls} counted"
        )
    return Run(distribution, count, listed.list_calls, listed.windows, halving_calls(fetch, DAY))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7, help="random seed of the table's days")
    parser.add_argument(
        "--seeds", type=int, default=20, help="also list this many other days of each kind; 0 to skip"
    )
    args = parser.parse_args(argv)

    header = (
        f"{'distribution':<12} {'n':>7} {'list calls':>10} {'minimum':>7} {'ratio':>6} {'windows':>7}"
        f" {'halving':>7} {'ratio':>6}"
    )
    if args.seeds:
        header += f"  {'worst of ' + str(args.seeds) + ' days':>16} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    misses = 0
    for distribution in DISTRIBUTIONS:
        for count in SIZES:
            run = measure(distribution, count, args.seed)
            line = (
                f"{distribution:<12} {count:>7} {run.list_calls:>10} {run.minimum:>7} "
                f"{run.ratio:>6.2f} {run.windows:>7} "
                f"{run.halving_calls:>7} {run.halving_ratio:>6.2f}"
            )
            held = distribution not in STRESS
            misses += held and not run.within_target
            if args.seeds:
                others = [measure(distribution, count, 1000 + seed) for seed in range(args.seeds)]
                worst = max(others, key=lambda other: other.list_calls)
                line += f"  {worst.list_calls:>16} {worst.ratio:>6.2f}"
                misses += held * sum(not other.within_target for other in others)
            print(line)
    print()
    print(
        "target: at most 1.3 x minimum + 4 list calls;",
        "all within" if not misses else f"{misses} days over",
        f"(not counting {', '.join(sorted(STRESS))}, a stress case)",
    )
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
