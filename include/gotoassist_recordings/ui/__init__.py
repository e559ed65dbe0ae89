"""A page in the Airflow UI that shows what the nightly runs did: recordings per day and the last runs.

:mod:`~gotoassist_recordings.ui.plugin` registers it with Airflow; ``plugins/`` only imports it.
"""

from __future__ import annotations
