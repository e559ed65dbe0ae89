"""When and how calls to GoToAssist are retried.

Only faults that a later attempt can fix are retried: connection errors, timeouts,
answers cut short, HTTP 429 and 5xx. Waits grow exponentially with jitter, a
``Retry-After`` the server sends is honoured, and both the number of attempts and the
total time are bounded. The same rules hold for the hook's ``requests`` calls and the
trigger's ``aiohttp`` ones.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
import requests
import tenacity

from gotoassist_recordings.exceptions import GoToAssistTransientError, IncompleteDownloadError

T = TypeVar("T")

TRANSIENT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    # The connection broke after the headers, so the body is shorter than announced.
    requests.exceptions.ChunkedEncodingError,
    IncompleteDownloadError,
    # aiohttp: refused, reset or dropped connections, and answers cut off mid-body.
    aiohttp.ClientConnectionError,
    aiohttp.ClientPayloadError,
    # aiohttp's and asyncio's timeouts.
    TimeoutError,
    GoToAssistTransientError,
)


class RetryPolicy:
    """Bounds of the retries around one API call.

    :param max_attempts: attempts in all, the first one included.
    :param initial_wait: seconds before the first retry; later waits double.
    :param max_wait: longest single wait, a ``Retry-After`` header included.
    :param max_total: seconds after which no further attempt starts.
    """

    def __init__(
        self,
        *,
        max_attempts: int = 8,
        initial_wait: float = 0.5,
        max_wait: float = 30.0,
        max_total: float = 300.0,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self.max_attempts = max_attempts
        self.initial_wait = initial_wait
        self.max_wait = max_wait
        self.max_total = max_total

    def call(self, what: str, func: Callable[[], T], log: logging.Logger) -> T:
        """Run ``func`` until it succeeds, fails for good, or the bounds are reached.

        :param what: the call and its subject, for the warning logged before each retry.
        """
        return tenacity.Retrying(**self._rules(what, log))(func)

    async def acall(self, what: str, func: Callable[[], Awaitable[T]], log: logging.Logger) -> T:
        """Await ``func`` under the same rules as :meth:`call`, sleeping without blocking the loop."""
        return await tenacity.AsyncRetrying(**self._rules(what, log))(func)

    def _rules(self, what: str, log: logging.Logger) -> dict[str, Any]:
        backoff = tenacity.wait_exponential_jitter(multiplier=self.initial_wait, max=self.max_wait)

        def wait(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            retry_after = getattr(error, "retry_after", None)
            if retry_after is not None:
                return min(max(retry_after, 0.0), self.max_wait)
            return backoff(state)

        def warn(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning(
                "GoToAssist %s failed on attempt %d of %d (%s); retrying in %.1f s",
                what,
                state.attempt_number,
                self.max_attempts,
                describe(error),
                state.upcoming_sleep,
            )

        return {
            "retry": tenacity.retry_if_exception_type(TRANSIENT_ERRORS),
            "wait": wait,
            "stop": tenacity.stop_after_attempt(self.max_attempts)
            | tenacity.stop_after_delay(self.max_total),
            "before_sleep": warn,
            "reraise": True,
        }


def describe(error: BaseException | None) -> str:
    """Name a transient fault for a log message, without its details (they may hold a URL)."""
    if isinstance(error, GoToAssistTransientError):
        return f"HTTP {error.status}"
    if isinstance(error, (requests.Timeout, TimeoutError)):
        return "timed out"
    if isinstance(
        error, (requests.ConnectionError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)
    ):
        return "connection failed"
    if isinstance(error, (requests.exceptions.ChunkedEncodingError, IncompleteDownloadError)):
        return "answer cut short"
    return type(error).__name__
