"""The Airflow plugin that adds the "GoToAssist recordings" page to the Airflow UI.

The api-server mounts the page's FastAPI app under ``/gotoassist-recordings``; the external view
adds "GoToAssist recordings" to the UI's navigation and shows the page inside the UI, in an iframe.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from gotoassist_recordings.ui import PAGE_TITLE, UI_ROUTE, URL_PREFIX


class GoToAssistRecordingsPlugin(AirflowPlugin):
    """Show what the nightly runs did: recordings archived per day and the outcome of the last runs."""

    name = "gotoassist_recordings"
    external_views = [
        {
            "name": PAGE_TITLE,
            # Relative to the UI's base URL, so the page also works when Airflow is served under a path.
            "href": f"{URL_PREFIX.lstrip('/')}/",
            "url_route": UI_ROUTE,
            "destination": "nav",
            "category": "browse",
        }
    ]

    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:
        """The page's app, imported only where it is asked for.

        Every Airflow process loads the plugins folder, each task process included (for macros);
        only the api-server serves the page, so only it pays for importing the app.
        """
        from gotoassist_recordings.ui.app import app

        return [{"app": app, "url_prefix": URL_PREFIX, "name": PAGE_TITLE}]
