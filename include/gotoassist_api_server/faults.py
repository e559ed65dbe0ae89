"""Fault injection: the server misbehaves on purpose, so a client can be proven to lose nothing.

A :class:`FaultPlan` says which calls fail and how. It gives each of the six endpoints (token, list,
transcode, archive, urls, file):

- a queue of faults for its next calls, each call taking one (deterministic tests);
- a probability per fault kind, drawn per call from a random generator seeded by the plan, one
  generator per endpoint so calls to one endpoint do not shift the draws of another.

On top, a rate limit (off by default) lets through at most N calls per second to a set of endpoints
counted together, as the real API counts its 10 calls per second per API; calls beyond it get a 429.

For each call the rate limit is checked first, like a gateway in front of the server, then the queue,
then the probabilities; a call gets at most one fault.

When a fault strikes, relative to the handler that does the work:

- *before* the handler, so the server's state is not changed: ``too-many-requests`` (429 with
  ``Retry-After``), ``too-many-requests-no-retry-after`` (429 without it), ``server-error`` (500),
  ``unavailable`` (503), ``html-error`` (a proxy's 502 page in ``text/html``), ``malformed-json``
  (status 200 and a truncated JSON body, only on the JSON endpoints token, list and urls), ``drop``
  (the connection is closed without an answer) and the rate limit's 429;
- *after* the handler ran and changed the state, its answer then being lost, as happens on real
  networks: ``server-error-after`` (a 500 replaces the answer) and ``drop-after`` (the connection is
  closed instead of answering). A client must treat both as "may have been applied", so it must be
  idempotent: transcode and archive again, list again;
- ``slow`` waits ``slow_seconds`` and then runs the handler as usual. The handler runs whether or not
  the client waited that long: a client whose read timed out must also assume the call was applied;
- on the file endpoint only, faults in the body of a file the handler produced: ``short-file`` (a 200
  whose body lacks the file's last quarter, with a ``Content-Length`` to match, so the answer looks
  complete and only the size the download-links call advertised shows it is wrong) and
  ``drop-mid-file`` (the headers, with the full ``Content-Length``, and the first half of the body,
  then the connection is closed, as when a transfer breaks off).

Dropping a connection needs the socket, which ASGI does not expose. The server therefore tracks its
open connections by peer address (see :class:`OpenConnections`, fed by the uvicorn protocol in
:mod:`gotoassist_api_server.serving`); a drop closes the transport of the request's peer and waits
until the server has noticed, so nothing is ever written to the client. A ``requests`` client sees a
``ConnectionError``.

Only the middleware needs the server's dependencies, and imports them when built: the plan itself is
usable wherever the seeding and the statistics are.

The plan is an option of the running process, like the settings: :mod:`gotoassist_api_server.testing`
remembers it across restarts. A restarted or replaced plan starts its draws from the seed again and
its rate-limit window empty.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import json
import logging
import random
import threading
from typing import TYPE_CHECKING, Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_serializer, model_validator

if TYPE_CHECKING:
    from starlette.routing import Router
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


class Endpoint(enum.StrEnum):
    """The endpoints faults are injected into; the values are the route names in the call log."""

    TOKEN = "token"
    LIST = "list"
    TRANSCODE = "transcode"
    ARCHIVE = "archive"
    URLS = "urls"
    FILE = "file"


_ENDPOINT_NAMES = frozenset(endpoint.value for endpoint in Endpoint)

#: The endpoints whose answer is a JSON body, the only ones a ``malformed-json`` fault fits.
JSON_ENDPOINTS = frozenset({Endpoint.TOKEN, Endpoint.LIST, Endpoint.URLS})
#: The recordings API calls, which the rate limit counts together by default.
RECORDINGS_API_ENDPOINTS = frozenset({Endpoint.LIST, Endpoint.TRANSCODE, Endpoint.ARCHIVE, Endpoint.URLS})


class FaultKind(enum.StrEnum):
    """How a call fails; see the module documentation for whether the handler runs."""

    TOO_MANY_REQUESTS = "too-many-requests"
    TOO_MANY_REQUESTS_NO_RETRY_AFTER = "too-many-requests-no-retry-after"
    SERVER_ERROR = "server-error"
    UNAVAILABLE = "unavailable"
    HTML_ERROR = "html-error"
    MALFORMED_JSON = "malformed-json"
    SLOW = "slow"
    DROP = "drop"
    SERVER_ERROR_AFTER = "server-error-after"
    DROP_AFTER = "drop-after"
    SHORT_FILE = "short-file"
    DROP_MID_FILE = "drop-mid-file"


#: The fault the rate limit injects, as the call log and the statistics name it. Not plannable: it
#: follows from ``rate_limit``.
RATE_LIMITED = "rate-limited"

#: The faults in a file's body, which only the file endpoint serves.
FILE_FAULTS = frozenset({FaultKind.SHORT_FILE, FaultKind.DROP_MID_FILE})

Probability = Annotated[float, Field(ge=0, le=1)]


def _check_fits(endpoint: Endpoint, fault: FaultKind) -> None:
    if fault is FaultKind.MALFORMED_JSON and endpoint not in JSON_ENDPOINTS:
        raise ValueError(
            f"a {fault} fault fits only the JSON endpoints ({', '.join(sorted(JSON_ENDPOINTS))}), "
            f"not {endpoint}"
        )
    if fault in FILE_FAULTS and endpoint is not Endpoint.FILE:
        raise ValueError(f"a {fault} fault fits only the file endpoint, not {endpoint}")


class FaultPlan(BaseModel):
    """Which calls the server fails on purpose, and how; the default plan injects nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    probabilities: dict[Endpoint, dict[FaultKind, Probability]] = Field(
        default_factory=dict,
        description="Per endpoint, the chance of each fault kind on a call; at most 1 in total.",
    )
    queued: dict[Endpoint, list[FaultKind]] = Field(
        default_factory=dict,
        description="Per endpoint, faults for its next calls in order; each call takes one.",
    )
    seed: int = Field(default=0, description="Seed of the probability draws.")
    slow_seconds: float = Field(default=2.0, ge=0, description="How long a slow fault delays the call.")
    retry_after_seconds: int = Field(
        default=1, ge=0, description="The Retry-After header of a too-many-requests fault."
    )
    rate_limit: int | None = Field(
        default=None, ge=1, description="Most calls per second to the rate-limited endpoints; none if unset."
    )
    rate_limited_endpoints: frozenset[Endpoint] = Field(
        default=RECORDINGS_API_ENDPOINTS, description="The endpoints the rate limit counts together."
    )
    rate_limit_retry_after: bool = Field(
        default=False,
        description="Whether a rate-limited 429 carries Retry-After, which the real API does not document.",
    )

    @field_serializer("rate_limited_endpoints")
    def _sorted_endpoints(self, endpoints: frozenset[Endpoint]) -> list[str]:
        return sorted(endpoints)

    @model_validator(mode="after")
    def _faults_fit_their_endpoints(self) -> Self:
        for endpoint, chances in self.probabilities.items():
            if sum(chances.values()) > 1:
                raise ValueError(f"the fault probabilities of {endpoint} add up to more than 1")
            for fault in chances:
                _check_fits(endpoint, fault)
        for endpoint, faults in self.queued.items():
            for fault in faults:
                _check_fits(endpoint, fault)
        return self

    def to_cli_arguments(self) -> list[str]:
        """Render this plan as ``serve`` command-line options.

        :return: the options, ready to append to a command line.
        """
        arguments = [
            "--fault-seed",
            str(self.seed),
            "--slow-seconds",
            repr(self.slow_seconds),
            "--retry-after-seconds",
            str(self.retry_after_seconds),
        ]
        for endpoint, chances in self.probabilities.items():
            for fault, probability in chances.items():
                arguments += ["--fault", f"{endpoint}:{fault}:{probability!r}"]
        for endpoint, faults in self.queued.items():
            # Runs of the same fault travel as one option with a count, in queue order.
            run_start = 0
            for position in range(1, len(faults) + 1):
                if position == len(faults) or faults[position] != faults[run_start]:
                    arguments += ["--fail-next", f"{endpoint}:{faults[run_start]}:{position - run_start}"]
                    run_start = position
        if self.rate_limit is not None:
            arguments += ["--rate-limit", str(self.rate_limit)]
        arguments += ["--rate-limited-endpoints", ",".join(sorted(self.rate_limited_endpoints))]
        if self.rate_limit_retry_after:
            arguments.append("--rate-limit-retry-after")
        return arguments


class QueuedFaults(BaseModel):
    """Faults to append to one endpoint's queue: the next ``times`` calls fail with ``fault``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: Endpoint
    fault: FaultKind
    times: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _fault_fits_its_endpoint(self) -> Self:
        _check_fits(self.endpoint, self.fault)
        return self


class FaultInjector:
    """Decides, call by call, which fault a plan injects, keeping the plan's run-time state.

    That state is what the plan consumes: the queues, the random generators and the calls the rate
    limit let through in the last second.

    :param plan: the plan to follow.
    """

    def __init__(self, plan: FaultPlan) -> None:
        self._lock = threading.Lock()
        self.replace(plan)

    def replace(self, plan: FaultPlan) -> None:
        """Follow a new plan from its start: full queues, draws from the seed, an empty rate window.

        :param plan: the plan.
        """
        with self._lock:
            self._plan = plan
            self._queued = {endpoint: collections.deque(faults) for endpoint, faults in plan.queued.items()}
            self._random = {endpoint: random.Random(f"{plan.seed}:{endpoint}") for endpoint in Endpoint}
            self._admitted: collections.deque[float] = collections.deque()

    @property
    def plan(self) -> FaultPlan:
        """The plan as last set, its queues full."""
        return self._plan

    def plan_in_force(self) -> FaultPlan:
        """Return the plan with what is left of its queues.

        :return: the plan.
        """
        with self._lock:
            remaining = {endpoint: list(faults) for endpoint, faults in self._queued.items() if faults}
            return self._plan.model_copy(update={"queued": remaining})

    def queue(self, faults: QueuedFaults) -> FaultPlan:
        """Append faults to an endpoint's queue.

        :param faults: the endpoint, the fault and how many calls it fails.
        :return: the plan in force afterwards.
        """
        with self._lock:
            queue = self._queued.setdefault(faults.endpoint, collections.deque())
            queue.extend([faults.fault] * faults.times)
        return self.plan_in_force()

    def over_rate_limit(self, endpoint: Endpoint, now: float) -> bool:
        """Tell whether a call exceeds the rate limit; a call let through counts against it.

        :param endpoint: the endpoint called.
        :param now: the call's arrival on a monotonic clock, in seconds.
        :return: true if the call must be refused.
        """
        with self._lock:
            if self._plan.rate_limit is None or endpoint not in self._plan.rate_limited_endpoints:
                return False
            while self._admitted and self._admitted[0] <= now - 1.0:
                self._admitted.popleft()
            if len(self._admitted) >= self._plan.rate_limit:
                return True
            self._admitted.append(now)
            return False

    def next_fault(self, endpoint: Endpoint) -> FaultKind | None:
        """Pick the fault of a call: the next queued one, else one drawn by the probabilities.

        :param endpoint: the endpoint called.
        :return: the fault, or ``None`` if the call is to be answered normally.
        """
        with self._lock:
            queued = self._queued.get(endpoint)
            if queued:
                return queued.popleft()
            chances = self._plan.probabilities.get(endpoint)
            if not chances:
                return None
            # Walk the kinds in their declared order, so a plan's draws do not depend on how its
            # JSON or command line happened to order them.
            roll = self._random[endpoint].random()
            for fault in FaultKind:
                roll -= chances.get(fault, 0.0)
                if roll < 0:
                    return fault
            return None


def _peer_address(address: Any) -> tuple[str, int] | None:
    # IPv4 peers are (host, port), IPv6 ones (host, port, flow info, scope ID); the ASGI scope's
    # client is (host, port) either way.
    if not isinstance(address, tuple | list) or len(address) < 2:
        return None
    return str(address[0]), int(address[1])


class OpenConnections:
    """The server's open client connections by peer address, so that a fault can close one unanswered.

    The ASGI scope names a request's peer in ``client`` but offers no way to its socket; the server's
    protocol registers every transport here on ``connection_made`` and removes it on ``connection_lost``.
    All methods run on the event loop.
    """

    def __init__(self) -> None:
        self._transports: dict[tuple[str, int], asyncio.BaseTransport] = {}

    def add(self, transport: asyncio.BaseTransport) -> None:
        """Register a new connection.

        :param transport: its transport.
        """
        peer = _peer_address(transport.get_extra_info("peername"))
        if peer is not None:
            self._transports[peer] = transport

    def discard(self, transport: asyncio.BaseTransport) -> None:
        """Forget a closed connection.

        :param transport: its transport.
        """
        peer = _peer_address(transport.get_extra_info("peername"))
        if peer is not None and self._transports.get(peer) is transport:
            del self._transports[peer]

    def close(self, client: Any) -> bool:
        """Close the connection of a peer without writing anything more to it.

        :param client: the peer's address, as the ASGI scope's ``client``.
        :return: false if no open connection has that peer.
        """
        peer = _peer_address(client)
        transport = None if peer is None else self._transports.get(peer)
        if transport is None:
            return False
        transport.close()
        return True


_HTML_ERROR_PAGE = b"""<!DOCTYPE html>
<html>
<head><title>502 Bad Gateway</title></head>
<body>
<h1>502 Bad Gateway</h1>
<p>The proxy received no valid answer from the upstream server.</p>
</body>
</html>
"""

# What a JSON answer cut short looks like, per endpoint.
_TRUNCATED_JSON = {
    Endpoint.TOKEN: b'{"access_token": "',
    Endpoint.LIST: b'{"readyForTranscode": ["',
    Endpoint.URLS: b'[{"recordingId": "',
}


async def _answer(
    send: Send, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
) -> None:
    raw_headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    raw_headers += [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


async def _json_error(send: Send, status: int, message: str, headers: dict[str, str] | None = None) -> None:
    await _answer(send, status, json.dumps({"error": message}).encode(), "application/json", headers)


async def _read_request(receive: Receive) -> Receive:
    """Read a request's whole body now and return a ``receive`` that replays it."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            break

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return replay


async def _discard(message: Message) -> None:
    """Swallow a response the client is never to see."""


async def _captured_answer(app: ASGIApp, scope: Scope, receive: Receive) -> tuple[Message, bytes]:
    """Run the handler and keep its answer, the start message and the whole body, instead of sending it."""
    start: Message = {"type": "http.response.start", "status": 500, "headers": []}
    parts: list[bytes] = []

    async def capture(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
        elif message["type"] == "http.response.body":
            parts.append(message.get("body", b""))

    await app(scope, receive, capture)
    return start, b"".join(parts)


def _with_content_length(headers: list[tuple[bytes, bytes]], length: int) -> list[tuple[bytes, bytes]]:
    kept = [(name, value) for name, value in headers if name.lower() != b"content-length"]
    return [*kept, (b"content-length", str(length).encode())]


class FaultMiddleware:
    """Injects the faults of a :class:`FaultInjector` into calls to the six endpoints.

    It sits inside the call log, which therefore logs each faulted call with the status the client got
    (0 for a dropped connection) and, from ``scope["state"]["fault"]``, the fault. A call refused before
    routing has no matched route, so the endpoint travels in ``scope["state"]["endpoint"]`` too.

    :param app: the application to wrap.
    :param injector: decides which calls fail.
    :param router: the application's router, to tell which endpoint a call is for before it runs.
    :param connections: the open connections, to drop one; without them a drop raises instead.
    """

    def __init__(
        self,
        app: ASGIApp,
        injector: FaultInjector,
        router: Router,
        connections: OpenConnections | None = None,
    ) -> None:
        from starlette.routing import Match

        self.app = app
        self.injector = injector
        self.router = router
        self.connections = connections
        self._full_match = Match.FULL

    def _endpoint(self, scope: Scope) -> Endpoint | None:
        for route in self.router.routes:
            match, _ = route.matches(scope)
            if match is self._full_match:
                name = getattr(route, "name", None)
                return Endpoint(name) if name in _ENDPOINT_NAMES else None
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self._endpoint(scope) if scope["type"] == "http" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        latency = scope["app"].state.settings.latency
        if latency:
            await asyncio.sleep(latency)

        now = asyncio.get_running_loop().time()
        fault: str | None
        if self.injector.over_rate_limit(endpoint, now):
            fault = RATE_LIMITED
        else:
            fault = self.injector.next_fault(endpoint)
        if fault is None:
            await self.app(scope, receive, send)
            return

        state = scope.setdefault("state", {})
        state["endpoint"] = endpoint.value
        state["fault"] = fault
        log.info("Injecting %s into %s %s", fault, scope["method"], scope["path"])
        await self._inject(fault, endpoint, scope, receive, send)

    async def _inject(
        self, fault: str, endpoint: Endpoint, scope: Scope, receive: Receive, send: Send
    ) -> None:
        plan = self.injector.plan
        if fault == RATE_LIMITED:
            headers = {"Retry-After": "1"} if plan.rate_limit_retry_after else None
            await _json_error(send, 429, "rate limit exceeded", headers)
        elif fault is FaultKind.TOO_MANY_REQUESTS:
            await _json_error(send, 429, "too many requests", {"Retry-After": str(plan.retry_after_seconds)})
        elif fault is FaultKind.TOO_MANY_REQUESTS_NO_RETRY_AFTER:
            await _json_error(send, 429, "too many requests")
        elif fault is FaultKind.SERVER_ERROR:
            await _json_error(send, 500, "unexpected server error")
        elif fault is FaultKind.UNAVAILABLE:
            await _json_error(send, 503, "service unavailable")
        elif fault is FaultKind.HTML_ERROR:
            await _answer(send, 502, _HTML_ERROR_PAGE, "text/html; charset=utf-8")
        elif fault is FaultKind.MALFORMED_JSON:
            await _answer(send, 200, _TRUNCATED_JSON[endpoint], "application/json")
        elif fault is FaultKind.SLOW:
            # Read the request before the delay: a client that times out meanwhile has gone by
            # the time the handler runs, and the call must still be applied, as a real server would.
            request = await _read_request(receive)
            await asyncio.sleep(plan.slow_seconds)
            await self.app(scope, request, send)
        elif fault is FaultKind.DROP:
            await self._drop(scope, receive)
        elif fault is FaultKind.SERVER_ERROR_AFTER:
            await self.app(scope, receive, _discard)
            await _json_error(send, 500, "unexpected server error")
        elif fault is FaultKind.DROP_AFTER:
            await self.app(scope, receive, _discard)
            await self._drop(scope, receive)
        elif fault is FaultKind.SHORT_FILE:
            start, body = await _captured_answer(self.app, scope, receive)
            short = body[: len(body) * 3 // 4]
            await send({**start, "headers": _with_content_length(start.get("headers", []), len(short))})
            await send({"type": "http.response.body", "body": short})
        elif fault is FaultKind.DROP_MID_FILE:
            start, body = await _captured_answer(self.app, scope, receive)
            await send(start)
            await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
            await self._drop(scope, receive)

    async def _drop(self, scope: Scope, receive: Receive) -> None:
        if self.connections is None or not self.connections.close(scope.get("client")):
            raise RuntimeError(
                "cannot drop the connection: serve the application with gotoassist_api_server.serving"
            )
        # Returning before the server has seen the connection close would make it answer 500 for a
        # request left unanswered; the disconnect message says it has.
        while (await receive())["type"] != "http.disconnect":
            pass
