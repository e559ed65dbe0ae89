"""Hook for the GoToAssist Remote Support recordings API."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pendulum
import requests
from airflow.providers.http.hooks.http import HttpHook

from gotoassist_recordings.auth import TokenProvider
from gotoassist_recordings.exceptions import (
    CredentialsRefusedError,
    GoToAssistApiError,
    GoToAssistConfigError,
    GoToAssistTransientError,
    InvalidResponseError,
)
from gotoassist_recordings.listing import ListedRecordings, list_window
from gotoassist_recordings.models import (
    DownloadLinks,
    DownloadLinksList,
    RecordingFilter,
    RecordingList,
    check_chunk_size,
    normalize_recording_ids,
)
from gotoassist_recordings.rate_limit import RequestBudget
from gotoassist_recordings.retries import RetryPolicy
from gotoassist_recordings.settings import AuthScheme, GoToAssistSettings, IdTransport
from gotoassist_recordings.token_cache import VariableTokenCache, fingerprint
from gotoassist_recordings.windows import TimeWindow

API_ROOT = "G2A/rest/v1"
RECORDINGS = "archive/recordings"
#: Retries of :meth:`GoToAssistHook.test_connection`. Someone is waiting for its answer in the
#: connection form, so a host that cannot be reached is reported after one quick retry rather than
#: after the minute or more a task's calls may spend on transient faults.
TEST_CONNECTION_RETRY_POLICY = RetryPolicy(max_attempts=2, initial_wait=0.5, max_wait=1.0, max_total=10.0)


@dataclass
class ChunkOutcome:
    """What became of the recording IDs of one transcode, archive or download-links call.

    :param processed: IDs the API accepted.
    :param refused: IDs the API refused as invalid; the rest of their chunk was still processed.
    """

    processed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


class _RecordingIdsRefused(Exception):
    """A 403 that names recording IDs rather than the credentials (internal to the hook)."""

    def __init__(self, named: list[str]) -> None:
        super().__init__(f"{len(named)} recording IDs named as invalid")
        self.named = named


class GoToAssistHook(HttpHook):
    """Call the GoToAssist Remote Support recordings API with the credentials of an Airflow connection.

    Unlike the plain :class:`~airflow.providers.http.hooks.http.HttpHook`, the connection's
    extra fields are settings, never HTTP headers, and the client ID and secret are only
    sent to the token endpoint. Every method returns parsed, typed values.

    :param gotoassist_conn_id: the ``gotoassist`` connection to use.
    :param retry_policy: how transient faults (connection errors, timeouts, 429, 5xx) are retried.
    """

    conn_name_attr = "gotoassist_conn_id"
    default_conn_name = "gotoassist_default"
    conn_type = "gotoassist"
    hook_name = "GoToAssist"

    def __init__(
        self,
        gotoassist_conn_id: str = default_conn_name,
        *,
        retry_policy: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(method="GET", http_conn_id=gotoassist_conn_id, **kwargs)
        self.gotoassist_conn_id = gotoassist_conn_id
        self.retry_policy = retry_policy or RetryPolicy()
        self._session: requests.Session | None = None

    @cached_property
    def settings(self) -> GoToAssistSettings:
        """The validated connection, looked up on first use."""
        return GoToAssistSettings.from_connection(self.get_connection(self.gotoassist_conn_id))

    @cached_property
    def tokens(self) -> TokenProvider:
        """Access tokens of the connection, shared with its other tasks through an Airflow Variable."""
        settings = self.settings
        extra = settings.extra
        cache = VariableTokenCache(
            settings.conn_id,
            fingerprint(
                extra.token_url, settings.client_id, extra.refresh_token, extra.personal_access_token
            ),
        )
        return TokenProvider(settings, retry_policy=self.retry_policy, cache=cache)

    @cached_property
    def request_budget(self) -> RequestBudget:
        """The API's requests per second, shared with every process that calls it as the same client."""
        settings = self.settings
        key = f"{settings.base_url} {settings.client_id or settings.conn_id}"
        return RequestBudget(settings.extra.max_requests_per_second, settings.extra.rate_limit_store, key)

    def get_conn(
        self, headers: dict[str, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> requests.Session:
        """Return the HTTP session of the API, created once per hook.

        The session carries neither the connection's login (that is for the token endpoint)
        nor its extra fields as headers.
        """
        if self._session is None:
            base_url = self.settings.base_url
            self.base_url = base_url if base_url.endswith(f"/{API_ROOT}") else f"{base_url}/{API_ROOT}"
            self._base_url_initialized = True
            session = requests.Session()
            session.headers["Accept"] = "application/json"
            self._session = self._configure_session_from_mount_adapters(session)
        if headers:
            self._session.headers.update(headers)
        return self._session

    # -- API calls -------------------------------------------------------------------------------

    def list_recordings(self, window: TimeWindow, filter: RecordingFilter | None = None) -> RecordingList:
        """Make one list call: recordings of ``window`` not yet archived, at most 500 in each list.

        :param window: start times to include, ``[start, end)``.
        :param filter: keys and session type; keys left unset come from the connection.
        :raises GoToAssistConfigError: if no account key, user key or company ID is known.
        """
        params = {
            **self._effective_filter(filter).api_params(),
            **window.api_params(to_time_inclusive=self.settings.extra.to_time_inclusive),
        }
        response = self._call("list", "GET", RECORDINGS, params=params, subject=str(window))
        return RecordingList.parse_api(_json_body(response, "list"), "list")

    def list_all_recordings(
        self, window: TimeWindow, filter: RecordingFilter | None = None
    ) -> ListedRecordings:
        """List every not-archived recording of ``window``, however many lists it takes."""
        effective = self._effective_filter(filter)
        listed = list_window(lambda part: self.list_recordings(part, effective), window)
        self.log.info(
            "Listed %d recordings in %s (%s): %d ready for transcode, %d ready for download, %d list calls",
            listed.total,
            window,
            effective,
            len(listed.ready_for_transcode),
            len(listed.ready_for_download),
            listed.list_calls,
        )
        return listed

    def transcode_recordings(self, recording_ids: Iterable[Any]) -> ChunkOutcome:
        """Ask for a chunk of at most 500 recordings to be transcoded (harmless if they already are)."""
        outcome, _ = self._call_with_ids("transcode", "POST", f"{RECORDINGS}/transcode", recording_ids)
        return outcome

    def archive_recordings(self, recording_ids: Iterable[Any]) -> ChunkOutcome:
        """Mark a chunk of at most 500 recordings archived, which hides them from the list call."""
        outcome, _ = self._call_with_ids("archive", "PUT", f"{RECORDINGS}/archived", recording_ids)
        return outcome

    def get_download_links(self, recording_ids: Iterable[Any]) -> tuple[list[DownloadLinks], ChunkOutcome]:
        """Fetch the download links of a chunk of at most 500 recordings.

        :return: one entry per recording that is ready for download (the others are left out
            by the API), and which IDs were refused as invalid.
        """
        outcome, responses = self._call_with_ids("download-links", "GET", f"{RECORDINGS}/urls", recording_ids)
        asked = set(outcome.processed)
        links: list[DownloadLinks] = []
        for response in responses:
            links.extend(
                DownloadLinksList.parse_api(_json_body(response, "download-links"), "download-links").links
            )
        unexpected = sorted({link.recording_id for link in links} - asked)
        if unexpected:
            raise InvalidResponseError(
                "GoToAssist download-links call returned recordings that were not asked for: "
                f"{unexpected[:10]}"
            )
        return links, outcome

    def ready_recording_ids(self, recording_ids: Iterable[Any]) -> tuple[set[str], ChunkOutcome]:
        """Return which of the given recordings the API reports ready for download."""
        links, outcome = self.get_download_links(recording_ids)
        return {link.recording_id for link in links}, outcome

    def open_file(self, url: str) -> requests.Response:
        """Start fetching a file a download link points to, leaving its body to be streamed.

        Download links are pre-signed: the link itself is the permission. The access token is
        therefore sent only to a file on the API's own origin (same scheme, host and port); a file
        anywhere else never sees it, and ``requests`` drops it on a redirect to another host. The
        body is asked for without content encoding, so the bytes read are the bytes that
        ``Content-Length`` announces. The connection's timeout applies to connecting and to each
        read, not to the whole transfer.

        :param url: a ``recordingUrl``, ``eventsUrl`` or ``thumbnailUrl`` of the download-links call.
        :return: the open response; read its body with ``iter_content`` and close it.
        :raises InvalidResponseError: if the link is not an http(s) URL.
        :raises GoToAssistTransientError: on HTTP 429 and 5xx.
        :raises GoToAssistApiError: on any other error status.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidResponseError(
                f"GoToAssist download link {_without_query(url)!r} is not an http(s) URL"
            )
        session = self.get_conn()
        headers = {"Accept": "*/*", "Accept-Encoding": "identity"}
        if _origin(url) == _origin(self.base_url):
            headers["Authorization"] = self._authorization(self.tokens.get())
        response = session.get(url, headers=headers, stream=True, timeout=self.settings.extra.timeout)
        if not 200 <= response.status_code < 300:
            with response:
                _raise_for_status("download", response, has_ids=False)
        return response

    def test_connection(self) -> tuple[bool, str]:
        """Obtain a token and, when the connection names a key, make one small list call.

        The calls are made by a separate hook of the same connection that retries under
        :data:`TEST_CONNECTION_RETRY_POLICY`, so a failure is reported within seconds; this
        hook's own retry policy and tokens are left as they were.
        """
        probe = GoToAssistHook(self.gotoassist_conn_id, retry_policy=TEST_CONNECTION_RETRY_POLICY)
        try:
            probe.tokens.get()
            if not RecordingFilter().or_defaults(probe._connection_filter()).has_key:
                return True, "Access token obtained; set a key in the connection to test the list call"
            end = pendulum.now("UTC").start_of("minute")
            probe.list_recordings(TimeWindow(end.subtract(minutes=1), end))
        except Exception as error:
            return False, str(error)
        return True, "Access token obtained and the list call answered"

    # -- plumbing --------------------------------------------------------------------------------

    def _connection_filter(self) -> RecordingFilter:
        extra = self.settings.extra
        return RecordingFilter(
            account_key=extra.account_key, user_key=extra.user_key, company_id=extra.company_id
        )

    def _effective_filter(self, filter: RecordingFilter | None) -> RecordingFilter:
        effective = (filter or RecordingFilter()).or_defaults(self._connection_filter())
        if not effective.has_key:
            raise GoToAssistConfigError(
                "The list call needs an account key, user key or company ID: pass one to the operator "
                f"or set account_key, user_key or company_id in connection {self.gotoassist_conn_id!r}"
            )
        return effective

    def _call_with_ids(
        self, call: str, method: str, endpoint: str, recording_ids: Iterable[Any]
    ) -> tuple[ChunkOutcome, list[requests.Response]]:
        """Send a chunk of recording IDs; narrow down a chunk the API refuses for invalid IDs.

        A 403 naming recording IDs means the API rejected the whole call. The chunk is then
        split (using the IDs the server named, else by halves) until every valid ID has been
        sent and each invalid one is isolated.
        """
        ids = normalize_recording_ids(recording_ids)
        check_chunk_size(ids, call)
        outcome = ChunkOutcome()
        responses: list[requests.Response] = []
        pending = [ids] if ids else []
        while pending:
            part = pending.pop()
            try:
                responses.append(self._call(call, method, endpoint, ids=part, subject=_chunk_label(part)))
            except _RecordingIdsRefused as refusal:
                named = [rid for rid in part if rid in set(refusal.named)]
                if len(part) == 1:
                    outcome.refused.extend(part)
                elif named and len(named) < len(part):
                    outcome.refused.extend(named)
                    pending.append([rid for rid in part if rid not in set(named)])
                else:
                    middle = len(part) // 2
                    pending.extend([part[middle:], part[:middle]])
                continue
            outcome.processed.extend(part)
        if outcome.refused:
            self.log.warning("GoToAssist %s refused %d recording IDs as invalid", call, len(outcome.refused))
        return outcome, responses

    def _call(
        self,
        call: str,
        method: str,
        endpoint: str,
        *,
        subject: str,
        params: dict[str, str] | None = None,
        ids: list[str] | None = None,
    ) -> requests.Response:
        """Make one API call with retries on transient faults and one token renewal on refusal."""
        request = self._build_request(method, endpoint, params=params, ids=ids)
        what = f"{call} call for {subject}"

        def attempt() -> requests.Response:
            token = self.tokens.get()
            response = self._send(request, token)
            if self._refuses_token(response, call):
                if not self.tokens.can_renew:
                    raise CredentialsRefusedError(
                        call,
                        response.status_code,
                        f"the API refused the static access token of connection {self.gotoassist_conn_id!r}",
                    )
                self.log.info(
                    "GoToAssist refused the access token (HTTP %d); obtaining a new one", response.status_code
                )
                self.tokens.discard(token)
                response = self._send(request, self.tokens.get())
                if self._refuses_token(response, call):
                    raise CredentialsRefusedError(
                        call,
                        response.status_code,
                        f"the API refused the credentials of connection {self.gotoassist_conn_id!r} "
                        "even with a newly obtained access token",
                    )
            _raise_for_status(call, response, has_ids=ids is not None)
            return response

        return self.retry_policy.call(what, attempt, self.log)

    def _build_request(
        self, method: str, endpoint: str, *, params: dict[str, str] | None, ids: list[str] | None
    ) -> requests.Request:
        query: dict[str, Any] = dict(params or {})
        body = None
        if ids is not None:
            transport = self.settings.extra.id_transport
            if transport is IdTransport.PATH:
                endpoint = f"{endpoint}/{','.join(ids)}"
            elif transport is IdTransport.JSON:
                body = {"recordingIds": ids}
            elif transport is IdTransport.QUERY:
                query["recordingIds"] = ",".join(ids)
            else:
                query["recordingIds"] = ids
        self.get_conn()
        return requests.Request(method, self.url_from_endpoint(endpoint), params=query, json=body)

    def _authorization(self, token: str) -> str:
        if self.settings.extra.auth_scheme is AuthScheme.OAUTH:
            return f"OAuth oauth_token={token}"
        return f"Bearer {token}"

    def _send(self, request: requests.Request, token: str) -> requests.Response:
        session = self.get_conn()
        self.request_budget.take()
        prepared = session.prepare_request(request)
        prepared.headers["Authorization"] = self._authorization(token)
        return self.run_and_check(
            session, prepared, {"check_response": False, "timeout": self.settings.extra.timeout}
        )

    @staticmethod
    def _refuses_token(response: requests.Response, call: str) -> bool:
        if response.status_code == 401:
            return True
        return response.status_code == 403 and _refusal_subject(response, call) == "token"


def _refusal_subject(response: requests.Response, call: str) -> str:
    """Tell what a 403 is about: the ``token``, the recording ``ids``, or the list call's ``keys``."""
    reason = _reason(response).lower()
    if "recording" in reason:
        return "ids"
    if call == "list" and any(word in reason for word in ("key", "company")):
        return "keys"
    return "token"


def _raise_for_status(call: str, response: requests.Response, *, has_ids: bool) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 429 or status >= 500:
        raise GoToAssistTransientError(call, status, _reason(response), _retry_after(response))
    if status == 403 and has_ids and _refusal_subject(response, call) == "ids":
        try:
            named = response.json().get("invalidRecordingIds") or []
            named = [str(rid) for rid in named] if isinstance(named, list) else []
        except (ValueError, AttributeError):
            named = []
        raise _RecordingIdsRefused(named)
    raise GoToAssistApiError(call, status, _reason(response))


def _retry_after(response: requests.Response) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header (seconds or an HTTP date)."""
    value = response.headers.get("Retry-After")
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


def _reason(response: requests.Response) -> str:
    """A short, log-safe account of an error response: its message, never the raw body."""
    content_type = response.headers.get("Content-Type", "")
    if "html" in content_type.lower():
        return f"the server answered with an HTML page ({response.reason or 'no reason given'})"
    try:
        payload = response.json()
    except ValueError:
        return response.reason or "no reason given"
    if isinstance(payload, dict):
        parts = [str(payload[key]) for key in ("error", "message", "error_description") if payload.get(key)]
        refused = payload.get("invalidRecordingIds")
        if isinstance(refused, list) and refused:
            parts.append("invalid recording IDs: " + ", ".join(str(rid) for rid in refused[:20]))
        if parts:
            return "; ".join(parts)[:500]
    return response.reason or "no reason given"


def _json_body(response: requests.Response, call: str) -> Any:
    try:
        return response.json()
    except ValueError:
        content_type = response.headers.get("Content-Type", "no content type")
        raise InvalidResponseError(
            f"GoToAssist {call} call answered HTTP {response.status_code} with a body that is not JSON "
            f"({content_type}, {len(response.content)} bytes)"
        ) from None


def _origin(url: str) -> tuple[str, str, int | None]:
    """The scheme, host and port of a URL, the port filled in where the scheme implies it."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(scheme)


def _without_query(url: str) -> str:
    """A URL without its query and fragment, where a pre-signed link keeps its signature."""
    return urlunsplit(urlsplit(url)._replace(query="", fragment=""))[:200]


def _chunk_label(ids: list[str]) -> str:
    return f"{len(ids)} recordings ({ids[0]}…{ids[-1]})" if len(ids) > 1 else f"recording {ids[0]}"
