"""Airflow hook, operators and sensor for GoToAssist Remote Support session recordings."""

from __future__ import annotations

__version__ = "0.1.0"

# The distribution name: Airflow's provider discovery requires ``package-name`` to match it.
PACKAGE_NAME = "gotoassist-recordings"


def get_provider_info() -> dict:
    """Describe this package to Airflow's provider manager (connection type and its form)."""
    return {
        "package-name": PACKAGE_NAME,
        "name": "GoToAssist Recordings",
        "description": "Take GoToAssist Remote Support session recordings from listing to archive.",
        "versions": [__version__],
        "connection-types": [
            {
                "hook-class-name": "gotoassist_recordings.hooks.gotoassist.GoToAssistHook",
                "hook-name": "GoToAssist",
                "connection-type": "gotoassist",
                "ui-field-behaviour": {
                    "hidden-fields": [],
                    "relabeling": {
                        "host": "API base URL",
                        "schema": "Scheme (https unless the host says otherwise)",
                        "login": "OAuth client ID",
                        "password": "OAuth client secret",
                    },
                    "placeholders": {
                        "host": "https://api.getgo.com",
                        "login": "client ID of your GoTo developer app",
                    },
                },
                "conn-fields": {
                    "refresh_token": {
                        "label": "Refresh token",
                        "description": "Long-lived token from a one-time authorization-code login.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "personal_access_token": {
                        "label": "Personal access token",
                        "description": "Used instead of a refresh token when set.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "access_token": {
                        "label": "Static access token",
                        "description": "A ready-made bearer token; it is never refreshed.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    # No default in the form: Airflow masks fields named like "token", so a pre-filled
                    # default would be saved back as "***".
                    "token_url": {
                        "label": "Token URL",
                        "description": "OAuth token endpoint; empty for "
                        "https://authentication.logmeininc.com/oauth/token.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "account_key": {
                        "label": "Account key",
                        "description": "Default accountKey filter of the list call (digits).",
                        "schema": {"type": ["string", "null"], "pattern": "^[0-9]*$"},
                    },
                    "user_key": {
                        "label": "User key",
                        "description": "Default userKey filter of the list call (digits).",
                        "schema": {"type": ["string", "null"], "pattern": "^[0-9]*$"},
                    },
                    "company_id": {
                        "label": "Company ID",
                        "description": "Default companyId filter of the list call (digits).",
                        "schema": {"type": ["string", "null"], "pattern": "^[0-9]*$"},
                    },
                    "auth_scheme": {
                        "label": "Authorization scheme",
                        "description": "bearer (Authorization: Bearer) or oauth (OAuth oauth_token=).",
                        "schema": {"type": ["string", "null"], "enum": ["bearer", "oauth", None]},
                    },
                    "id_transport": {
                        "label": "How recording IDs travel",
                        "description": "path (comma-separated in the URL), json, query or query-repeated.",
                        "schema": {
                            "type": ["string", "null"],
                            "enum": ["path", "json", "query", "query-repeated", None],
                        },
                    },
                    "to_time_inclusive": {
                        "label": "Server treats toTime as inclusive",
                        "description": "Send toTime one second early so windows stay half-open.",
                        "schema": {"type": ["boolean", "null"]},
                    },
                    "timeout": {
                        "label": "Request timeout (seconds)",
                        "schema": {"type": ["number", "null"], "minimum": 1},
                    },
                    "max_requests_per_second": {
                        "label": "Requests per second",
                        "description": "The API limit, shared by all tasks and workers using the connection.",
                        "schema": {"type": ["integer", "null"], "minimum": 1, "default": 10},
                    },
                    "rate_limit_store": {
                        "label": "Where the request budget is kept",
                        "description": "sqlite:///<absolute path> (one machine, the default), redis://... "
                        "(several machines) or memory (one process).",
                        "schema": {"type": ["string", "null"]},
                    },
                },
            }
        ],
    }
