"""What a call to the recordings API sends and how its answer is read, whichever HTTP client makes it.

The hook (``requests``, on a worker) and the readiness trigger (``aiohttp``, in the triggerer) share
these rules, so a request is built, a refusal recognised, a fault classified and an answer validated
the same way on both. Nothing here does I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pendulum

from gotoassist_recordings.exceptions import (
    CredentialsRefusedError,
    GoToAssistApiError,
    GoToAssistTransientError,
    InvalidResponseError,
)
from gotoassist_recordings.models import DownloadLinks, DownloadLinksList
from gotoassist_recordings.settings import AuthScheme, GoToAssistSettings, IdTransport

API_ROOT = "G2A/rest/v1"
RECORDINGS = "archive/recordings"
#: The download-links call, which answers only for recordings that are ready for download.
DOWNLOAD_LINKS = f"{RECORDINGS}/urls"


def api_base_url(settings: GoToAssistSettings) -> str:
    """The URL the endpoints hang from: the connection's base URL and ``/G2A/rest/v1``."""
    base_url = settings.base_url
    return base_url if base_url.endswith(f"/{API_ROOT}") else f"{base_url}/{API_ROOT}"


@dataclass(frozen=True)
class ApiRequest:
    """One call as it goes on the wire, without its ``Authorization`` header.

    :param params: query parameters in order; a name may repeat (``query-repeated`` ID transport).
    :param json: the JSON body, if any.
    """

    method: str
    url: str
    params: list[tuple[str, str]] = field(default_factory=list)
    json: dict[str, Any] | None = None


def build_request(
    settings: GoToAssistSettings,
    method: str,
    endpoint: str,
    *,
    params: Mapping[str, str] | None = None,
    ids: list[str] | None = None,
) -> ApiRequest:
    """Build a call, putting the recording IDs where the connection's ``id_transport`` says.

    :param endpoint: the path below ``/G2A/rest/v1``, e.g. ``archive/recordings/urls``.
    :param ids: validated recording IDs (digit strings), for the calls that name recordings.
    """
    query = list((params or {}).items())
    body = None
    if ids is not None:
        transport = settings.extra.id_transport
        if transport is IdTransport.PATH:
            endpoint = f"{endpoint}/{','.join(ids)}"
        elif transport is IdTransport.JSON:
            body = {"recordingIds": ids}
        elif transport is IdTransport.QUERY:
            query.append(("recordingIds", ",".join(ids)))
        else:
            query.extend(("recordingIds", rid) for rid in ids)
    return ApiRequest(method, f"{api_base_url(settings)}/{endpoint}", query, body)


def authorization(settings: GoToAssistSettings, token: str) -> str:
    """The ``Authorization`` header value for ``token`` under the connection's ``auth_scheme``."""
    if settings.extra.auth_scheme is AuthScheme.OAUTH:
        return f"OAuth oauth_token={token}"
    return f"Bearer {token}"


@dataclass(frozen=True)
class ApiAnswer:
    """An HTTP answer, read whole, as the rules below need it.

    :param headers: header names in lower case.
    """

    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes

    @classmethod
    def of(
        cls, status: int, reason: str | None, headers: Iterable[tuple[str, str]], body: bytes
    ) -> ApiAnswer:
        return cls(status, reason or "", {name.lower(): value for name, value in headers}, body)

    @property
    def ok(self) -> bool:
        return self.status < 400

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """Decode the body as JSON; raises :class:`ValueError` if it is not JSON."""
        return json.loads(self.body)


class RecordingIdsRefused(Exception):
    """A 403 that names recording IDs rather than the credentials; the chunk is then narrowed down."""

    def __init__(self, named: list[str]) -> None:
        super().__init__(f"{len(named)} recording IDs named as invalid")
        self.named = named


def refuses_token(answer: ApiAnswer, call: str) -> bool:
    """Whether the API refused the access token: a 401, or a 403 that is not about IDs or keys."""
    if answer.status == 401:
        return True
    return answer.status == 403 and _refusal_subject(answer, call) == "token"


def static_token_refused(call: str, status: int, conn_id: str) -> CredentialsRefusedError:
    """The error for a refused static access token, which cannot be renewed."""
    return CredentialsRefusedError(
        call, status, f"the API refused the static access token of connection {conn_id!r}"
    )


def renewed_token_refused(call: str, status: int, conn_id: str) -> CredentialsRefusedError:
    """The error for a refusal that a newly obtained access token did not cure."""
    return CredentialsRefusedError(
        call,
        status,
        f"the API refused the credentials of connection {conn_id!r} even with a newly obtained access token",
    )


def raise_for_status(call: str, answer: ApiAnswer, *, has_ids: bool) -> None:
    """Raise what an error answer means; return quietly for a 2xx.

    :raises GoToAssistTransientError: for 429 and 5xx, which are retried.
    :raises RecordingIdsRefused: for a 403 naming recording IDs of a call that sent some.
    :raises GoToAssistApiError: for any other error, which retrying will not fix.
    """
    status = answer.status
    if 200 <= status < 300:
        return
    if status == 429 or status >= 500:
        raise GoToAssistTransientError(call, status, reason(answer), retry_after(answer))
    if status == 403 and has_ids and _refusal_subject(answer, call) == "ids":
        try:
            named = answer.json().get("invalidRecordingIds") or []
            named = [str(rid) for rid in named] if isinstance(named, list) else []
        except (ValueError, AttributeError):
            named = []
        raise RecordingIdsRefused(named)
    raise GoToAssistApiError(call, status, reason(answer))


def _refusal_subject(answer: ApiAnswer, call: str) -> str:
    """Tell what a 403 is about: the ``token``, the recording ``ids``, or the list call's ``keys``."""
    text = reason(answer).lower()
    if "recording" in text:
        return "ids"
    if call == "list" and any(word in text for word in ("key", "company")):
        return "keys"
    return "token"


def retry_after(answer: ApiAnswer) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header (seconds or an HTTP date)."""
    value = answer.header("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = pendulum.from_format(value, "ddd, DD MMM YYYY HH:mm:ss [GMT]", tz="UTC")
    except ValueError:
        return None
    return max(0.0, (when - pendulum.now("UTC")).total_seconds())


def reason(answer: ApiAnswer) -> str:
    """A short, log-safe account of an error answer: its message, never the raw body."""
    content_type = answer.header("Content-Type") or ""
    if "html" in content_type.lower():
        return f"the server answered with an HTML page ({answer.reason or 'no reason given'})"
    try:
        payload = answer.json()
    except ValueError:
        return answer.reason or "no reason given"
    if isinstance(payload, dict):
        parts = [str(payload[key]) for key in ("error", "message", "error_description") if payload.get(key)]
        refused = payload.get("invalidRecordingIds")
        if isinstance(refused, list) and refused:
            parts.append("invalid recording IDs: " + ", ".join(str(rid) for rid in refused[:20]))
        if parts:
            return "; ".join(parts)[:500]
    return answer.reason or "no reason given"


def json_body(answer: ApiAnswer, call: str) -> Any:
    """The decoded JSON body of a successful answer.

    :raises InvalidResponseError: if the body is not JSON.
    """
    try:
        return answer.json()
    except ValueError:
        content_type = answer.header("Content-Type") or "no content type"
        raise InvalidResponseError(
            f"GoToAssist {call} call answered HTTP {answer.status} with a body that is not JSON "
            f"({content_type}, {len(answer.body)} bytes)"
        ) from None


@dataclass
class ChunkOutcome:
    """What became of the recording IDs of one transcode, archive or download-links call.

    :param processed: IDs the API accepted.
    :param refused: IDs the API refused as invalid; the rest of their chunk was still processed.
    """

    processed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


class ChunkNarrowing:
    """Which parts of a chunk are still to be sent, when the API refuses calls for invalid IDs.

    A 403 naming recording IDs means the API rejected the whole call. The chunk is then split
    (leaving out the IDs the server named, else by halves) until every valid ID has been sent
    and each invalid one is isolated. The caller sends each :meth:`next_part` and reports how
    it went with :meth:`accepted` or :meth:`refused`.

    :param recording_ids: the validated chunk.
    """

    def __init__(self, recording_ids: list[str]) -> None:
        self.outcome = ChunkOutcome()
        self._pending = [recording_ids] if recording_ids else []

    def next_part(self) -> list[str] | None:
        """The next part to send, or ``None`` when the whole chunk has been dealt with."""
        return self._pending.pop() if self._pending else None

    def accepted(self, part: list[str]) -> None:
        self.outcome.processed.extend(part)

    def refused(self, part: list[str], refusal: RecordingIdsRefused) -> None:
        named = [rid for rid in part if rid in set(refusal.named)]
        if len(part) == 1:
            self.outcome.refused.extend(part)
        elif named and len(named) < len(part):
            self.outcome.refused.extend(named)
            self._pending.append([rid for rid in part if rid not in set(named)])
        else:
            middle = len(part) // 2
            self._pending.extend([part[middle:], part[:middle]])


def download_links(answers: list[ApiAnswer], outcome: ChunkOutcome) -> list[DownloadLinks]:
    """Read the answers of a chunk's download-links calls: one entry per ready recording.

    :raises InvalidResponseError: if an answer is not as documented or names recordings that
        were not asked for.
    """
    call = "download-links"
    links: list[DownloadLinks] = []
    for answer in answers:
        links.extend(DownloadLinksList.parse_api(json_body(answer, call), call).links)
    unexpected = sorted({link.recording_id for link in links} - set(outcome.processed))
    if unexpected:
        raise InvalidResponseError(
            f"GoToAssist download-links call returned recordings that were not asked for: {unexpected[:10]}"
        )
    return links


def chunk_label(recording_ids: list[str]) -> str:
    """Name a part of a chunk in log messages, e.g. ``3 recordings (101…103)``."""
    if len(recording_ids) > 1:
        return f"{len(recording_ids)} recordings ({recording_ids[0]}…{recording_ids[-1]})"
    return f"recording {recording_ids[0]}"
