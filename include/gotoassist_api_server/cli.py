"""Command line of the local GoToAssist API server: ``serve``, ``seed`` and ``stats``.

Examples::

    gotoassist-api-server seed --db demo.sqlite --day 2026-11-13 --count 1234 --reset
    gotoassist-api-server serve --db demo.sqlite --port 0 --port-file demo.port --transcode-delay 2
    gotoassist-api-server serve --db demo.sqlite --fault list,urls:unavailable:0.2 \
        --fault transcode,archive:drop-after:0.1 --fail-next token:server-error:2 --rate-limit 10
    gotoassist-api-server stats --db demo.sqlite --day 2026-11-13
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

import pydantic

from gotoassist_api_server.faults import Endpoint, FaultKind, FaultPlan
from gotoassist_api_server.seeding import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_PERSONAL_ACCESS_TOKEN,
    DEFAULT_REFRESH_TOKEN,
    seed,
)
from gotoassist_api_server.settings import AuthScheme, IdTransport, ServerSettings
from gotoassist_api_server.stats import stats

_DEFAULTS = ServerSettings()
_FAULT_DEFAULTS = FaultPlan()


def _endpoints(text: str) -> list[Endpoint]:
    names = text.split(",")
    known = [endpoint.value for endpoint in Endpoint]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown endpoint {unknown[0]!r}; choose from {', '.join(known)}")
    return [Endpoint(name) for name in names]


def _fault_kind(text: str) -> FaultKind:
    try:
        return FaultKind(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"unknown fault {text!r}; choose from {', '.join(kind.value for kind in FaultKind)}"
        ) from error


def _fault_probability(text: str) -> tuple[list[Endpoint], FaultKind, float]:
    """Parse ``ENDPOINTS:FAULT:PROBABILITY``, e.g. ``list,urls:unavailable:0.2``."""
    parts = text.split(":")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"expected ENDPOINTS:FAULT:PROBABILITY, got {text!r}")
    try:
        probability = float(parts[2])
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"the probability must be a number, got {parts[2]!r}") from error
    return _endpoints(parts[0]), _fault_kind(parts[1]), probability


def _queued_fault(text: str) -> tuple[list[Endpoint], FaultKind, int]:
    """Parse ``ENDPOINTS:FAULT[:TIMES]``, e.g. ``transcode:drop-after:2``."""
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise argparse.ArgumentTypeError(f"expected ENDPOINTS:FAULT[:TIMES], got {text!r}")
    times = parts[2] if len(parts) == 3 else "1"
    if not times.isdigit() or int(times) < 1:
        raise argparse.ArgumentTypeError(f"TIMES must be a whole number of at least 1, got {times!r}")
    return _endpoints(parts[0]), _fault_kind(parts[1]), int(times)


def _add_fault_options(serve: argparse.ArgumentParser) -> None:
    faults = serve.add_argument_group(
        "fault injection", "make calls fail on purpose (see gotoassist_api_server.faults)"
    )
    faults.add_argument(
        "--fault",
        action="append",
        default=[],
        type=_fault_probability,
        metavar="ENDPOINTS:FAULT:PROBABILITY",
        help="inject FAULT into this share of the calls to each comma-separated endpoint; repeatable",
    )
    faults.add_argument(
        "--fail-next",
        action="append",
        default=[],
        type=_queued_fault,
        metavar="ENDPOINTS:FAULT[:TIMES]",
        help="inject FAULT into the next TIMES (default 1) calls to each endpoint; repeatable, in order",
    )
    faults.add_argument(
        "--fault-seed",
        type=int,
        default=_FAULT_DEFAULTS.seed,
        help="seed of the fault probability draws (default: %(default)s)",
    )
    faults.add_argument(
        "--slow-seconds",
        type=float,
        default=_FAULT_DEFAULTS.slow_seconds,
        help="delay of a slow fault, in seconds (default: %(default)s)",
    )
    faults.add_argument(
        "--retry-after-seconds",
        type=int,
        default=_FAULT_DEFAULTS.retry_after_seconds,
        help="Retry-After of a too-many-requests fault (default: %(default)s)",
    )
    faults.add_argument(
        "--rate-limit",
        type=int,
        help="most calls per second to the rate-limited endpoints, counted together; 429 beyond them "
        "(default: no limit)",
    )
    faults.add_argument(
        "--rate-limited-endpoints",
        type=_endpoints,
        default=sorted(_FAULT_DEFAULTS.rate_limited_endpoints),
        metavar="ENDPOINTS",
        help="comma-separated endpoints the rate limit counts (default: the four recordings API calls)",
    )
    faults.add_argument(
        "--rate-limit-retry-after",
        action="store_true",
        help="send Retry-After with a rate-limited 429, which the real API does not document",
    )


def _fault_plan(arguments: argparse.Namespace) -> FaultPlan:
    probabilities: dict[Endpoint, dict[FaultKind, float]] = {}
    for endpoints, fault, probability in arguments.fault:
        for endpoint in endpoints:
            probabilities.setdefault(endpoint, {})[fault] = probability
    queued: dict[Endpoint, list[FaultKind]] = {}
    for endpoints, fault, times in arguments.fail_next:
        for endpoint in endpoints:
            queued.setdefault(endpoint, []).extend([fault] * times)
    return FaultPlan(
        probabilities=probabilities,
        queued=queued,
        seed=arguments.fault_seed,
        slow_seconds=arguments.slow_seconds,
        retry_after_seconds=arguments.retry_after_seconds,
        rate_limit=arguments.rate_limit,
        rate_limited_endpoints=frozenset(arguments.rate_limited_endpoints),
        rate_limit_retry_after=arguments.rate_limit_retry_after,
    )


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gotoassist-api-server",
        description="A local imitation of the GoToAssist Remote Support recordings API.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the API over HTTP until interrupted")
    serve.add_argument("--db", required=True, help="SQLite database file; created when missing")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    serve.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one")
    serve.add_argument("--port-file", help="file to write the listening port to, once listening")
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="server log level (default: %(default)s)",
    )
    serve.add_argument(
        "--transcode-delay",
        type=float,
        default=_DEFAULTS.transcode_delay,
        help="seconds from the first transcode request until a recording is ready (default: %(default)s)",
    )
    serve.add_argument(
        "--token-ttl",
        type=int,
        default=_DEFAULTS.token_ttl,
        help="access token lifetime in seconds (default: %(default)s)",
    )
    serve.add_argument(
        "--id-transport",
        choices=[transport.value for transport in IdTransport],
        default=_DEFAULTS.id_transport.value,
        help="where transcode, archive and urls calls carry recording IDs (default: %(default)s)",
    )
    serve.add_argument(
        "--auth-scheme",
        choices=[scheme.value for scheme in AuthScheme],
        default=_DEFAULTS.auth_scheme.value,
        help="accepted Authorization header form (default: %(default)s)",
    )
    serve.add_argument(
        "--bad-token-status",
        type=int,
        choices=[401, 403],
        default=_DEFAULTS.bad_token_status,
        help="status for a missing, malformed, unknown or expired token (default: %(default)s)",
    )
    serve.add_argument(
        "--to-time-inclusive",
        action="store_true",
        help="let the list call include recordings started exactly at toTime",
    )
    serve.add_argument(
        "--rotate-refresh-tokens",
        action="store_true",
        help="issue a new refresh token on every refresh grant and revoke the old one",
    )
    serve.add_argument(
        "--list-limit",
        type=int,
        default=_DEFAULTS.list_limit,
        help="most IDs per list in a list answer and per request (default: %(default)s)",
    )
    serve.add_argument(
        "--latency",
        type=float,
        default=_DEFAULTS.latency,
        help="seconds every call waits before it is handled, like a distant server (default: %(default)s)",
    )
    serve.add_argument(
        "--files-base-url",
        help="base URL the download links point to, e.g. another name of this server standing in for "
        "a storage host (default: the URL the download-links call came in on)",
    )
    serve.add_argument(
        "--recording-scale",
        type=int,
        default=_DEFAULTS.recording_scale,
        help="multiply the size of every MP4 payload, to serve large recordings (default: %(default)s)",
    )
    _add_fault_options(serve)

    seed_command = commands.add_parser("seed", help="add deterministic recordings and credentials")
    seed_command.add_argument("--db", required=True, help="SQLite database file; created when missing")
    seed_command.add_argument("--day", required=True, help="local day of the recordings, YYYY-MM-DD")
    seed_command.add_argument("--count", type=int, required=True, help="recordings on the day")
    seed_command.add_argument(
        "--neighbours", type=int, default=5, help="recordings on each neighbouring day (default: %(default)s)"
    )
    seed_command.add_argument(
        "--ready-fraction",
        type=float,
        default=0.0,
        help="share of the day's recordings ready for download from the start (default: %(default)s)",
    )
    seed_command.add_argument("--timezone", default="UTC", help="timezone of the day (default: %(default)s)")
    seed_command.add_argument("--seed", type=int, default=7, help="random seed (default: %(default)s)")
    seed_command.add_argument("--reset", action="store_true", help="delete all existing state first")
    seed_command.add_argument("--client-id", default=DEFAULT_CLIENT_ID, help="OAuth client ID to register")
    seed_command.add_argument(
        "--client-secret", default=DEFAULT_CLIENT_SECRET, help="OAuth client secret to register"
    )
    seed_command.add_argument(
        "--refresh-token", default=DEFAULT_REFRESH_TOKEN, help="refresh token to issue to the client"
    )
    seed_command.add_argument(
        "--pat", default=DEFAULT_PERSONAL_ACCESS_TOKEN, help="personal access token to register"
    )

    stats_command = commands.add_parser("stats", help="print what became of the recordings and the calls")
    stats_command.add_argument("--db", required=True, help="SQLite database file")
    stats_command.add_argument("--day", help="local day to summarise in detail, YYYY-MM-DD")
    stats_command.add_argument(
        "--timezone", default="UTC", help="timezone of the days (default: %(default)s)"
    )
    stats_command.add_argument("--json", action="store_true", help="print JSON instead of tables")
    return parser


def _run_serve(arguments: argparse.Namespace) -> int:
    # Imported here so that seeding and statistics work without the server's dependencies.
    from gotoassist_api_server.serving import serve

    settings = ServerSettings(
        transcode_delay=arguments.transcode_delay,
        token_ttl=arguments.token_ttl,
        id_transport=arguments.id_transport,
        auth_scheme=arguments.auth_scheme,
        bad_token_status=arguments.bad_token_status,
        to_time_inclusive=arguments.to_time_inclusive,
        rotate_refresh_tokens=arguments.rotate_refresh_tokens,
        list_limit=arguments.list_limit,
        latency=arguments.latency,
        files_base_url=arguments.files_base_url,
        recording_scale=arguments.recording_scale,
    )
    faults = _fault_plan(arguments)
    logging.basicConfig(
        level=arguments.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    serve(
        arguments.db,
        settings,
        faults,
        host=arguments.host,
        port=arguments.port,
        port_file=arguments.port_file,
        log_level=arguments.log_level,
    )
    return 0


def _run_seed(arguments: argparse.Namespace) -> int:
    result = seed(
        arguments.db,
        day=arguments.day,
        count=arguments.count,
        neighbours=arguments.neighbours,
        ready_fraction=arguments.ready_fraction,
        timezone=arguments.timezone,
        seed=arguments.seed,
        reset=arguments.reset,
        client_id=arguments.client_id,
        client_secret=arguments.client_secret,
        refresh_token=arguments.refresh_token,
        personal_access_token=arguments.pat,
    )
    print(
        f"Seeded {len(result.day_recording_ids)} recordings on {result.day} ({result.timezone}), "
        f"{len(result.ready_recording_ids)} of them ready for download, "
        f"and {len(result.previous_day_recording_ids)} + {len(result.next_day_recording_ids)} "
        f"on the days before and after, into {arguments.db}."
    )
    return 0


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(cell) for cell in row] for row in [headers, *rows]]
    widths = [max(len(row[column]) for row in cells) for column in range(len(headers))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def _format_stats(figures: dict[str, Any]) -> str:
    sections = [
        f"Recordings by local day ({figures['timezone']}), at {figures['computed_at']}",
        _table(
            ["day", "state", "archived", "count"],
            [
                [row["day"], row["state"], "yes" if row["archived"] else "no", row["count"]]
                for row in figures["recordings_by_day"]
            ],
        ),
    ]
    if figures["day"] is not None:
        summary = figures["day"]
        sections += [
            "",
            f"Day {summary['day']}",
            _table(
                ["figure", "recordings"], [[name, value] for name, value in summary.items() if name != "day"]
            ),
        ]
    call_rows = [
        [endpoint, status, by_status["calls"], by_status["recording_ids"]]
        for endpoint, endpoint_figures in figures["calls"].items()
        for status, by_status in endpoint_figures["by_status"].items()
    ]
    sections += ["", "API calls", _table(["endpoint", "status", "calls", "recording IDs"], call_rows)]
    fault_rows = [
        [endpoint, fault, calls]
        for endpoint, by_fault in figures["faults"]["by_endpoint"].items()
        for fault, calls in by_fault.items()
    ]
    sections += ["", f"Faults injected: {figures['faults']['injected']}"]
    if fault_rows:
        sections.append(_table(["endpoint", "fault", "calls"], fault_rows))
    return "\n".join(sections)


def _run_stats(arguments: argparse.Namespace) -> int:
    figures = stats(arguments.db, day=arguments.day, timezone=arguments.timezone)
    print(json.dumps(figures, indent=2) if arguments.json else _format_stats(figures))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    :param argv: the arguments after the program name; ``sys.argv[1:]`` when ``None``.
    :return: the exit status.
    """
    parser = _build_parser()
    arguments = parser.parse_args(argv)
    commands = {"serve": _run_serve, "seed": _run_seed, "stats": _run_stats}
    try:
        return commands[arguments.command](arguments)
    except (ValueError, pydantic.ValidationError) as error:
        print(f"{parser.prog} {arguments.command}: error: {error}", file=sys.stderr)
        return 2
