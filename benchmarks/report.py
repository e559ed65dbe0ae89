"""How the benchmarks print their figures."""

from __future__ import annotations

from collections.abc import Sequence


def print_figures(title: str, rows: Sequence[tuple[str, str]]) -> None:
    """Print a title, then one figure a line, names aligned: ``  name    value``."""
    width = max(len(name) for name, _ in rows)
    print(title)
    for name, value in rows:
        print(f"  {name.ljust(width)}  {value}")
