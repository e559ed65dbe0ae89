"""A ``gotoassist`` connection is validated whole before any call, and every wrong field is named."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from airflow.sdk import Connection

from gotoassist_recordings.exceptions import GoToAssistConfigError
from gotoassist_recordings.settings import (
    DEFAULT_TIMEOUT_SECONDS,
    DEFAULT_TOKEN_URL,
    AuthScheme,
    GoToAssistSettings,
    IdTransport,
)


def _connection(extra: Any, **fields: Any) -> Connection:
    values = {"host": "https://api.getgo.com", "login": "client", "password": "secret", **fields}
    return Connection(conn_id="gotoassist_test", conn_type="gotoassist", extra=json.dumps(extra), **values)


def test_fields_left_empty_in_the_connection_form_take_their_defaults():
    # The connection form saves every field left empty as null.
    extra = {"refresh_token": "a-refresh-token", "account_key": "41"} | dict.fromkeys(
        ("token_url", "auth_scheme", "id_transport", "to_time_inclusive", "timeout", "rate_limit_store")
    )

    settings = GoToAssistSettings.from_connection(_connection(extra))

    assert settings.extra.token_url == DEFAULT_TOKEN_URL
    assert settings.extra.auth_scheme is AuthScheme.BEARER
    assert settings.extra.id_transport is IdTransport.PATH
    assert settings.extra.to_time_inclusive is False
    assert settings.extra.timeout == DEFAULT_TIMEOUT_SECONDS


def test_a_misspelt_key_is_refused_with_the_key_it_was_meant_to_be():
    with pytest.raises(GoToAssistConfigError) as raised:
        GoToAssistSettings.from_connection(_connection({"refresh_tokn": "a-refresh-token"}))

    message = str(raised.value)
    assert message.startswith(
        "Connection 'gotoassist_test' has invalid extra fields (refresh_tokn: Extra inputs are not "
        "permitted); did you mean 'refresh_tokn' for 'refresh_token'?. Allowed keys: refresh_token, "
    )
    assert "a-refresh-token" not in message


def test_values_of_the_wrong_type_are_each_named():
    extra = {
        "refresh_token": "a-refresh-token",
        "timeout": "soon",
        "to_time_inclusive": "maybe",
        "max_requests_per_second": 0,
        "auth_scheme": "basic",
        "account_key": "41-42",
    }

    with pytest.raises(GoToAssistConfigError) as raised:
        GoToAssistSettings.from_connection(_connection(extra))

    message = str(raised.value)
    for field in ("timeout", "to_time_inclusive", "max_requests_per_second", "auth_scheme", "account_key"):
        assert f"{field}: " in message


def test_a_masked_value_saved_back_from_the_form_is_refused_naming_the_field():
    extra = {"refresh_token": "a-refresh-token", "token_url": "***"}

    with pytest.raises(GoToAssistConfigError, match=r"token_url holds '\*\*\*', the mask Airflow shows"):
        GoToAssistSettings.from_connection(_connection(extra))


@pytest.mark.parametrize(
    ("extra", "fields", "message"),
    [
        pytest.param({"account_key": "41"}, {}, "holds no credential", id="no-credential"),
        pytest.param(
            {"refresh_token": "a-refresh-token"},
            {"password": None},
            "needs the OAuth client ID (login) and client secret (password)",
            id="refresh-token-without-client-secret",
        ),
        pytest.param(
            {"access_token": "a-token"}, {"host": "ftp://api.getgo.com"}, "must be an http(s) URL", id="ftp"
        ),
        pytest.param(["refresh_token"], {}, "extra must be a JSON object", id="extra-not-an-object"),
    ],
)
def test_a_connection_that_cannot_work_is_refused_saying_why(extra, fields, message):
    with pytest.raises(GoToAssistConfigError, match=re.escape(message)):
        GoToAssistSettings.from_connection(_connection(extra, **fields))
