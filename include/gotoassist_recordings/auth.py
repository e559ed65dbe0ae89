"""OAuth access tokens for the GoToAssist API: obtained, cached, refreshed and masked."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
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

log = logging.getLogger(__name__)

#: A token this close to its expiry is replaced before use, so no call races the expiry.
EXPIRY_MARGIN_SECONDS = 60


@dataclass(frozen=True)
class AccessToken:
    """A bearer token and the moment it stops working (``None``: unknown, never refreshed early)."""

    value: str
    expires_at: pendulum.DateTime | None

    def usable(self, now: pendulum.DateTime) -> bool:
        return self.expires_at is None or now.add(seconds=EXPIRY_MARGIN_SECONDS) < self.expires_at


class TokenProvider:
    """Hands out a valid access token for one connection, refreshing it when needed.

    The grant is chosen from the connection: a refresh token, else a personal access
    token; a static access token is used as is and cannot be renewed.

    :param settings: the validated connection.
    :param retry_policy: retries of the token endpoint on transient faults.
    :param refresh_token_rotated: called with the new refresh token when the token endpoint
        issues one, so it can be kept for the next refresh.
    """

    def __init__(
        self,
        settings: GoToAssistSettings,
        *,
        retry_policy: RetryPolicy,
        refresh_token_rotated: Callable[[str], None] | None = None,
    ) -> None:
        self._settings = settings
        self._retry_policy = retry_policy
        self._refresh_token_rotated = refresh_token_rotated
        self._refresh_token = settings.extra.refresh_token
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
        return bool(self._refresh_token or self._settings.extra.personal_access_token)

    def get(self) -> str:
        """Return an access token that is valid for at least another minute, as far as known."""
        with self._lock:
            if self._token is None or not self._token.usable(pendulum.now("UTC")):
                self._token = self._obtain()
            return self._token.value

    def discard(self, refused_token: str) -> None:
        """Forget a token the API refused, so the next :meth:`get` obtains a new one."""
        with self._lock:
            if self._token is not None and self._token.value == refused_token:
                self._token = None

    def _obtain(self) -> AccessToken:
        extra = self._settings.extra
        if extra.access_token and not self.can_renew:
            return AccessToken(extra.access_token, expires_at=None)
        if self._refresh_token:
            grant = {"grant_type": "refresh_token", "refresh_token": self._refresh_token}
            grant_name = "refresh token"
        else:
            grant = {"grant_type": "personal_access_token", "pat": extra.personal_access_token or ""}
            grant_name = "personal access token"
        payload = self._retry_policy.call("token request", lambda: self._request_token(grant), log)

        token = AccessToken(payload["access_token"], pendulum.now("UTC").add(seconds=payload["expires_in"]))
        mask_secret(token.value)
        new_refresh_token = payload.get("refresh_token")
        if new_refresh_token and new_refresh_token != self._refresh_token and self._refresh_token:
            mask_secret(new_refresh_token)
            self._refresh_token = new_refresh_token
            if self._refresh_token_rotated is not None:
                self._refresh_token_rotated(new_refresh_token)
        log.info(
            "Obtained a GoToAssist access token with the %s of connection %r, valid for %d s",
            grant_name,
            self._settings.conn_id,
            payload["expires_in"],
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
