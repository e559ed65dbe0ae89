"""The readiness trigger never blocks the event loop it shares with every trigger of the triggerer.

Two ways of looking: a guard that notes every blocking call made on the loop's own thread (a blocking
socket, ``time.sleep``, Airflow's synchronous connection and Variable lookups), and a heartbeat that
shows the loop kept turning while the server held a call for seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pendulum
import pytest
from airflow.sdk.execution_time import context as sdk_context

from gotoassist_recordings.hooks.gotoassist import GoToAssistHook
from gotoassist_recordings.triggers.recordings import GoToAssistRecordingsReadyTrigger

QUICK = {"poll_interval": 0.1, "max_poll_interval": 0.3}
#: Airflow's synchronous lookups; each talks to the supervisor (or a secrets backend) and waits.
SYNC_LOOKUPS = ("_get_connection", "_get_variable", "_set_variable")


@pytest.fixture(autouse=True)
def _no_faults_left(shared_api) -> Iterator[None]:
    yield
    shared_api.handle.clear_faults()


@dataclass
class LoopGuard:
    """Notes the blocking calls made on the event loop's thread; every call still goes through.

    :param loop_thread: the identity of the thread running the event loop, once it runs.
    """

    loop_thread: int | None = None
    on_loop: list[str] = field(default_factory=list)
    elsewhere: list[str] = field(default_factory=list)

    def note(self, what: str) -> None:
        (self.on_loop if threading.get_ident() == self.loop_thread else self.elsewhere).append(what)

    def run(self, coroutine_function: Callable[[], Awaitable[Any]]) -> Any:
        async def watched() -> Any:
            self.loop_thread = threading.get_ident()
            return await coroutine_function()

        return asyncio.run(watched())


@pytest.fixture
def loop_guard(monkeypatch: pytest.MonkeyPatch) -> LoopGuard:
    guard = LoopGuard()
    real_connect = socket.socket.connect
    real_sleep = time.sleep

    def connect(sock: socket.socket, address: Any) -> Any:
        # asyncio connects non-blocking sockets (timeout 0.0); a synchronous client's sockets block.
        if sock.gettimeout() != 0.0:
            guard.note(f"blocking connect to {address!r}")
        return real_connect(sock, address)

    def sleep(seconds: float) -> None:
        guard.note(f"time.sleep({seconds})")
        real_sleep(seconds)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(time, "sleep", sleep)
    for name in SYNC_LOOKUPS:
        real = getattr(sdk_context, name)

        def lookup(*args: Any, _real: Callable[..., Any] = real, _name: str = name, **kwargs: Any) -> Any:
            guard.note(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(sdk_context, name, lookup)
    return guard


def run_trigger(guard: LoopGuard, trigger: GoToAssistRecordingsReadyTrigger) -> list[Any]:
    async def collect() -> list[Any]:
        return [event.payload async for event in trigger.run()]

    return guard.run(collect)


def trigger_for(
    conn_id: str, recording_ids: list[str], seconds: float = 30
) -> GoToAssistRecordingsReadyTrigger:
    return GoToAssistRecordingsReadyTrigger(
        recording_ids=recording_ids,
        deadline=pendulum.now("UTC").add(seconds=seconds).isoformat(),
        gotoassist_conn_id=conn_id,
        **QUICK,
    )


@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        pytest.param({}, "ready", id="refresh-token"),
        # A refused refresh token makes the provider wait for a rotation by another task.
        pytest.param({"refresh_token": "revoked"}, "error", id="refused-refresh-token"),
    ],
)
def test_the_trigger_makes_no_blocking_call_on_the_loop(
    api, make_connection, take, loop_guard, overrides, status
):
    conn_id = make_connection(api.base_url, **overrides)

    payloads = run_trigger(loop_guard, trigger_for(conn_id, take(2, ready=True)))

    assert [payload["status"] for payload in payloads] == [status]
    assert loop_guard.on_loop == []
    # The kept credentials were read (and, once a token was obtained, written) in a worker thread.
    assert "_get_variable" in loop_guard.elsewhere
    assert ("_set_variable" in loop_guard.elsewhere) is (status == "ready")
    # The connection was looked up asynchronously: the synchronous lookup ran nowhere.
    assert "_get_connection" not in loop_guard.elsewhere


def test_the_guard_notes_a_blocking_call(api, make_connection, take, loop_guard):
    # The guard is only worth something if it notes the sync hook's calls when they run on the loop.
    hook = GoToAssistHook(make_connection(api.base_url))
    recording_ids = take(1, ready=True)

    async def check_on_the_loop() -> set[str]:
        ready, _ = hook.ready_recording_ids(recording_ids)
        return ready

    assert loop_guard.run(check_on_the_loop) == set(recording_ids)
    assert "_get_connection" in loop_guard.on_loop
    assert "_get_variable" in loop_guard.on_loop
    assert any(call.startswith("blocking connect") for call in loop_guard.on_loop)


def test_the_loop_keeps_turning_while_the_server_holds_the_calls(api, make_connection, take):
    conn_id = make_connection(api.base_url)
    slow_seconds = api.handle.faults_in_force().slow_seconds
    api.handle.fail_next("token", "slow")
    api.handle.fail_next("urls", "slow")
    trigger = trigger_for(conn_id, take(2, ready=True))

    async def beat_while_waiting() -> tuple[list[Any], list[float], float]:
        loop = asyncio.get_running_loop()
        beats: list[float] = []
        started = loop.time()
        waiting = asyncio.ensure_future(_collect(trigger))
        while not waiting.done():
            beats.append(loop.time())
            await asyncio.sleep(0.01)
        return waiting.result(), beats, loop.time() - started

    payloads, beats, took = asyncio.run(beat_while_waiting())

    assert [payload["status"] for payload in payloads] == ["ready"]
    assert took >= 2 * slow_seconds, "the server did not hold the token and urls calls"
    # A blocking call would have stopped the heartbeat for as long as the server held it.
    longest_pause = max(later - earlier for earlier, later in itertools.pairwise(beats))
    assert longest_pause < slow_seconds


async def _collect(trigger: GoToAssistRecordingsReadyTrigger) -> list[Any]:
    return [event.payload async for event in trigger.run()]
