"""OAuth access tokens for the GoToAssist API: obtained, cached, refreshed and masked.

:class:`TokenProvider` serves the hook on a worker (``requests``); :class:`AsyncTokenProvider` serves
the readiness trigger in the triggerer (``aiohttp``), never blocking its event loop. Both follow the
rules of :class:`_TokenRules`: which grant to use, what the token endpoint's answer means, which
token is still good and what is kept for the next task.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from dataclasses import dataclass

import aiohttp
import pendulum
import requests
from airflow.sdk.log import amask_secret, mask_secret

from gotoassist_recordings.api import ApiAnswer
from gotoassist_recordings.exceptions import (
    CredentialsRefusedError,
    GoToAssistTransientError,
    InvalidResponseError,
)
from gotoassist_recordings.retries import RetryPolicy
from gotoassist_recordings.settings import GoToAssistSettings
from gotoassist_recordings.token_cache import (
    AsyncTokenCache,
    KeptCredentials,
    MemoryTokenCache,
    ThreadedTokenCache,
    TokenCache,
)

log = logging.getLogger(__name__)

#: Longest time before its expiry at which an access token is replaced, so no call races the expiry.
EXPIRY_MARGIN_SECONDS = 60
#: Share of a short-lived token's lifetime kept as margin instead, so it is still used at all.
EXPIRY_MARGIN_SHARE = 0.2
#: How long to wait before looking a refused refresh token up again, in case another task has just
#: rotated it and is about to keep its successor.
ROTATION_RACE_WAIT_SECONDS = 1.0


@dataclass(frozen=True)
class AccessToken:
    """A bearer token and the moment it should be replaced (``None``: never, it is static)."""

    value: str
    renew_at: pendulum.DateTime | None

    def usable(self, now: pendulum.DateTime) -> bool:
        return self.renew_at is None or now < self.renew_at


def renewal_time(obtained_at: pendulum.DateTime, lifetime_seconds: int) -> pendulum.DateTime:
    """When a token valid for ``lifetime_seconds`` from ``obtained_at`` should be replaced."""
    margin = min(EXPIRY_MARGIN_SECONDS, lifetime_seconds * EXPIRY_MARGIN_SHARE)
    return obtained_at.add(seconds=lifetime_seconds - margin)


@dataclass(frozen=True)
class _Obtained:
    """What one grant brought: the token to use, what to keep, and the secrets to mask."""

    token: AccessToken
    kept: KeptCredentials
    secrets: list[str]


class _TokenRules:
    """The token rules both providers follow; they differ only in how they wait for I/O.

    :param settings: the validated connection.
    """

    def __init__(self, settings: GoToAssistSettings) -> None:
        self._settings = settings

    @property
    def can_renew(self) -> bool:
        """Whether a refused token can be replaced by asking the token endpoint again."""
        extra = self._settings.extra
        return bool(extra.refresh_token or extra.personal_access_token)

    def _connection_secrets(self) -> list[str]:
        extra = self._settings.extra
        secrets = (
            self._settings.client_secret,
            extra.refresh_token,
            extra.personal_access_token,
            extra.access_token,
        )
        return [secret for secret in secrets if secret]

    def _static_token(self) -> AccessToken:
        return AccessToken(self._settings.extra.access_token or "", renew_at=None)

    def _kept_token(self, kept: KeptCredentials | None, now: pendulum.DateTime) -> AccessToken | None:
        """An access token another task obtained and kept, if it is still good."""
        if not self.can_renew or kept is None or kept.access_token is None or kept.renew_at is None:
            return None
        token = AccessToken(kept.access_token, kept.renew_at)
        return token if token.usable(now) else None

    def _personal_access_token_grant(self) -> dict[str, str]:
        return {
            "grant_type": "personal_access_token",
            "pat": self._settings.extra.personal_access_token or "",
        }

    @staticmethod
    def _refresh_grant(refresh_token: str) -> dict[str, str]:
        return {"grant_type": "refresh_token", "refresh_token": refresh_token}

    def _newest_refresh_token(self, kept: KeptCredentials | None) -> str:
        if kept is not None and kept.refresh_token:
            return kept.refresh_token
        return self._settings.extra.refresh_token or ""

    @staticmethod
    def _without(kept: KeptCredentials | None, refused_token: str) -> KeptCredentials | None:
        """What to keep once ``refused_token`` was refused; ``None`` if the cache need not change."""
        if kept is not None and kept.access_token == refused_token:
            return KeptCredentials(refresh_token=kept.refresh_token)
        return None

    def _obtained(
        self, payload: dict, *, refresh_token: str | None, grant_name: str, rotated: bool = False
    ) -> _Obtained:
        now = pendulum.now("UTC")
        token = AccessToken(payload["access_token"], renewal_time(now, payload["expires_in"]))
        log.info(
            "Obtained a GoToAssist access token with the %s of connection %r, valid for %d s%s",
            grant_name,
            self._settings.conn_id,
            payload["expires_in"],
            "; the token endpoint issued a new refresh token, kept for the next refresh" if rotated else "",
        )
        return _Obtained(
            token,
            KeptCredentials(refresh_token, token.value, token.renew_at),
            [secret for secret in (token.value, refresh_token) if secret],
        )

    def _refreshed(self, payload: dict, refresh_token: str) -> _Obtained:
        issued = payload.get("refresh_token")
        return self._obtained(
            payload,
            refresh_token=issued or refresh_token,
            grant_name="refresh token",
            rotated=bool(issued) and issued != refresh_token,
        )

    def _read_token_answer(self, answer: ApiAnswer) -> dict:
        """Read the token endpoint's answer: the payload, or the error it means."""
        conn_id = self._settings.conn_id
        if answer.status == 429 or answer.status >= 500:
            raise GoToAssistTransientError("token", answer.status, answer.reason)
        if answer.status in (400, 401, 403):
            raise CredentialsRefusedError(
                "token",
                answer.status,
                f"the token endpoint refused the credentials of connection {conn_id!r} "
                f"({_oauth_error(answer)})",
            )
        if not answer.ok:
            raise CredentialsRefusedError("token", answer.status, answer.reason)
        try:
            payload = answer.json()
            expires_in = int(payload.get("expires_in", 3600))
            if not isinstance(payload.get("access_token"), str) or not payload["access_token"]:
                raise ValueError("no access_token")
        except (ValueError, AttributeError, TypeError):
            raise InvalidResponseError(
                "The token endpoint answered without a usable access_token and expires_in"
            ) from None
        return {**payload, "expires_in": expires_in}


class TokenProvider(_TokenRules):
    """Hands out a valid access token for one connection, refreshing it when needed.

    The grant is chosen from the connection: a refresh token, else a personal access token; a
    static access token is used as is and cannot be renewed. What the token endpoint hands out
    (the access token and, when it rotates them, a new refresh token) goes to ``cache``, from
    which the next task or run of any worker starts.

    :param settings: the validated connection.
    :param retry_policy: retries of the token endpoint on transient faults.
    :param cache: where obtained credentials are kept; in this process only when ``None``.
    """

    def __init__(
        self,
        settings: GoToAssistSettings,
        *,
        retry_policy: RetryPolicy,
        cache: TokenCache | None = None,
    ) -> None:
        super().__init__(settings)
        self._retry_policy = retry_policy
        self._cache = cache or MemoryTokenCache()
        self._lock = threading.Lock()
        self._token: AccessToken | None = None
        for secret in self._connection_secrets():
            mask_secret(secret)

    def get(self) -> str:
        """Return an access token that is not about to expire, as far as known."""
        with self._lock:
            now = pendulum.now("UTC")
            if self._token is None or not self._token.usable(now):
                self._token = self._kept_token(self._load(), now) or self._obtain()
            return self._token.value

    def discard(self, refused_token: str) -> None:
        """Forget a token the API refused, so the next :meth:`get` obtains a new one."""
        with self._lock:
            if self._token is not None and self._token.value == refused_token:
                self._token = None
            kept = self._without(self._cache.load(), refused_token)
            if kept is not None:
                self._cache.save(kept)

    def _load(self) -> KeptCredentials | None:
        return self._cache.load() if self.can_renew else None

    def _obtain(self) -> AccessToken:
        if not self.can_renew:
            return self._static_token()
        if not self._settings.extra.refresh_token:
            payload = self._grant(self._personal_access_token_grant())
            return self._keep(self._obtained(payload, refresh_token=None, grant_name="personal access token"))

        refresh_token = self._newest_refresh_token(self._cache.load())
        try:
            payload = self._grant(self._refresh_grant(refresh_token))
        except CredentialsRefusedError:
            # A worker refreshing at the same moment may have rotated the refresh token; its
            # successor appears in the cache as soon as that worker has kept it.
            time.sleep(ROTATION_RACE_WAIT_SECONDS)
            newer = self._newest_refresh_token(self._cache.load())
            if newer == refresh_token:
                raise
            log.info("The refresh token was rotated by another task meanwhile; using the new one")
            refresh_token = newer
            payload = self._grant(self._refresh_grant(refresh_token))
        return self._keep(self._refreshed(payload, refresh_token))

    def _keep(self, obtained: _Obtained) -> AccessToken:
        for secret in obtained.secrets:
            mask_secret(secret)
        self._cache.save(obtained.kept)
        return obtained.token

    def _grant(self, grant: dict[str, str]) -> dict:
        return self._retry_policy.call("token request", functools.partial(self._request_token, grant), log)

    def _request_token(self, grant: dict[str, str]) -> dict:
        settings = self._settings
        response = requests.post(
            settings.extra.token_url,
            data=grant,
            auth=(settings.client_id or "", settings.client_secret or ""),
            headers={"Accept": "application/json"},
            timeout=settings.extra.timeout,
        )
        return self._read_token_answer(
            ApiAnswer.of(response.status_code, response.reason, response.headers.items(), response.content)
        )


class AsyncTokenProvider(_TokenRules):
    """:class:`TokenProvider` for code running in an event loop, such as a trigger.

    The token endpoint is called with ``aiohttp``, secrets are registered with the masker through
    its async call, and the kept credentials are read and written through an
    :class:`~gotoassist_recordings.token_cache.AsyncTokenCache`, so nothing blocks the loop.

    :param settings: the validated connection.
    :param session: the ``aiohttp`` session to call the token endpoint with.
    :param retry_policy: retries of the token endpoint on transient faults.
    :param cache: where obtained credentials are kept; in this process only when ``None``.
    """

    def __init__(
        self,
        settings: GoToAssistSettings,
        *,
        session: aiohttp.ClientSession,
        retry_policy: RetryPolicy,
        cache: AsyncTokenCache | None = None,
    ) -> None:
        super().__init__(settings)
        self._session = session
        self._retry_policy = retry_policy
        self._cache = cache or ThreadedTokenCache(MemoryTokenCache())
        self._lock = asyncio.Lock()
        self._token: AccessToken | None = None
        self._masked = False

    async def get(self) -> str:
        """Return an access token that is not about to expire, as far as known."""
        async with self._lock:
            if not self._masked:
                for secret in self._connection_secrets():
                    await amask_secret(secret)
                self._masked = True
            now = pendulum.now("UTC")
            if self._token is None or not self._token.usable(now):
                kept = await self._cache.load() if self.can_renew else None
                self._token = self._kept_token(kept, now) or await self._obtain()
            return self._token.value

    async def discard(self, refused_token: str) -> None:
        """Forget a token the API refused, so the next :meth:`get` obtains a new one."""
        async with self._lock:
            if self._token is not None and self._token.value == refused_token:
                self._token = None
            kept = self._without(await self._cache.load(), refused_token)
            if kept is not None:
                await self._cache.save(kept)

    async def _obtain(self) -> AccessToken:
        if not self.can_renew:
            return self._static_token()
        if not self._settings.extra.refresh_token:
            payload = await self._grant(self._personal_access_token_grant())
            obtained = self._obtained(payload, refresh_token=None, grant_name="personal access token")
            return await self._keep(obtained)

        refresh_token = self._newest_refresh_token(await self._cache.load())
        try:
            payload = await self._grant(self._refresh_grant(refresh_token))
        except CredentialsRefusedError:
            # As in TokenProvider: another task may have rotated the refresh token just now.
            await asyncio.sleep(ROTATION_RACE_WAIT_SECONDS)
            newer = self._newest_refresh_token(await self._cache.load())
            if newer == refresh_token:
                raise
            log.info("The refresh token was rotated by another task meanwhile; using the new one")
            refresh_token = newer
            payload = await self._grant(self._refresh_grant(refresh_token))
        return await self._keep(self._refreshed(payload, refresh_token))

    async def _keep(self, obtained: _Obtained) -> AccessToken:
        for secret in obtained.secrets:
            await amask_secret(secret)
        await self._cache.save(obtained.kept)
        return obtained.token

    async def _grant(self, grant: dict[str, str]) -> dict:
        return await self._retry_policy.acall(
            "token request", functools.partial(self._request_token, grant), log
        )

    async def _request_token(self, grant: dict[str, str]) -> dict:
        settings = self._settings
        async with self._session.post(
            settings.extra.token_url,
            data=grant,
            headers={
                "Accept": "application/json",
                # Latin-1, as requests encodes HTTP Basic credentials in TokenProvider.
                "Authorization": aiohttp.encode_basic_auth(
                    settings.client_id or "", settings.client_secret or "", encoding="latin1"
                ),
            },
            timeout=aiohttp.ClientTimeout(total=settings.extra.timeout),
        ) as response:
            body = await response.read()
        return self._read_token_answer(
            ApiAnswer.of(response.status, response.reason, response.headers.items(), body)
        )


def _oauth_error(answer: ApiAnswer) -> str:
    """Return the OAuth error code of a refusal, never its full body (it may echo a secret)."""
    try:
        code = answer.json().get("error")
    except (ValueError, AttributeError):
        code = None
    return code if isinstance(code, str) and code.replace("_", "").isalnum() else f"HTTP {answer.status}"
