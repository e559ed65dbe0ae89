"""The Airflow connection that points the GoToAssist hook at a running local API server."""

from __future__ import annotations

import json
from typing import Any

from gotoassist_api_server.seeding import (
    ACCOUNT_KEY,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
)


def airflow_connection(base_url: str, **extra: Any) -> dict[str, Any]:
    """Describe a ``gotoassist`` connection to a local server holding the seeded credentials.

    :param base_url: the server's root URL, e.g. ``http://127.0.0.1:8123``.
    :param extra: extra fields to set or override (``id_transport="json"``, ``refresh_token=None``
        to drop one, ...); ``None`` removes a field.
    :return: the connection as Airflow's JSON form takes it, for ``AIRFLOW_CONN_<ID>``.
    """
    fields = {
        "refresh_token": DEFAULT_REFRESH_TOKEN,
        "token_url": f"{base_url}/oauth/token",
        "account_key": ACCOUNT_KEY,
        **extra,
    }
    return {
        "conn_type": "gotoassist",
        "host": base_url,
        "login": DEFAULT_CLIENT_ID,
        "password": DEFAULT_CLIENT_SECRET,
        "extra": {name: value for name, value in fields.items() if value is not None},
    }


def airflow_connection_json(base_url: str, **extra: Any) -> str:
    """Return :func:`airflow_connection` as the JSON text of an ``AIRFLOW_CONN_<ID>`` variable."""
    return json.dumps(airflow_connection(base_url, **extra))
