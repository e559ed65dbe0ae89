"""Recording IDs named by the transcode, archive and download-link calls.

The API documentation does not settle how several IDs travel, so the server expects exactly one form,
chosen by :attr:`ServerSettings.id_transport`, and refuses a request in any other form with a 400
that says which form it expects. That way a client built for the wrong reading fails loudly instead of
silently acting on nothing.
"""

from __future__ import annotations

import json
import re

from fastapi import Request

from gotoassist_api_server.errors import bad_request
from gotoassist_api_server.settings import IdTransport, ServerSettings

#: The name of the query parameter and of the JSON body member that carry the IDs.
RECORDING_IDS = "recordingIds"
#: The name of the path parameter that carries comma-separated IDs.
PATH_PARAMETER = "id_list"

_DIGITS = re.compile(r"[0-9]+")

_EXPECTED_FORM = {
    IdTransport.PATH: "as comma-separated values in the last URL path segment, e.g. .../1,2,3",
    IdTransport.JSON: 'in a JSON body such as {"recordingIds": ["1", "2"]}, with none in the URL',
    IdTransport.QUERY: "in one comma-separated query parameter, e.g. ?recordingIds=1,2,3",
    IdTransport.QUERY_REPEATED: "in one query parameter per ID, e.g. ?recordingIds=1&recordingIds=2",
}


def _uses_only(transport: IdTransport, path_value: str | None, query_values: list[str], body: bytes) -> bool:
    """Tell whether a request carries its IDs in the given form and in no other."""
    in_path = path_value is not None
    in_query = bool(query_values)
    in_body = bool(body.strip())
    if transport is IdTransport.PATH:
        return in_path and not in_query and not in_body
    if transport is IdTransport.JSON:
        return in_body and not in_path and not in_query
    if in_path or in_body or not in_query:
        return False
    if transport is IdTransport.QUERY:
        return len(query_values) == 1
    return all("," not in value for value in query_values)


def _ids_from_json(body: bytes) -> list[str]:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise bad_request("the request body is not valid JSON", parameter=RECORDING_IDS) from error
    if not isinstance(document, dict) or not isinstance(document.get(RECORDING_IDS), list):
        raise bad_request(
            'the request body must be a JSON object with a "recordingIds" array', parameter=RECORDING_IDS
        )
    recording_ids = document[RECORDING_IDS]
    for recording_id in recording_ids:
        if not isinstance(recording_id, str):
            raise bad_request(
                f"recording ID {recording_id!r} must be a JSON string of digits",
                parameter=RECORDING_IDS,
                value=recording_id,
            )
    return recording_ids


async def requested_recording_ids(request: Request) -> list[str]:
    """Read and check the recording IDs a request names, in the form the server expects.

    Used as a route dependency; the number of IDs named is kept in ``request.state`` for the call log.

    :param request: the incoming request.
    :return: the IDs in request order, duplicates kept.
    :raises ApiError: 400 if the IDs come in another form, if one is not a string of digits, if there
        are none, or if there are more than the list limit.
    """
    settings: ServerSettings = request.app.state.settings
    transport = settings.id_transport
    path_value = request.path_params.get(PATH_PARAMETER)
    query_values = request.query_params.getlist(RECORDING_IDS)
    body = await request.body()

    if not _uses_only(transport, path_value, query_values, body):
        raise bad_request(f"recording IDs are expected {_EXPECTED_FORM[transport]}", parameter=RECORDING_IDS)

    if transport is IdTransport.PATH:
        assert path_value is not None
        recording_ids = path_value.split(",")
    elif transport is IdTransport.JSON:
        recording_ids = _ids_from_json(body)
    elif transport is IdTransport.QUERY:
        recording_ids = query_values[0].split(",")
    else:
        recording_ids = query_values
    request.state.recording_id_count = len(recording_ids)

    for recording_id in recording_ids:
        if not _DIGITS.fullmatch(recording_id):
            raise bad_request(
                f"recording ID {recording_id!r} is not a string of digits",
                parameter=RECORDING_IDS,
                value=recording_id,
            )
    if not recording_ids:
        raise bad_request("no recording IDs were given", parameter=RECORDING_IDS)
    if len(recording_ids) > settings.list_limit:
        raise bad_request(
            f"{len(recording_ids)} recording IDs were given; at most {settings.list_limit} are allowed",
            parameter=RECORDING_IDS,
        )
    return recording_ids
