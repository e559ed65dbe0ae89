"""Where the credentials obtained at run time are kept between tasks: an Airflow Variable.

The token endpoint may answer a refresh with a new refresh token and stop accepting the old one.
The connection still holds the old one, so the newest must be kept somewhere every worker and every
later run reads: an Airflow Variable, which Airflow stores encrypted when a Fernet key is set. The
access token is kept beside it, so the many short tasks of a run share one token instead of each
asking the token endpoint for its own.

The Variable remembers a fingerprint of the connection's own credentials. When someone puts new
credentials in the connection (after a new login, say), the fingerprint no longer matches and the
kept values are ignored, so an edited connection always wins over what an older run kept.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any, Protocol

import pendulum
from airflow.sdk import Variable
from airflow.sdk.log import mask_secret
from asgiref.sync import sync_to_async

log = logging.getLogger(__name__)

#: Prefix of the Variable keys; the connection ID follows. Airflow masks values of keys naming tokens.
VARIABLE_PREFIX = "gotoassist_token__"


@dataclass(frozen=True)
class KeptCredentials:
    """The newest refresh token of a connection, and the access token last obtained with it.

    :param refresh_token: the refresh token to use next; ``None`` for grants without one.
    :param access_token: the access token last obtained, if any.
    :param renew_at: when that access token should be replaced, a little before it expires.
    """

    refresh_token: str | None = None
    access_token: str | None = None
    renew_at: pendulum.DateTime | None = None


class TokenCache(Protocol):
    """Keeps :class:`KeptCredentials` for one connection."""

    def load(self) -> KeptCredentials | None:
        """Return what was kept for the connection's current credentials, or ``None``."""

    def save(self, credentials: KeptCredentials) -> None:
        """Keep ``credentials`` for later tasks and runs."""


class AsyncTokenCache(Protocol):
    """Keeps :class:`KeptCredentials` for one connection, for code running in an event loop."""

    async def load(self) -> KeptCredentials | None:
        """Return what was kept for the connection's current credentials, or ``None``."""

    async def save(self, credentials: KeptCredentials) -> None:
        """Keep ``credentials`` for later tasks and runs."""


class MemoryTokenCache:
    """Keeps credentials in this process only: for a hook used outside Airflow tasks, and tests."""

    def __init__(self) -> None:
        self.kept: KeptCredentials | None = None

    def load(self) -> KeptCredentials | None:
        return self.kept

    def save(self, credentials: KeptCredentials) -> None:
        self.kept = credentials


def fingerprint(*secrets: str | None) -> str:
    """A one-way digest of the connection's own credentials, to notice when they are edited."""
    digest = hashlib.sha256()
    for secret in secrets:
        digest.update((secret or "").encode())
        digest.update(b"\0")
    return digest.hexdigest()


class VariableTokenCache:
    """Keeps credentials in the Airflow Variable ``gotoassist_token__<conn_id>``.

    Variables can be written only from inside a running task. Elsewhere (a hook used in a script)
    the cache falls back to memory and says so once, at WARNING, when it is first written to.

    :param conn_id: the connection whose credentials are kept.
    :param connection_fingerprint: :func:`fingerprint` of the connection's own credentials.
    """

    def __init__(self, conn_id: str, connection_fingerprint: str) -> None:
        self.key = f"{VARIABLE_PREFIX}{conn_id}"
        self.conn_id = conn_id
        self.connection_fingerprint = connection_fingerprint
        self._fallback: MemoryTokenCache | None = None

    def load(self) -> KeptCredentials | None:
        if self._fallback is not None:
            return self._fallback.load()
        try:
            value = Variable.get(self.key, default=None, deserialize_json=True)
        except Exception:
            log.warning(
                "Could not read Variable %r; using the connection's credentials", self.key, exc_info=True
            )
            return None
        return self._parse(value)

    def save(self, credentials: KeptCredentials) -> None:
        if self._fallback is not None:
            self._fallback.save(credentials)
            return
        value = {
            "fingerprint": self.connection_fingerprint,
            "refresh_token": credentials.refresh_token,
            "access_token": credentials.access_token,
            "renew_at": credentials.renew_at.isoformat() if credentials.renew_at else None,
        }
        try:
            Variable.set(
                self.key,
                value,
                description=(
                    f"Newest credentials of GoToAssist connection {self.conn_id!r}, kept by its hook. "
                    "Delete it to start again from the connection's own."
                ),
                serialize_json=True,
            )
        except Exception as error:
            log.warning(
                "Could not write Variable %r (%s): credentials obtained now are kept in this process "
                "only. Outside an Airflow task this is expected; a rotated refresh token must then be "
                "copied into the connection by hand.",
                self.key,
                type(error).__name__,
            )
            self._fallback = MemoryTokenCache()
            self._fallback.save(credentials)

    def _parse(self, value: Any) -> KeptCredentials | None:
        if value is None:
            return None
        if not isinstance(value, dict) or value.get("fingerprint") != self.connection_fingerprint:
            log.info("Variable %r was kept for other credentials of the connection; ignoring it", self.key)
            return None
        refresh_token, access_token = value.get("refresh_token"), value.get("access_token")
        for secret in (refresh_token, access_token):
            if isinstance(secret, str) and secret:
                mask_secret(secret)
        renew_at = None
        if isinstance(value.get("renew_at"), str):
            parsed = pendulum.parse(value["renew_at"])
            renew_at = parsed if isinstance(parsed, pendulum.DateTime) else None
        return KeptCredentials(
            refresh_token=refresh_token if isinstance(refresh_token, str) and refresh_token else None,
            access_token=access_token if isinstance(access_token, str) and access_token else None,
            renew_at=renew_at,
        )


class ThreadedTokenCache:
    """An :class:`AsyncTokenCache` that runs a :class:`TokenCache`'s reads and writes in a worker thread.

    Airflow's task SDK reads and writes Variables synchronously only. Like Airflow's own async
    connection lookup, the call is handed to a thread with ``asgiref``'s ``sync_to_async``, so the
    event loop (the triggerer's, shared by every trigger) goes on while a Variable is read or written.

    :param cache: the cache to use, e.g. a :class:`VariableTokenCache`.
    """

    def __init__(self, cache: TokenCache) -> None:
        self.cache = cache

    async def load(self) -> KeptCredentials | None:
        return await sync_to_async(self.cache.load)()

    async def save(self, credentials: KeptCredentials) -> None:
        await sync_to_async(self.cache.save)(credentials)
