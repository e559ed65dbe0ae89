"""One request budget for every process that calls the GoToAssist API with the same connection.

The API allows 10 requests per second and answers 429 beyond that. An Airflow pool bounds how
many tasks call it at once, but not how fast each of them calls, so every request to the API
also takes one of ``max_requests_per_second`` places in a sliding window of a little over a
second, kept in a store the processes share (pyrate-limiter does the bookkeeping):

- ``sqlite:///<path>``: a SQLite file with a file lock, for every process on one machine. The
  default is a file in the system's temporary folder, so the tasks, triggers and scripts of one
  machine share their budget without any set-up.
- ``redis://host:port/db``: a Redis server, for workers spread over several machines (the Celery
  broker's Redis will do); needs the ``redis`` package.
- ``memory``: this process alone, for scripts and tests that run by themselves.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pyrate_limiter import InMemoryBucket, Limiter, Rate, RedisBucket, SQLiteBucket

from gotoassist_recordings.exceptions import GoToAssistConfigError

#: Slack added to each computed wait, so a request is never sent a hair early.
_WAIT_MARGIN_MS = 20
#: The window the budget is counted over. Requests reach the server a varying few milliseconds after
#: they leave (more on a busy machine), so a window of exactly one second at the client can show as
#: one request too many in some second at the server; a tenth of a second more absorbs that.
_WINDOW_MS = 1100


class RequestBudget:
    """Let requests through at no more than ``per_second`` a second, across every sharer of ``store``.

    :param per_second: requests allowed in any one-second window.
    :param store: where the window is kept: ``memory``, ``sqlite:///<path>`` or ``redis://...``.
    :param key: whose budget it is, e.g. the API's URL and the OAuth client; other keys have their own.
    """

    def __init__(self, per_second: int, store: str, key: str) -> None:
        if per_second < 1:
            raise GoToAssistConfigError(f"max_requests_per_second must be at least 1, got {per_second}")
        self.per_second = per_second
        self.store = store
        self.key = key
        # Table and key names allow few characters; a digest keeps distinct keys apart.
        self._name = "gotoassist_" + hashlib.sha256(key.encode()).hexdigest()[:16]
        self._limiter = Limiter(self._bucket([Rate(per_second, _WINDOW_MS)]), buffer_ms=_WAIT_MARGIN_MS)

    def _bucket(self, rates: list[Rate]):
        if self.store == "memory":
            return InMemoryBucket(rates)
        if self.store.startswith("sqlite:///"):
            path = Path(self.store.removeprefix("sqlite:///"))
            if not path.is_absolute():
                raise GoToAssistConfigError(
                    f"rate_limit_store {self.store!r} must name an absolute path: sqlite:////var/lib/budget.sqlite"
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            return SQLiteBucket.init_from_file(rates, table=self._name, db_path=str(path), use_file_lock=True)
        if self.store.startswith(("redis://", "rediss://")):
            try:
                import redis
            except ImportError:
                raise GoToAssistConfigError(
                    "rate_limit_store names a Redis server, but the redis package is not installed"
                ) from None
            return RedisBucket.init(rates, redis.Redis.from_url(self.store), self._name)
        raise GoToAssistConfigError(
            f"rate_limit_store must be 'memory', 'sqlite:///<path>' or 'redis://...', got {self.store!r}"
        )

    def take(self) -> None:
        """Wait until one more request fits in the budget, and count it."""
        self._limiter.try_acquire(self._name, blocking=True)

    def __repr__(self) -> str:
        return f"RequestBudget({self.per_second}/s for {self.key!r} in {self.store})"
