"""Behaviour options of the local GoToAssist API server.

The public API leaves several details open: how recording IDs travel on the transcode, archive and
download-link calls, which ``Authorization`` header form is expected, which status a bad token earns
and whether ``toTime`` is inclusive. Each open point is an option here, so a client can be proven to
work against every plausible reading of the documentation.
"""

from __future__ import annotations

import enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl


class IdTransport(enum.StrEnum):
    """Where the transcode, archive and download-link calls expect their recording IDs."""

    #: Comma-separated IDs as the last path segment: ``.../transcode/1,2,3``.
    PATH = "path"
    #: A JSON body ``{"recordingIds": ["1", "2"]}`` and no IDs in the path.
    JSON = "json"
    #: One comma-separated query parameter: ``?recordingIds=1,2,3``.
    QUERY = "query"
    #: One query parameter per ID: ``?recordingIds=1&recordingIds=2``.
    QUERY_REPEATED = "query-repeated"


class AuthScheme(enum.StrEnum):
    """The ``Authorization`` header form the recordings API accepts."""

    #: ``Authorization: Bearer <token>``, as current GoTo APIs expect.
    BEARER = "bearer"
    #: ``Authorization: OAuth oauth_token=<token>``, as older G2A clients sent it.
    OAUTH = "oauth"


class ServerSettings(BaseModel):
    """How the server behaves where the real API is undocumented or configurable.

    These are options of a running server process, not part of the stored state: a restarted server
    takes them from its command line again.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    transcode_delay: float = Field(
        default=5.0, ge=0, description="Seconds between the first transcode request and readiness."
    )
    token_ttl: int = Field(default=3600, ge=1, description="Lifetime of issued access tokens, in seconds.")
    id_transport: IdTransport = Field(
        default=IdTransport.PATH, description="Where transcode, archive and urls calls carry recording IDs."
    )
    auth_scheme: AuthScheme = Field(
        default=AuthScheme.BEARER, description="The accepted form of the Authorization header."
    )
    bad_token_status: Literal[401, 403] = Field(
        default=403, description="HTTP status for a missing, malformed, unknown or expired access token."
    )
    to_time_inclusive: bool = Field(
        default=False, description="Whether the list call includes recordings started exactly at toTime."
    )
    rotate_refresh_tokens: bool = Field(
        default=False,
        description="Whether a refresh grant hands out a new refresh token and revokes the old.",
    )
    list_limit: int = Field(
        default=500, ge=1, description="Most IDs in each list of the list call and in one request."
    )
    latency: float = Field(
        default=0.0,
        ge=0,
        description="Seconds every call to the API or its files waits before it is handled.",
    )
    files_base_url: HttpUrl | None = Field(
        default=None,
        description="Where download links point, e.g. another name of this server standing in for a "
        "storage host; by default the URL the download-links call came in on.",
    )
    recording_scale: int = Field(
        default=1,
        ge=1,
        le=1000,
        description="Multiplies the size of every MP4 payload (about 4 to 44 KB), to serve large recordings.",
    )

    @property
    def files_root(self) -> str | None:
        """The base URL of the download links without a trailing slash, if one is set."""
        return None if self.files_base_url is None else str(self.files_base_url).rstrip("/")

    def updated(self, changes: dict[str, object]) -> ServerSettings:
        """Return a copy with some options changed, validated like a new instance.

        :param changes: option names and their new values.
        :return: the new settings.
        :raises pydantic.ValidationError: if a name is unknown or a value is invalid.
        """
        return ServerSettings.model_validate({**self.model_dump(), **changes})

    def to_cli_arguments(self) -> list[str]:
        """Render these settings as ``serve`` command-line options.

        :return: the options, ready to append to a command line.
        """
        arguments = [
            "--transcode-delay",
            repr(self.transcode_delay),
            "--token-ttl",
            str(self.token_ttl),
            "--id-transport",
            self.id_transport.value,
            "--auth-scheme",
            self.auth_scheme.value,
            "--bad-token-status",
            str(self.bad_token_status),
            "--list-limit",
            str(self.list_limit),
            "--latency",
            repr(self.latency),
            "--recording-scale",
            str(self.recording_scale),
        ]
        if self.files_base_url is not None:
            arguments += ["--files-base-url", str(self.files_base_url)]
        if self.to_time_inclusive:
            arguments.append("--to-time-inclusive")
        if self.rotate_refresh_tokens:
            arguments.append("--rotate-refresh-tokens")
        return arguments
