"""OAuth token grants and access-token checks.

The token endpoint imitates the GoTo authentication service: a form-encoded ``POST`` with the client
credentials in HTTP Basic authentication, granting access tokens for a refresh token or a personal
access token. Errors follow RFC 6749: ``invalid_client`` (401), ``invalid_request``,
``invalid_grant`` and ``unsupported_grant_type`` (400).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from typing import Any
from urllib.parse import parse_qs

from fastapi import Request

from gotoassist_api_server.clock import now_timestamp
from gotoassist_api_server.errors import ApiError
from gotoassist_api_server.settings import AuthScheme, ServerSettings
from gotoassist_api_server.store import RecordingStore

#: The scope reported with every access token.
TOKEN_SCOPE = "support:"

_BEARER_HEADER = re.compile(r"Bearer\s+(?P<token>\S+)", re.IGNORECASE)
_OAUTH_HEADER = re.compile(r"OAuth\s+oauth_token=(?P<quote>\"?)(?P<token>[^\s\"]+)(?P=quote)", re.IGNORECASE)


class OAuthError(ApiError):
    """An error of the token endpoint, shaped as RFC 6749 prescribes.

    :param status_code: the HTTP status.
    :param error: the RFC 6749 error code.
    :param description: the ``error_description`` member, if any.
    """

    def __init__(self, status_code: int, error: str, description: str | None = None) -> None:
        details = {} if description is None else {"error_description": description}
        super().__init__(status_code, error, **details)
        self.headers = {"Cache-Control": "no-store"}


def _client_credentials(authorization: str | None) -> tuple[str, str]:
    """Read the client ID and secret from an HTTP Basic ``Authorization`` header.

    :param authorization: the header value, if sent.
    :return: the client ID and secret.
    :raises OAuthError: ``invalid_client`` if the header is missing or malformed.
    """
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise _invalid_client()
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as error:
        raise _invalid_client() from error
    client_id, separator, client_secret = decoded.partition(":")
    if not separator:
        raise _invalid_client()
    return client_id, client_secret


def _invalid_client() -> OAuthError:
    error = OAuthError(401, "invalid_client")
    error.headers["WWW-Authenticate"] = 'Basic realm="oauth"'
    return error


def _single_form_value(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name, [])
    if len(values) != 1 or not values[0]:
        raise OAuthError(400, "invalid_request", f"exactly one non-empty {name} is required")
    return values[0]


def grant_token(
    store: RecordingStore, settings: ServerSettings, authorization: str | None, form_body: bytes
) -> dict[str, Any]:
    """Answer a token request: check the client, apply the grant, issue an access token.

    :param store: the server state.
    :param settings: the behaviour options (token lifetime, refresh-token rotation).
    :param authorization: the request's ``Authorization`` header, if sent.
    :param form_body: the raw ``application/x-www-form-urlencoded`` body.
    :return: the JSON token response.
    :raises OAuthError: if the client, the request or the grant is not acceptable.
    """
    client_id, client_secret = _client_credentials(authorization)
    if not store.client_matches(client_id, client_secret):
        raise _invalid_client()

    try:
        form = parse_qs(form_body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as error:
        raise OAuthError(400, "invalid_request", "the body is not UTF-8 form data") from error
    grant_type = _single_form_value(form, "grant_type")
    now = now_timestamp()

    response: dict[str, Any] = {}
    if grant_type == "refresh_token":
        refresh_token = _single_form_value(form, "refresh_token")
        if settings.rotate_refresh_tokens:
            new_refresh_token = secrets.token_urlsafe(32)
            if not store.rotate_refresh_token(refresh_token, new_refresh_token, client_id, now):
                raise OAuthError(400, "invalid_grant", "the refresh token is unknown, revoked or not yours")
            response["refresh_token"] = new_refresh_token
        elif not store.is_active_refresh_token(refresh_token, client_id):
            raise OAuthError(400, "invalid_grant", "the refresh token is unknown, revoked or not yours")
    elif grant_type == "personal_access_token":
        if not store.is_personal_access_token(_single_form_value(form, "pat")):
            raise OAuthError(400, "invalid_grant", "the personal access token is unknown")
    else:
        raise OAuthError(
            400,
            "unsupported_grant_type",
            f"grant_type {grant_type!r} is not supported; use refresh_token or personal_access_token",
        )

    access_token = secrets.token_urlsafe(32)
    store.save_access_token(access_token, client_id, issued_at=now, expires_at=now + settings.token_ttl)
    return {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": settings.token_ttl,
        "scope": TOKEN_SCOPE,
        **response,
    }


def access_token_from_header(authorization: str | None, scheme: AuthScheme) -> str | None:
    """Extract the access token from an ``Authorization`` header of the expected form.

    :param authorization: the header value, if sent.
    :param scheme: the form the server accepts.
    :return: the token, or ``None`` if the header is missing or of another form.
    """
    if authorization is None:
        return None
    pattern = _BEARER_HEADER if scheme is AuthScheme.BEARER else _OAUTH_HEADER
    match = pattern.fullmatch(authorization.strip())
    return match.group("token") if match else None


def require_access_token(request: Request) -> None:
    """Reject a request to the recordings API that lacks a valid access token.

    Used as a dependency of every recordings route, so it runs before any parameter is looked at.

    :param request: the incoming request.
    :raises ApiError: with the configured bad-token status if the header is missing, of the wrong
        form, or names an unknown or expired token.
    """
    settings: ServerSettings = request.app.state.settings
    store: RecordingStore = request.app.state.store
    token = access_token_from_header(request.headers.get("authorization"), settings.auth_scheme)
    if token is None or not store.is_valid_access_token(token, now_timestamp()):
        raise ApiError(settings.bad_token_status, "invalid authorization header")
