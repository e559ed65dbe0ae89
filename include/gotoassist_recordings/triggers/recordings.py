"""Trigger that waits in Airflow's triggerer until a chunk of recordings is ready for download."""

from __future__ import annotations

import asyncio
import enum
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pendulum
from airflow.sdk.exceptions import AirflowNotFoundException
from airflow.triggers.base import BaseTrigger, TaskSuccessEvent, TriggerEvent
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gotoassist_recordings.exceptions import GoToAssistError, InvalidTriggerEventError
from gotoassist_recordings.hooks.gotoassist import GoToAssistAsyncHook
from gotoassist_recordings.models import (
    MAX_IDS_PER_CALL,
    RecordingId,
    check_chunk_size,
    describe_problems,
    normalize_recording_ids,
)
from gotoassist_recordings.retries import TRANSIENT_ERRORS, RetryPolicy, describe

#: Each wait between two checks is this many times the one before, up to ``max_poll_interval``.
BACKOFF_FACTOR = 1.5
#: Retries within one check. The wait until the next check is the retry that matters; these only
#: ride out a blip: no new attempt starts a minute after the check's first, so a check that keeps
#: failing gives way to the next one.
CHECK_RETRY_POLICY = RetryPolicy(max_attempts=3, initial_wait=0.5, max_wait=30.0, max_total=60.0)
#: How many of the recordings still waiting a message names; the event itself lists them all.
NAMED_IN_MESSAGES = 20


class ReadinessStatus(enum.StrEnum):
    """How waiting for a chunk ended."""

    READY = "ready"
    """Every recording the API accepted is ready for download."""
    TIMEOUT = "timeout"
    """The deadline passed with recordings still not ready."""
    ERROR = "error"
    """Readiness could not be checked: refused credentials, an invalid answer, a bad connection."""


class ReadinessEvent(BaseModel):
    """What the readiness trigger reports to its task: JSON-safe, and validated again on arrival.

    :param status: how waiting ended.
    :param asked: recording IDs in the chunk.
    :param ready: how many the last check reported ready for download.
    :param waiting_ids: the recordings not (known to be) ready at the last check.
    :param refused_ids: recording IDs the API refused as invalid; they are not waited for.
    :param message: what happened, for people.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    status: ReadinessStatus
    asked: int = Field(ge=0, le=MAX_IDS_PER_CALL)
    ready: int = Field(ge=0, le=MAX_IDS_PER_CALL)
    waiting_ids: list[RecordingId] = Field(default_factory=list)
    refused_ids: list[RecordingId] = Field(default_factory=list)
    message: str = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> ReadinessEvent:
        if self.ready + len(self.waiting_ids) + len(self.refused_ids) > self.asked:
            raise ValueError(f"counts more recordings than the {self.asked} of the chunk")
        if self.status is ReadinessStatus.READY and self.ready + len(self.refused_ids) != self.asked:
            raise ValueError("reports a chunk ready whose recordings are not all ready or refused")
        if self.status is ReadinessStatus.TIMEOUT and not self.waiting_ids:
            raise ValueError("reports a timeout without naming the recordings still waiting")
        return self

    @classmethod
    def from_trigger(cls, payload: Any, recording_ids: list[str]) -> ReadinessEvent:
        """Validate an event's payload and check that it is about the chunk ``recording_ids``.

        :raises InvalidTriggerEventError: naming what is wrong with the payload.
        """
        try:
            event = cls.model_validate(payload)
        except ValidationError as error:
            raise InvalidTriggerEventError(
                "The readiness trigger sent an event that is not as expected "
                f"({describe_problems(error, whole='event', most=5)})"
            ) from None
        strangers = set(event.waiting_ids + event.refused_ids) - set(recording_ids)
        if event.asked != len(recording_ids) or strangers:
            raise InvalidTriggerEventError(
                f"The readiness trigger sent an event about another chunk: {event.asked} recordings "
                f"asked instead of {len(recording_ids)}, {len(strangers)} IDs not in this chunk"
            )
        return event

    def raise_unless_ready(self, *, on_timeout: type[Exception]) -> None:
        """Raise ``on_timeout`` after a timeout, :class:`GoToAssistError` after an error; else nothing."""
        if self.status is ReadinessStatus.TIMEOUT:
            raise on_timeout(self.message)
        if self.status is ReadinessStatus.ERROR:
            raise GoToAssistError(self.message)


class GoToAssistRecordingsReadyTrigger(BaseTrigger):
    """Wait until every recording of a chunk is ready for download, or until a deadline passes.

    Runs in Airflow's triggerer, beside every other trigger on one event loop, so nothing in it
    blocks: the connection is looked up with ``aget_connection``, the download-links call and the
    token endpoint are called with ``aiohttp``, and the Variable that keeps the connection's newest
    credentials is read and written in a worker thread (see
    :class:`~gotoassist_recordings.hooks.gotoassist.GoToAssistAsyncHook`).

    It checks after ``first_check_delay`` seconds (at once by default), then after ``poll_interval``
    seconds, each later wait ``BACKOFF_FACTOR`` times longer, up to ``max_poll_interval``; the last
    check falls on the deadline. It then sends exactly one event, a :class:`ReadinessEvent` (or,
    with ``end_task_when_ready``, a task success event once the chunk is ready, see below):

    - ``ready``: every recording the API accepted is ready (IDs refused as invalid are not waited
      for: they never become ready, and the archive step names them);
    - ``timeout``: the deadline passed; the event names the recordings still not ready;
    - ``error``: the credentials were refused, an answer was not as documented or the connection
      is unusable.

    Transient faults (connection errors, timeouts, 429, 5xx) are retried a few times within a check
    and otherwise end only that check: waiting goes on until the deadline. A check that has begun
    is finished, so the event can come up to one check's duration after the deadline: a minute or
    two, a few minutes at worst when every request of the check and its token renewal times out.
    An unexpected exception fails the task with its traceback in the triggerer log.

    With ``end_task_when_ready``, a ready chunk ends the task right there, in the triggerer, with
    ``return_value`` as its XCom return value: the task does not come back to a worker only to
    succeed, which saves a worker slot, a task process and its calls to Airflow per chunk. A
    timeout or an error still resumes the task with the event, so that it fails on the worker with
    the event's message and the retries it was given.

    :param recording_ids: the chunk: at most 500 recording IDs, as digit strings.
    :param deadline: when to stop waiting: an ISO 8601 date and time with its UTC offset.
    :param gotoassist_conn_id: the ``gotoassist`` connection.
    :param poll_interval: seconds between the first and the second check.
    :param max_poll_interval: the longest wait between two checks, in seconds.
    :param chunk_label: names the chunk in logs and messages, e.g. ``chunk 3/7 · 500 recordings``.
    :param first_check_delay: seconds before the first check, for a chunk whose transcoding was
        just requested and cannot be ready at once.
    :param end_task_when_ready: end the task in the triggerer once the chunk is ready.
    :param return_value: the task's XCom return value when the trigger ends it (JSON-safe).
    """

    def __init__(
        self,
        *,
        recording_ids: list[str],
        deadline: str,
        gotoassist_conn_id: str = GoToAssistAsyncHook.default_conn_name,
        poll_interval: float = 60.0,
        max_poll_interval: float = 900.0,
        chunk_label: str | None = None,
        first_check_delay: float = 0.0,
        end_task_when_ready: bool = False,
        return_value: Any = None,
    ) -> None:
        super().__init__()
        self.recording_ids = normalize_recording_ids(recording_ids)
        check_chunk_size(self.recording_ids, "download-links")
        self.deadline = _moment(deadline)
        self.gotoassist_conn_id = gotoassist_conn_id
        self.poll_interval = _seconds(poll_interval, "poll_interval")
        self.max_poll_interval = _seconds(max_poll_interval, "max_poll_interval")
        if self.max_poll_interval < self.poll_interval:
            raise ValueError(
                f"max_poll_interval ({max_poll_interval}) must not be shorter than poll_interval "
                f"({poll_interval})"
            )
        self.chunk_label = chunk_label
        self.first_check_delay = _seconds(first_check_delay, "first_check_delay", zero_allowed=True)
        if not isinstance(end_task_when_ready, bool):
            raise ValueError(f"end_task_when_ready must be true or false, got {end_task_when_ready!r}")
        self.end_task_when_ready = end_task_when_ready
        try:
            json.dumps(return_value)
        except (TypeError, ValueError):
            # Airflow would only find out when the chunk is ready, hours later, in the triggerer.
            raise ValueError(f"return_value must be JSON-safe, got {return_value!r:.80}") from None
        self.return_value = return_value

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "recording_ids": self.recording_ids,
                "deadline": self.deadline.isoformat(),
                "gotoassist_conn_id": self.gotoassist_conn_id,
                "poll_interval": self.poll_interval,
                "max_poll_interval": self.max_poll_interval,
                "chunk_label": self.chunk_label,
                "first_check_delay": self.first_check_delay,
                "end_task_when_ready": self.end_task_when_ready,
                "return_value": self.return_value,
            },
        )

    @property
    def chunk_name(self) -> str:
        return self.chunk_label or f"the chunk of {len(self.recording_ids)} recordings"

    async def run(self) -> AsyncIterator[TriggerEvent]:
        event = await self._wait()
        if self.end_task_when_ready and event.status is ReadinessStatus.READY:
            self.log.info("%s; the task ends here", event.message)
            xcoms = None if self.return_value is None else {"return_value": self.return_value}
            yield TaskSuccessEvent(xcoms=xcoms)
            return
        yield TriggerEvent(event.model_dump(mode="json"))

    async def _wait(self) -> ReadinessEvent:
        asked = len(self.recording_ids)
        # Until a check says otherwise, every recording counts as waiting.
        waiting, refused, ready = list(self.recording_ids), [], 0
        last_fault: str | None = None
        waits = poll_waits(self.poll_interval, self.max_poll_interval)
        self.log.info(
            "Waiting until %d recordings of %s are ready for download, until %s",
            asked,
            self.chunk_name,
            self.deadline.isoformat(),
        )
        if self.first_check_delay:
            await asyncio.sleep(min(self.first_check_delay, max(self._remaining(), 0.0)))
        async with GoToAssistAsyncHook(self.gotoassist_conn_id, retry_policy=CHECK_RETRY_POLICY) as hook:
            while True:
                # Check, surviving transient faults; anything else ends the wait with an error.
                try:
                    ready_ids, outcome = await hook.ready_recording_ids(self.recording_ids)
                except TRANSIENT_ERRORS as error:
                    last_fault = describe(error)
                    self.log.warning(
                        "Could not check %s (%s); checking again later", self.chunk_name, last_fault
                    )
                except (GoToAssistError, AirflowNotFoundException) as error:
                    return ReadinessEvent(
                        status=ReadinessStatus.ERROR,
                        asked=asked,
                        ready=0,
                        message=f"Could not check whether {self.chunk_name} is ready for download: {error}",
                    )
                else:
                    last_fault = None
                    refused = outcome.refused
                    waiting = [rid for rid in outcome.processed if rid not in ready_ids]
                    ready = len(ready_ids)
                    self.log.info(
                        "%d of %d recordings of %s ready for download; waiting for %d",
                        ready,
                        asked,
                        self.chunk_name,
                        len(waiting),
                    )
                    if not waiting:
                        return self._ready(asked, ready, refused)

                remaining = self._remaining()
                if remaining <= 0:
                    return self._timed_out(asked, ready, waiting, refused, last_fault)
                await asyncio.sleep(min(next(waits), remaining))

    def _remaining(self) -> float:
        """Seconds left until the deadline; negative once it has passed."""
        return (self.deadline - pendulum.now("UTC")).total_seconds()

    def _ready(self, asked: int, ready: int, refused: list[str]) -> ReadinessEvent:
        message = f"All {ready} recordings of {self.chunk_name} accepted by the API are ready for download"
        if refused:
            message += f"; {len(refused)} recording IDs refused as invalid were not waited for"
        return ReadinessEvent(
            status=ReadinessStatus.READY, asked=asked, ready=ready, refused_ids=refused, message=message
        )

    def _timed_out(
        self, asked: int, ready: int, waiting: list[str], refused: list[str], last_fault: str | None
    ) -> ReadinessEvent:
        named = ", ".join(waiting[:NAMED_IN_MESSAGES]) + (" …" if len(waiting) > NAMED_IN_MESSAGES else "")
        message = (
            f"{len(waiting)} of {asked} recordings of {self.chunk_name} were still not ready for download "
            f"at the deadline {self.deadline.isoformat()}: {named}"
        )
        if last_fault:
            message += f" (the last check failed: {last_fault})"
        return ReadinessEvent(
            status=ReadinessStatus.TIMEOUT,
            asked=asked,
            ready=ready,
            waiting_ids=waiting,
            refused_ids=refused,
            message=message,
        )


def poll_waits(first: float, longest: float) -> Iterator[float]:
    """The waits between checks: ``first``, then each ``BACKOFF_FACTOR`` times longer, up to ``longest``."""
    wait = first
    while True:
        yield wait
        wait = min(wait * BACKOFF_FACTOR, longest)


def _moment(value: str) -> pendulum.DateTime:
    """Parse the deadline, which must name its UTC offset so every triggerer reads it alike."""
    try:
        parsed = pendulum.parse(value, tz=None, exact=True) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, pendulum.DateTime) or parsed.tzinfo is None:
        raise ValueError(f"deadline must be an ISO 8601 date and time with its UTC offset, got {value!r}")
    return parsed.in_timezone("UTC")


def _seconds(value: Any, name: str, *, zero_allowed: bool = False) -> float:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not (value >= 0 if zero_allowed else value > 0):
        adjective = "non-negative" if zero_allowed else "positive"
        raise ValueError(f"{name} must be a {adjective} number of seconds, got {value!r}")
    return float(value)
