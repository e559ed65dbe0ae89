"""Error responses of the local GoToAssist API server.

Every error is a JSON object with an ``error`` member; where a parameter or a value was wrong, the
message names it and further members carry it, so a client's log shows exactly what to fix.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answer of the API, raised anywhere while handling a request.

    :param status_code: the HTTP status to return.
    :param error: the ``error`` member: a short code or a message naming what was wrong.
    :param details: further members of the JSON body.
    """

    def __init__(self, status_code: int, error: str, **details: Any) -> None:
        super().__init__(error)
        self.status_code = status_code
        self.body = {"error": error, **details}
        self.headers: dict[str, str] = {}


def bad_request(message: str, *, parameter: str | None = None, value: object = None) -> ApiError:
    """Build a 400 error naming the parameter and the value that were wrong.

    :param message: what was wrong, naming the parameter.
    :param parameter: the parameter's name, repeated as its own member.
    :param value: the offending value, repeated as its own member when given.
    :return: the error, ready to raise.
    """
    details: dict[str, Any] = {}
    if parameter is not None:
        details["parameter"] = parameter
    if value is not None:
        details["value"] = value
    return ApiError(400, message, **details)


async def _api_error_response(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return JSONResponse(error.body, status_code=error.status_code, headers=error.headers or None)


async def _http_error_response(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    return JSONResponse({"error": str(error.detail)}, status_code=error.status_code, headers=error.headers)


async def _unexpected_error_response(request: Request, error: Exception) -> JSONResponse:
    log.error("Unexpected error answering %s %s", request.method, request.url.path, exc_info=error)
    return JSONResponse({"error": "unexpected server error"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Make the application answer every error with a JSON ``{"error": ...}`` body.

    :param app: the application.
    """
    app.add_exception_handler(ApiError, _api_error_response)
    app.add_exception_handler(HTTPException, _http_error_response)
    app.add_exception_handler(Exception, _unexpected_error_response)
