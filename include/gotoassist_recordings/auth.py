"""OAuth access tokens for the GoToAssist API: obtained, cached, refreshed and masked."""

from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import dataclass

import pendulum
import requests
from airflow.sdk.log import mask_secret

from gotoassist_recordings.exceptions import (
    CredentialsRefusedError,
    GoToAssistTransientError,
    InvalidResponseError,
)
from gotoassist_recordings.retries import RetryPolicy
from gotoassist_recordings.settings import GoToAssistSettings
from gotoassist_recordings.token_cache import KeptCredentials, MemoryTokenCache, TokenCache

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


class TokenProvider:
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
        self._settings = settings
        self._retry_policy = retry_policy
        self._cache = cache or MemoryTokenCache()
        self._lock = threading.Lock()
        self._token: AccessToken | None = None
        for secret in (
            settings.client_secret,
            settings.extra.refresh_token,
            settings.extra.personal_access_token,
            settings.extra.access_token,
        ):
            if secret:
                mask_secret(secret)

    @property
    def can_renew(self) -> bool:
        """Whether a refused token can be replaced by asking the token endpoint again."""
        extra = self._settings.extra
        return bool(extra.refresh_token or extra.personal_access_token)

    def get(self) -> str:
        """Return an access token that is not about to expire, as far as known."""
        with self._lock:
            now = pendulum.now("UTC")
            if self._token is None or not self._token.usable(now):
                self._token = self._kept_token(now) or self._obtain()
            return self._token.value

    def discard(self, refused_token: str) -> None:
        """Forget a token the API refused, so the next :meth:`get` obtains a new one."""
        with self._lock:
            if self._token is not None and self._token.value == refused_token:
                self._token = None
            kept = self._cache.load()
            if kept is not None and kept.access_token == refused_token:
                self._cache.save(KeptCredentials(refresh_token=kept.refresh_token))

    def _kept_token(self, now: pendulum.DateTime) -> AccessToken | None:
        """An access token another task obtained and kept, if it is still good."""
        if not self.can_renew:
            return None
        kept = self._cache.load()
        if kept is None or kept.access_token is None or kept.renew_at is None:
            return None
        token = AccessToken(kept.access_token, kept.renew_at)
        return token if token.usable(now) else None

    def _obtain(self) -> AccessToken:
        extra = self._settings.extra
        if not self.can_renew:
            return AccessToken(extra.access_token or "", renew_at=None)
        if not extra.refresh_token:
            grant = {"grant_type": "personal_access_token", "pat": extra.personal_access_token or ""}
            payload = self._grant(grant)
            return self._keep(payload, refresh_token=None, grant_name="personal access token")

        refresh_token = self._newest_refresh_token()
        grant = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        try:
            payload = self._grant(grant)
        except CredentialsRefusedError:
            # A worker refreshing at the same moment may have rotated the refresh token; its
            # successor appears in the cache as soon as that worker has kept it.
            time.sleep(ROTATION_RACE_WAIT_SECONDS)
            newer = self._newest_refresh_token()
            if newer == refresh_token:
                raise
            log.info("The refresh token was rotated by another task meanwhile; using the new one")
            refresh_token = newer
            grant = {"grant_type": "refresh_token", "refresh_token": refresh_token}
            payload = self._grant(grant)
        issued = payload.get("refresh_token")
        return self._keep(
            payload,
            refresh_token=issued or refresh_token,
            grant_name="refresh token",
            rotated=bool(issued) and issued != refresh_token,
        )

    def _grant(self, grant: dict[str, str]) -> dict:
        return self._retry_policy.call("token request", functools.partial(self._request_token, grant), log)

    def _newest_refresh_token(self) -> str:
        kept = self._cache.load()
        if kept is not None and kept.refresh_token:
            return kept.refresh_token
        return self._settings.extra.refresh_token or ""

    def _keep(
        self, payload: dict, *, refresh_token: str | None, grant_name: str, rotated: bool = False
    ) -> AccessToken:
        now = pendulum.now("UTC")
        token = AccessToken(payload["access_token"], renewal_time(now, payload["expires_in"]))
        mask_secret(token.value)
        if refresh_token:
            mask_secret(refresh_token)
        self._cache.save(KeptCredentials(refresh_token, token.value, token.renew_at))
        log.info(
            "Obtained a GoToAssist access token with the %s of connection %r, valid for %d s%s",
            grant_name,
            self._settings.conn_id,
            payload["expires_in"],
            "; the token endpoint issued a new refresh token, kept for the next refresh" if rotated else "",
        )
        return token

    def _request_token(self, grant: dict[str, str]) -> dict:
        settings = self._settings
        response = requests.post(
            settings.extra.token_url,
            data=grant,
            auth=(settings.client_id or "", settings.client_secret or ""),
            headers={"Accept": "application/json"},
            timeout=settings.extra.timeout,
        )
        if response.status_code == 429 or response.status_code >= 500:
            raise GoToAssistTransientError("token", response.status_code, response.reason)
        if response.status_code in (400, 401, 403):
            raise CredentialsRefusedError(
                "token",
                response.status_code,
                f"the token endpoint refused the credentials of connection {settings.conn_id!r} "
                f"({_oauth_error(response)})",
            )
        if not response.ok:
            raise CredentialsRefusedError("token", response.status_code, response.reason)
        try:
            payload = response.json()
            expires_in = int(payload.get("expires_in", 3600))
            if not isinstance(payload.get("access_token"), str) or not payload["access_token"]:
                raise ValueError("no access_token")
        except (ValueError, AttributeError, TypeError):
            raise InvalidResponseError(
                "The token endpoint answered without a usable access_token and expires_in"
            ) from None
        return {**payload, "expires_in": expires_in}


def _oauth_error(response: requests.Response) -> str:
    """Return the OAuth error code of a refusal, never its full body (it may echo a secret)."""
    try:
        code = response.json().get("error")
    except (ValueError, AttributeError):
        code = None
    return (
        code if isinstance(code, str) and code.replace("_", "").isalnum() else f"HTTP {response.status_code}"
    )
