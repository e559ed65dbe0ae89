"""Print every benchmark's table, one after the other: ``make benchmark`` or ``python -m benchmarks``.

- ``api_calls``: API calls per day against the least possible, n = 0 ... 100,000;
- ``list_calls``: list calls of the window planner on simulated days of several shapes;
- ``list_footprint``: peak memory of the list step and XCom per mapped task at 100,000 recordings;
- ``parse_time``: DAG parse time over a bare ``airflow.sdk`` import.

Each can also run alone, e.g. ``python -m benchmarks.api_calls --help``.
"""

from __future__ import annotations

import sys

from benchmarks import api_calls, list_calls, list_footprint, parse_time

SECTIONS = (
    ("API efficiency", lambda: api_calls.main([])),
    ("Listing a day: the window planner", lambda: list_calls.main(["--seeds", "0"])),
    ("Memory and XCom", lambda: list_footprint.main([])),
    ("DAG parse time", lambda: parse_time.main([])),
)


def main() -> int:
    for title, run in SECTIONS:
        print(f"\n## {title}\n", flush=True)
        run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
