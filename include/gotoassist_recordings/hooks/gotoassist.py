"""Hooks for the GoToAssist Remote Support recordings API: one for workers, one for the triggerer."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import pendulum
import requests
from airflow.providers.http.hooks.http import HttpHook
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException
from asgiref.sync import sync_to_async

from gotoassist_recordings.api import (
    DOWNLOAD_LINKS,
    RECORDINGS,
    ApiAnswer,
    ApiRequest,
    ChunkNarrowing,
    ChunkOutcome,
    RecordingIdsRefused,
    api_base_url,
    authorization,
    build_request,
    chunk_label,
    download_links,
    json_body,
    raise_for_status,
    refuses_token,
    renewed_token_refused,
    static_token_refused,
)
from gotoassist_recordings.auth import AsyncTokenProvider, TokenProvider
from gotoassist_recordings.exceptions import GoToAssistConfigError, InvalidResponseError
from gotoassist_recordings.listing import ListedRecordings, list_window
from gotoassist_recordings.models import (
    DownloadLinks,
    RecordingFilter,
    RecordingList,
    check_chunk_size,
    normalize_recording_ids,
)
from gotoassist_recordings.rate_limit import RequestBudget
from gotoassist_recordings.retries import RetryPolicy
from gotoassist_recordings.settings import DEFAULT_CONN_ID, GoToAssistSettings
from gotoassist_recordings.token_cache import ThreadedTokenCache, VariableTokenCache, fingerprint
from gotoassist_recordings.windows import TimeWindow

__all__ = ["ChunkOutcome", "GoToAssistAsyncHook", "GoToAssistHook"]

#: Retries of :meth:`GoToAssistHook.test_connection`. Someone is waiting for its answer in the
#: connection form, so a host that cannot be reached is reported after one quick retry rather than
#: after the minute or more a task's calls may spend on transient faults.
TEST_CONNECTION_RETRY_POLICY = RetryPolicy(max_attempts=2, initial_wait=0.5, max_wait=1.0, max_total=10.0)


class GoToAssistHook(HttpHook):
    """Call the GoToAssist Remote Support recordings API with the credentials of an Airflow connection.

    Unlike the plain :class:`~airflow.providers.http.hooks.http.HttpHook`, the connection's
    extra fields are settings, never HTTP headers, and the client ID and secret are only
    sent to the token endpoint. Every method returns parsed, typed values.

    :param gotoassist_conn_id: the ``gotoassist`` connection to use.
    :param retry_policy: how transient faults (connection errors, timeouts, 429, 5xx) are retried.
    """

    conn_name_attr = "gotoassist_conn_id"
    default_conn_name = DEFAULT_CONN_ID
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
        return TokenProvider(
            self.settings, retry_policy=self.retry_policy, cache=_variable_token_cache(self.settings)
        )

    @cached_property
    def request_budget(self) -> RequestBudget:
        """The API's requests per second, shared with every process that calls it as the same client."""
        return _request_budget(self.settings)

    def get_conn(
        self, headers: dict[str, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> requests.Session:
        """Return the HTTP session of the API, created once per hook.

        The session carries neither the connection's login (that is for the token endpoint)
        nor its extra fields as headers.
        """
        if self._session is None:
            self.base_url = api_base_url(self.settings)
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
        answer = self._call("list", "GET", RECORDINGS, params=params, subject=str(window))
        return RecordingList.parse_api(json_body(answer, "list"), "list")

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
        outcome, answers = self._call_with_ids("download-links", "GET", DOWNLOAD_LINKS, recording_ids)
        return download_links(answers, outcome), outcome

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
        read, not to the whole transfer. Files are storage, not calls of the API, so they take
        nothing from its request budget.

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
            headers["Authorization"] = authorization(self.settings, self.tokens.get())
        response = session.get(url, headers=headers, stream=True, timeout=self.settings.extra.timeout)
        if not 200 <= response.status_code < 300:
            with response:
                answer = ApiAnswer.of(
                    response.status_code, response.reason, response.headers.items(), response.content
                )
            raise_for_status("download", answer, has_ids=False)
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
    ) -> tuple[ChunkOutcome, list[ApiAnswer]]:
        """Send a chunk of recording IDs; narrow down a chunk the API refuses for invalid IDs."""
        ids = normalize_recording_ids(recording_ids)
        check_chunk_size(ids, call)
        narrowing = ChunkNarrowing(ids)
        answers: list[ApiAnswer] = []
        while (part := narrowing.next_part()) is not None:
            try:
                answers.append(self._call(call, method, endpoint, ids=part, subject=chunk_label(part)))
            except RecordingIdsRefused as refusal:
                narrowing.refused(part, refusal)
            else:
                narrowing.accepted(part)
        if narrowing.outcome.refused:
            self.log.warning(
                "GoToAssist %s refused %d recording IDs as invalid", call, len(narrowing.outcome.refused)
            )
        return narrowing.outcome, answers

    def _call(
        self,
        call: str,
        method: str,
        endpoint: str,
        *,
        subject: str,
        params: dict[str, str] | None = None,
        ids: list[str] | None = None,
    ) -> ApiAnswer:
        """Make one API call with retries on transient faults and one token renewal on refusal."""
        request = build_request(self.settings, method, endpoint, params=params, ids=ids)

        def attempt() -> ApiAnswer:
            token = self.tokens.get()
            answer = self._send(request, token)
            if refuses_token(answer, call):
                if not self.tokens.can_renew:
                    raise static_token_refused(call, answer.status, self.gotoassist_conn_id)
                self.log.info(
                    "GoToAssist refused the access token (HTTP %d); obtaining a new one", answer.status
                )
                self.tokens.discard(token)
                answer = self._send(request, self.tokens.get())
                if refuses_token(answer, call):
                    raise renewed_token_refused(call, answer.status, self.gotoassist_conn_id)
            raise_for_status(call, answer, has_ids=ids is not None)
            return answer

        return self.retry_policy.call(f"{call} call for {subject}", attempt, self.log)

    def _send(self, request: ApiRequest, token: str) -> ApiAnswer:
        session = self.get_conn()
        self.request_budget.take()
        prepared = session.prepare_request(
            requests.Request(request.method, request.url, params=request.params, json=request.json)
        )
        prepared.headers["Authorization"] = authorization(self.settings, token)
        response = self.run_and_check(
            session, prepared, {"check_response": False, "timeout": self.settings.extra.timeout}
        )
        return ApiAnswer.of(response.status_code, response.reason, response.headers.items(), response.content)


class GoToAssistAsyncHook(BaseHook):
    """Read which recordings are ready for download without blocking an event loop.

    Made for the readiness trigger, which runs in the triggerer's event loop beside every other
    trigger: the connection is looked up with ``aget_connection``, calls go out with ``aiohttp``,
    tokens come from an :class:`~gotoassist_recordings.auth.AsyncTokenProvider` sharing the
    Variable-kept credentials of :class:`GoToAssistHook`, and requests are built, refusals
    recognised, faults retried and answers validated by the very rules the sync hook follows.

    It does not build on the HTTP provider's ``HttpAsyncHook``, which sends the connection's login
    and password with every call and its extra fields as headers: here the client secret goes only
    to the token endpoint and the extras are settings.

    Use it as an async context manager, which closes its HTTP session::

        async with GoToAssistAsyncHook("gotoassist_default") as hook:
            ready, outcome = await hook.ready_recording_ids(recording_ids)

    :param gotoassist_conn_id: the ``gotoassist`` connection to use.
    :param retry_policy: how transient faults (connection errors, timeouts, 429, 5xx) are retried.
    """

    conn_name_attr = "gotoassist_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "gotoassist"
    hook_name = "GoToAssist (async)"

    def __init__(
        self, gotoassist_conn_id: str = default_conn_name, *, retry_policy: RetryPolicy | None = None
    ) -> None:
        super().__init__()
        self.gotoassist_conn_id = gotoassist_conn_id
        self.retry_policy = retry_policy or RetryPolicy()
        self._settings: GoToAssistSettings | None = None
        self._tokens: AsyncTokenProvider | None = None
        self._session: aiohttp.ClientSession | None = None
        self._budget: RequestBudget | None = None

    async def __aenter__(self) -> GoToAssistAsyncHook:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session, if one was opened."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get_settings(self) -> GoToAssistSettings:
        """The validated connection, looked up on first use without blocking the loop."""
        if self._settings is None:
            try:
                conn = await self.aget_connection(self.gotoassist_conn_id)
            except AirflowNotFoundException:
                # Under `airflow dags test`, Airflow 3.3 answers only synchronous lookups from the
                # metadata database (its in-process supervisor channel has no async send). The
                # synchronous lookup runs in a worker thread, off the loop; a connection that is
                # nowhere still raises.
                conn = await sync_to_async(self.get_connection)(self.gotoassist_conn_id)
            self._settings = GoToAssistSettings.from_connection(conn, await conn.aextra_dejson())
        return self._settings

    async def get_tokens(self) -> AsyncTokenProvider:
        """Access tokens of the connection, shared with its tasks through an Airflow Variable."""
        if self._tokens is None:
            settings = await self.get_settings()
            self._tokens = AsyncTokenProvider(
                settings,
                session=self._http(),
                retry_policy=self.retry_policy,
                cache=ThreadedTokenCache(_variable_token_cache(settings)),
            )
        return self._tokens

    async def get_download_links(
        self, recording_ids: Iterable[Any]
    ) -> tuple[list[DownloadLinks], ChunkOutcome]:
        """Fetch the download links of a chunk of at most 500 recordings.

        :return: one entry per recording that is ready for download, and which IDs were refused
            as invalid.
        """
        outcome, answers = await self._call_with_ids("download-links", "GET", DOWNLOAD_LINKS, recording_ids)
        return download_links(answers, outcome), outcome

    async def ready_recording_ids(self, recording_ids: Iterable[Any]) -> tuple[set[str], ChunkOutcome]:
        """Return which of the given recordings the API reports ready for download."""
        links, outcome = await self.get_download_links(recording_ids)
        return {link.recording_id for link in links}, outcome

    def _spend_budget(self, settings: GoToAssistSettings) -> None:
        if self._budget is None:
            self._budget = _request_budget(settings)
        self._budget.take()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            # trust_env: proxies from the environment, as requests uses them in the sync hook.
            self._session = aiohttp.ClientSession(headers={"Accept": "application/json"}, trust_env=True)
        return self._session

    async def _call_with_ids(
        self, call: str, method: str, endpoint: str, recording_ids: Iterable[Any]
    ) -> tuple[ChunkOutcome, list[ApiAnswer]]:
        """Send a chunk of recording IDs; narrow down a chunk the API refuses for invalid IDs."""
        ids = normalize_recording_ids(recording_ids)
        check_chunk_size(ids, call)
        narrowing = ChunkNarrowing(ids)
        answers: list[ApiAnswer] = []
        while (part := narrowing.next_part()) is not None:
            try:
                answers.append(await self._call(call, method, endpoint, ids=part, subject=chunk_label(part)))
            except RecordingIdsRefused as refusal:
                narrowing.refused(part, refusal)
            else:
                narrowing.accepted(part)
        if narrowing.outcome.refused:
            self.log.warning(
                "GoToAssist %s refused %d recording IDs as invalid", call, len(narrowing.outcome.refused)
            )
        return narrowing.outcome, answers

    async def _call(
        self, call: str, method: str, endpoint: str, *, subject: str, ids: list[str] | None = None
    ) -> ApiAnswer:
        """Make one API call with retries on transient faults and one token renewal on refusal."""
        settings = await self.get_settings()
        tokens = await self.get_tokens()
        request = build_request(settings, method, endpoint, ids=ids)

        async def attempt() -> ApiAnswer:
            token = await tokens.get()
            answer = await self._send(settings, request, token)
            if refuses_token(answer, call):
                if not tokens.can_renew:
                    raise static_token_refused(call, answer.status, self.gotoassist_conn_id)
                self.log.info(
                    "GoToAssist refused the access token (HTTP %d); obtaining a new one", answer.status
                )
                await tokens.discard(token)
                answer = await self._send(settings, request, await tokens.get())
                if refuses_token(answer, call):
                    raise renewed_token_refused(call, answer.status, self.gotoassist_conn_id)
            raise_for_status(call, answer, has_ids=ids is not None)
            return answer

        return await self.retry_policy.acall(f"{call} call for {subject}", attempt, self.log)

    async def _send(self, settings: GoToAssistSettings, request: ApiRequest, token: str) -> ApiAnswer:
        # The budget is kept in a file or in Redis behind a lock: set it up and wait for it in a
        # thread of its own, so neither blocks the loop nor holds up the token cache's thread.
        await sync_to_async(self._spend_budget, thread_sensitive=False)(settings)
        async with self._http().request(
            request.method,
            request.url,
            params=request.params,
            json=request.json,
            headers={"Authorization": authorization(settings, token)},
            timeout=aiohttp.ClientTimeout(total=settings.extra.timeout),
        ) as response:
            body = await response.read()
        return ApiAnswer.of(response.status, response.reason, response.headers.items(), body)


def _variable_token_cache(settings: GoToAssistSettings) -> VariableTokenCache:
    """The Variable both hooks keep a connection's newest credentials in."""
    extra = settings.extra
    return VariableTokenCache(
        settings.conn_id,
        fingerprint(extra.token_url, settings.client_id, extra.refresh_token, extra.personal_access_token),
    )


def _request_budget(settings: GoToAssistSettings) -> RequestBudget:
    """The budget both hooks share with every process that calls the API as the same client."""
    key = f"{settings.base_url} {settings.client_id or settings.conn_id}"
    return RequestBudget(settings.extra.max_requests_per_second, settings.extra.rate_limit_store, key)


def _origin(url: str) -> tuple[str, str, int | None]:
    """The scheme, host and port of a URL, the port filled in where the scheme implies it."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(scheme)


def _without_query(url: str) -> str:
    """A URL without its query and fragment, where a pre-signed link keeps its signature."""
    return urlunsplit(urlsplit(url)._replace(query="", fragment=""))[:200]
