"""The FastAPI application imitating the GoToAssist Remote Support recordings API.

Routes:

- ``POST /oauth/token``: OAuth token grants (see :mod:`gotoassist_api_server.auth`).
- ``GET /G2A/rest/v1/archive/recordings``: the list call.
- ``POST /G2A/rest/v1/archive/recordings/transcode/{ids}``: start transcoding.
- ``PUT /G2A/rest/v1/archive/recordings/archived/{ids}``: mark archived.
- ``GET /G2A/rest/v1/archive/recordings/urls/{ids}``: download links of ready recordings.
- ``GET /files/{recording_id}/{file_name}``: the files those links point to.
- ``/_admin/...``: health, statistics, recordings, run-time settings and the fault plan, for tests and
  demos.

Where the three ID-taking calls expect their IDs depends on :attr:`ServerSettings.id_transport`; the
``{ids}`` path segment only applies to the default ``path`` form. Every call to the API, the token
endpoint and the files is written to the call log for the statistics, with the fault injected into it
if any (see :mod:`gotoassist_api_server.faults`).
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

import pydantic
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gotoassist_api_server.auth import grant_token, require_access_token
from gotoassist_api_server.clock import format_api_time, local_day_bounds, now_timestamp
from gotoassist_api_server.errors import ApiError, bad_request, install_error_handlers
from gotoassist_api_server.faults import (
    Endpoint,
    FaultInjector,
    FaultMiddleware,
    FaultPlan,
    OpenConnections,
    QueuedFaults,
)
from gotoassist_api_server.listing import build_recording_query
from gotoassist_api_server.media import (
    EVENTS_FILE,
    RECORDING_FILE,
    RECORDING_FILES,
    THUMBNAIL_FILE,
    file_content,
    recording_size,
)
from gotoassist_api_server.recording_ids import PATH_PARAMETER, requested_recording_ids
from gotoassist_api_server.settings import ServerSettings
from gotoassist_api_server.stats import compute_stats
from gotoassist_api_server.store import RecordingState, RecordingStore

log = logging.getLogger(__name__)

#: Where the recordings API lives, as on ``api.getgo.com``.
API_PREFIX = "/G2A/rest/v1"
#: The token endpoint, at the root as on the GoTo authentication host.
TOKEN_PATH = "/oauth/token"
#: Where the download links point.
FILES_PREFIX = "/files"

#: The route names written to the call log; they name the endpoints in the statistics.
LOGGED_ENDPOINTS = frozenset(endpoint.value for endpoint in Endpoint)

RecordingIds = Annotated[list[str], Depends(requested_recording_ids)]


class CallLogMiddleware:
    """Writes every call to a logged endpoint to the store's call log, with the status it got.

    The endpoint name is the matched route's name. Handlers report how many recording IDs a call named
    in ``request.state.recording_id_count``; the fault middleware reports an injected fault in
    ``request.state.fault``, and the endpoint in ``request.state.endpoint`` when no route ran. A call
    answered with nothing, its connection dropped, is logged with status 0.

    :param app: the application to wrap.
    :param store: the store holding the call log.
    """

    def __init__(self, app: ASGIApp, store: RecordingStore) -> None:
        self.app = app
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        called_at = now_timestamp()
        status = 0

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        except Exception:
            # Unanswered yet: the server error middleware outside this one answers 500.
            status = status or 500
            raise
        finally:
            state = scope.get("state", {})
            endpoint = getattr(scope.get("route"), "name", None) or state.get("endpoint")
            if endpoint in LOGGED_ENDPOINTS:
                await run_in_threadpool(
                    self.store.record_call,
                    called_at,
                    scope["method"],
                    endpoint,
                    status,
                    state.get("recording_id_count", 0),
                    state.get("fault"),
                )


def _store(request: Request) -> RecordingStore:
    return request.app.state.store


def _settings(request: Request) -> ServerSettings:
    return request.app.state.settings


def _faults(request: Request) -> FaultInjector:
    return request.app.state.faults


# OAuth

token_router = APIRouter(tags=["oauth"])


@token_router.post(TOKEN_PATH, name="token")
async def issue_token(request: Request) -> JSONResponse:
    """Grant an access token for a refresh token or a personal access token."""
    body = await request.body()
    token = await run_in_threadpool(
        grant_token, _store(request), _settings(request), request.headers.get("authorization"), body
    )
    return JSONResponse(token, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


# Recordings API

recordings_router = APIRouter(
    prefix=API_PREFIX, tags=["recordings"], dependencies=[Depends(require_access_token)]
)


@recordings_router.get("/archive/recordings", name="list")
def list_recordings(request: Request) -> dict[str, list[str]]:
    """List available recordings, split into those to transcode and those to download.

    ``readyForTranscode`` holds recordings never transcoded *and* recordings whose transcoding is
    still running. The documentation describes the list as recordings "ready to be transcoded" and
    does not say whether transcoding ones leave it; keeping them in is the reading that can cost a
    client something, since a client must then tolerate asking again for a transcode already under
    way. That repetition is harmless: a transcode call answers 204 whatever the recording's state and
    does not restart the clock.

    Each list holds at most ``list_limit`` IDs, the earliest-started first, ties broken by ID.
    """
    settings = _settings(request)
    now = now_timestamp()
    query = build_recording_query(request.query_params, _store(request), now, settings.to_time_inclusive)
    available = _store(request).list_available(query, now, settings.list_limit)

    request.state.recording_id_count = len(available.ready_for_transcode) + len(available.ready_for_download)
    return {
        "readyForTranscode": available.ready_for_transcode,
        "readyForDownload": available.ready_for_download,
    }


def _invalid_recording_ids(recording_ids: list[str]) -> ApiError:
    return ApiError(403, "invalid recording IDs", invalidRecordingIds=recording_ids)


@recordings_router.post("/archive/recordings/transcode", name="transcode", status_code=204)
@recordings_router.post(
    f"/archive/recordings/transcode/{{{PATH_PARAMETER}}}", name="transcode", status_code=204
)
def transcode_recordings(request: Request, recording_ids: RecordingIds) -> Response:
    """Start transcoding recordings; 204 whatever their state, nothing changed if any ID is invalid."""
    invalid = _store(request).request_transcode(
        recording_ids, now_timestamp(), _settings(request).transcode_delay
    )
    if invalid:
        raise _invalid_recording_ids(invalid)
    return Response(status_code=204)


@recordings_router.put("/archive/recordings/archived", name="archive", status_code=204)
@recordings_router.put(f"/archive/recordings/archived/{{{PATH_PARAMETER}}}", name="archive", status_code=204)
def archive_recordings(request: Request, recording_ids: RecordingIds) -> Response:
    """Mark recordings archived; nothing changed if any ID is invalid."""
    invalid = _store(request).mark_archived(recording_ids, now_timestamp())
    if invalid:
        raise _invalid_recording_ids(invalid)
    return Response(status_code=204)


@recordings_router.get("/archive/recordings/urls", name="urls")
@recordings_router.get(f"/archive/recordings/urls/{{{PATH_PARAMETER}}}", name="urls")
def recording_urls(request: Request, recording_ids: RecordingIds) -> list[dict[str, str]]:
    """Return download links for the named recordings that are ready; the others are left out.

    Each recording appears once, in the order first named, however often the request names it.
    """
    recordings = _store(request).recordings_by_id(recording_ids)
    invalid = list(dict.fromkeys(rid for rid in recording_ids if rid not in recordings))
    if invalid:
        raise _invalid_recording_ids(invalid)

    now = now_timestamp()
    settings = _settings(request)
    files_url = (settings.files_root or str(request.base_url).rstrip("/")) + FILES_PREFIX
    entries = []
    for recording_id in dict.fromkeys(recording_ids):
        recording = recordings[recording_id]
        if recording.state_at(now) is not RecordingState.READY_FOR_DOWNLOAD:
            continue
        entries.append(
            {
                "recordingId": recording_id,
                "recordingUrl": f"{files_url}/{recording_id}/{RECORDING_FILE.name}",
                "eventsUrl": f"{files_url}/{recording_id}/{EVENTS_FILE.name}",
                "thumbnailUrl": f"{files_url}/{recording_id}/{THUMBNAIL_FILE.name}",
                "recordingStartTime": format_api_time(recording.start_time),
                "recordingSize": str(recording_size(recording_id, settings.recording_scale)),
            }
        )
    return entries


# Files behind the download links

files_router = APIRouter(prefix=FILES_PREFIX, tags=["files"])


@files_router.get("/{recording_id}/{file_name}", name="file")
def download_file(request: Request, recording_id: str, file_name: str) -> Response:
    """Serve one file of a recording. Like a signed URL, the link itself is the permission."""
    request.state.recording_id_count = 1
    file = RECORDING_FILES.get(file_name)
    if file is None or _store(request).recording(recording_id) is None:
        raise ApiError(404, f"no file {file_name!r} for recording {recording_id!r}")
    content = file_content(file, recording_id, _settings(request).recording_scale)
    return Response(content, media_type=file.media_type)


# Administration, for tests and demos

admin_router = APIRouter(prefix="/_admin", tags=["admin"])


def _day_window(day: str | None, timezone: str) -> tuple[float | None, float | None]:
    if day is None:
        return None, None
    try:
        start, end = local_day_bounds(day, timezone)
    except ValueError as error:
        raise bad_request(str(error), parameter="day", value=day) from error
    return start.timestamp(), end.timestamp()


@admin_router.get("/health")
def health() -> dict[str, str]:
    """Answer as soon as the server accepts requests."""
    return {"status": "ok"}


@admin_router.get("/stats")
def admin_stats(request: Request, day: str | None = None, timezone: str = "UTC") -> dict[str, Any]:
    """Return the statistics, as the ``stats`` command computes them."""
    try:
        return compute_stats(_store(request), day=day, timezone=timezone)
    except ValueError as error:
        raise bad_request(str(error)) from error


@admin_router.get("/recordings")
def admin_recordings(request: Request, day: str | None = None, timezone: str = "UTC") -> list[dict[str, Any]]:
    """Return the stored recordings, or those started on one local day, in start-time order."""
    start, end = _day_window(day, timezone)
    now = now_timestamp()
    return [recording.to_json(now) for recording in _store(request).recordings_started_between(start, end)]


@admin_router.get("/settings")
def admin_settings(request: Request) -> dict[str, Any]:
    """Return the behaviour options in force."""
    return _settings(request).model_dump(mode="json")


async def _json_object_body(request: Request, what: str) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError as error:
        raise bad_request("the request body is not valid JSON") from error
    if not isinstance(body, dict):
        raise bad_request(f"the request body must be a JSON object of {what}")
    return body


def _invalid(what: str, error: pydantic.ValidationError) -> ApiError:
    return ApiError(
        400, f"invalid {what}", details=json.loads(error.json(include_url=False, include_input=False))
    )


@admin_router.post("/settings")
async def update_admin_settings(request: Request) -> dict[str, Any]:
    """Change some behaviour options; the JSON body names only those to change."""
    changes = await _json_object_body(request, "settings to change")
    try:
        settings = _settings(request).updated(changes)
    except pydantic.ValidationError as error:
        raise _invalid("settings", error) from error
    request.app.state.settings = settings
    log.info("Settings changed: %s", settings.model_dump(mode="json"))
    return settings.model_dump(mode="json")


@admin_router.get("/faults")
async def admin_faults(request: Request) -> dict[str, Any]:
    """Return the fault plan in force, with what is left of its queues."""
    return _faults(request).plan_in_force().model_dump(mode="json")


@admin_router.post("/faults")
async def replace_admin_faults(request: Request) -> dict[str, Any]:
    """Replace the fault plan with the one in the JSON body; ``{}`` injects no faults any more.

    The new plan starts afresh: full queues, draws from its seed, an empty rate-limit window.
    """
    fields = await _json_object_body(request, "fault plan fields")
    try:
        plan = FaultPlan.model_validate(fields)
    except pydantic.ValidationError as error:
        raise _invalid("fault plan", error) from error
    _faults(request).replace(plan)
    log.info("Fault plan replaced: %s", plan.model_dump(mode="json"))
    return plan.model_dump(mode="json")


@admin_router.post("/faults/next")
async def queue_admin_faults(request: Request) -> dict[str, Any]:
    """Fail the next calls to an endpoint: the body names ``endpoint``, ``fault`` and ``times``."""
    fields = await _json_object_body(request, "queued faults")
    try:
        faults = QueuedFaults.model_validate(fields)
    except pydantic.ValidationError as error:
        raise _invalid("queued faults", error) from error
    plan = _faults(request).queue(faults)
    log.info("Queued %s x %s for %s", faults.times, faults.fault, faults.endpoint)
    return plan.model_dump(mode="json")


def create_app(
    store: RecordingStore,
    settings: ServerSettings | None = None,
    faults: FaultPlan | None = None,
    connections: OpenConnections | None = None,
) -> FastAPI:
    """Build the application around a store.

    The caller keeps ownership of the store and closes it after the server stops.

    :param store: the server state.
    :param settings: the behaviour options; the defaults when ``None``.
    :param faults: the fault plan to start with; none injected when ``None``.
    :param connections: the server's open connections, which ``drop`` faults need; the server in
        :mod:`gotoassist_api_server.serving` provides them.
    :return: the application.
    """
    app = FastAPI(
        title="GoToAssist recordings API (local imitation)",
        description="A local stand-in for the GoToAssist Remote Support recordings API.",
        redirect_slashes=False,
    )
    app.state.store = store
    app.state.settings = settings or ServerSettings()
    app.state.faults = FaultInjector(faults or FaultPlan())
    install_error_handlers(app)
    # Added first, so it runs inside the call log, which then logs the faulted calls too.
    app.add_middleware(FaultMiddleware, injector=app.state.faults, router=app.router, connections=connections)
    app.add_middleware(CallLogMiddleware, store=store)
    for router in (token_router, recordings_router, files_router, admin_router):
        app.include_router(router)
    return app
