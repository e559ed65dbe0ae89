"""A local imitation of the GoToAssist Remote Support recordings API, served over real HTTP.

It keeps its state in a SQLite file, grants OAuth tokens, lists, transcodes and archives recordings,
hands out download links, and records every call so a run can be checked afterwards. The points the
public documentation leaves open are options of :class:`~gotoassist_api_server.settings.ServerSettings`;
the faults it injects on purpose follow a :class:`~gotoassist_api_server.faults.FaultPlan`.

Start it with ``gotoassist-api-server serve --db PATH`` after ``gotoassist-api-server seed --db PATH``,
or from tests with :func:`gotoassist_api_server.testing.running_server`.
"""

from __future__ import annotations

from gotoassist_api_server.faults import Endpoint, FaultKind, FaultPlan
from gotoassist_api_server.seeding import seed
from gotoassist_api_server.settings import AuthScheme, IdTransport, ServerSettings
from gotoassist_api_server.stats import stats

__all__ = [
    "AuthScheme",
    "Endpoint",
    "FaultKind",
    "FaultPlan",
    "IdTransport",
    "ServerSettings",
    "seed",
    "stats",
]
