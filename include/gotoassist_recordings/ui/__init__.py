"""A page in the Airflow UI that shows what the nightly runs did: recordings per day and the last runs.

:mod:`~gotoassist_recordings.ui.plugin` registers it with Airflow; ``plugins/`` only imports it.
"""

from __future__ import annotations

#: Where the api-server mounts the page's app, and the page's route in the Airflow UI.
URL_PREFIX = "/gotoassist-recordings"
UI_ROUTE = "gotoassist-recordings"
PAGE_TITLE = "GoToAssist recordings"
