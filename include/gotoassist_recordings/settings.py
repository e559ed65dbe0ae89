"""What a ``gotoassist`` Airflow connection holds, validated before any call is made."""

from __future__ import annotations

import difflib
import enum
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from gotoassist_recordings.exceptions import GoToAssistConfigError
from gotoassist_recordings.models import OptionalDigits, describe_problems

if TYPE_CHECKING:
    from airflow.sdk import Connection

#: The connection the hooks, operators, sensor and trigger use unless told another.
DEFAULT_CONN_ID = "gotoassist_default"
DEFAULT_API_HOST = "https://api.getgo.com"
DEFAULT_TOKEN_URL = "https://authentication.logmeininc.com/oauth/token"
DEFAULT_TIMEOUT_SECONDS = 30.0
#: What Airflow shows in place of a value it takes for a secret.
MASKED_VALUE = "***"
#: The API's documented rate limit.
DEFAULT_REQUESTS_PER_SECOND = 10
#: Where the request budget is kept unless told otherwise: a file every process of the machine sees.
DEFAULT_RATE_LIMIT_STORE = f"sqlite:///{Path(tempfile.gettempdir()) / 'gotoassist-request-budget.sqlite'}"


class AuthScheme(enum.StrEnum):
    """How the access token is put in the ``Authorization`` header."""

    BEARER = "bearer"
    """``Authorization: Bearer <token>``, as current GoTo APIs expect."""
    OAUTH = "oauth"
    """``Authorization: OAuth oauth_token=<token>``, as older GoToAssist clients sent it."""


class IdTransport(enum.StrEnum):
    """How the recording IDs of a transcode, archive or download-links call travel."""

    PATH = "path"
    """Comma-separated in the last URL path segment, as the API document shows."""
    JSON = "json"
    """As a JSON body ``{"recordingIds": [...]}``."""
    QUERY = "query"
    """As one comma-separated ``recordingIds`` query parameter."""
    QUERY_REPEATED = "query-repeated"
    """As one ``recordingIds`` query parameter per ID."""


Secret = Annotated[str | None, StringConstraints(min_length=1)]


class ConnectionExtra(BaseModel):
    """The ``extra`` of a ``gotoassist`` connection. Unknown keys are refused, so typos surface."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False, defer_build=True)

    refresh_token: Secret = None
    personal_access_token: Secret = None
    access_token: Secret = None
    token_url: str = DEFAULT_TOKEN_URL
    account_key: OptionalDigits = None
    user_key: OptionalDigits = None
    company_id: OptionalDigits = None
    auth_scheme: AuthScheme = AuthScheme.BEARER
    id_transport: IdTransport = IdTransport.PATH
    to_time_inclusive: bool = False
    timeout: float = Field(default=DEFAULT_TIMEOUT_SECONDS, gt=0)
    max_requests_per_second: int = Field(default=DEFAULT_REQUESTS_PER_SECOND, ge=1)
    rate_limit_store: str = DEFAULT_RATE_LIMIT_STORE

    @model_validator(mode="before")
    @classmethod
    def _empty_fields_take_their_defaults(cls, fields: Any) -> Any:
        """Read the extra as Airflow's connection form saves it.

        The form saves every field left empty as ``null``, which here means "the default". It shows
        the values of fields whose names look secret (any with "token" in it) as ``***``, and a
        value saved back unchanged from such a display would be taken for the real one.
        """
        if not isinstance(fields, dict):
            return fields
        masked = sorted(name for name, value in fields.items() if value == MASKED_VALUE)
        if masked:
            raise ValueError(
                f"{', '.join(masked)} holds {MASKED_VALUE!r}, the mask Airflow shows in place of a "
                "secret, not a value: type the real one into the connection"
            )
        return {name: value for name, value in fields.items() if value is not None}


class GoToAssistSettings(BaseModel):
    """Everything the hook needs from a connection, with defaults applied.

    :param base_url: scheme and host of the API, without the ``/G2A/rest/v1`` path.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    conn_id: str
    base_url: str
    client_id: str | None
    client_secret: str | None
    extra: ConnectionExtra

    @classmethod
    def from_connection(cls, conn: Connection, decoded_extra: Any = None) -> GoToAssistSettings:
        """Validate a connection, raising one error that names every wrong field.

        :param decoded_extra: the connection's extra, already decoded; by default it is decoded here.
            Code running in an event loop decodes it with ``await conn.aextra_dejson()``, which
            registers its secrets with the masker without blocking the loop.
        """
        raw_extra = decoded_extra if decoded_extra is not None else (conn.extra_dejson if conn.extra else {})
        if not isinstance(raw_extra, dict):
            raise GoToAssistConfigError(f"Connection {conn.conn_id!r}: extra must be a JSON object")
        try:
            extra = ConnectionExtra.model_validate(raw_extra)
        except ValidationError as error:
            raise GoToAssistConfigError(
                f"Connection {conn.conn_id!r} has invalid extra fields "
                f"({describe_problems(error, whole='extra')}){_suggestions(raw_extra)}. "
                f"Allowed keys: {', '.join(ConnectionExtra.model_fields)}"
            ) from None
        settings = cls(
            conn_id=conn.conn_id,
            base_url=_base_url(conn),
            client_id=conn.login or None,
            client_secret=conn.password or None,
            extra=extra,
        )
        settings._check_credentials()
        return settings

    def _check_credentials(self) -> None:
        extra = self.extra
        if not (extra.refresh_token or extra.personal_access_token or extra.access_token):
            raise GoToAssistConfigError(
                f"Connection {self.conn_id!r} holds no credential: set refresh_token, "
                "personal_access_token or access_token in its extra"
            )
        needs_client = extra.refresh_token or extra.personal_access_token
        if needs_client and not (self.client_id and self.client_secret):
            raise GoToAssistConfigError(
                f"Connection {self.conn_id!r} needs the OAuth client ID (login) and client secret "
                "(password) to obtain access tokens"
            )


def _suggestions(fields: dict[str, Any]) -> str:
    """Name the allowed key each unknown key was most likely meant to be, if any is close."""
    known = list(ConnectionExtra.model_fields)
    guesses = [
        f"{name!r} for {match[0]!r}"
        for name in fields
        if name not in known and (match := difflib.get_close_matches(name, known, n=1))
    ]
    return f"; did you mean {', '.join(guesses)}?" if guesses else ""


def _base_url(conn: Connection) -> str:
    """Return ``scheme://host[:port]`` of the API, HTTPS unless the connection says otherwise.

    The host may be a full URL (``http://127.0.0.1:8080``) or a bare host name, in which case
    the connection's schema (``http`` or ``https``) and port are used.
    """
    host = (conn.host or "").strip().rstrip("/")
    if not host:
        return DEFAULT_API_HOST
    if "://" not in host:
        host = f"{conn.schema or 'https'}://{host}"
        if conn.port:
            host = f"{host}:{conn.port}"
    scheme = host.split("://", 1)[0].lower()
    if scheme not in {"http", "https"}:
        raise GoToAssistConfigError(f"Connection {conn.conn_id!r}: host {host!r} must be an http(s) URL")
    return host
