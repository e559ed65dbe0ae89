"""Running the application under uvicorn, with the listening port reported in a file.

With port 0 the operating system picks a free port; whoever started the server learns it from the
port file, which appears only once the server accepts connections.

The HTTP protocol is uvicorn's own, with one addition: it registers each connection in
:class:`~gotoassist_api_server.faults.OpenConnections`, so a ``drop`` fault can close it unanswered.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from pathlib import Path

import uvicorn
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from gotoassist_api_server.app import create_app
from gotoassist_api_server.faults import FaultPlan, OpenConnections
from gotoassist_api_server.settings import ServerSettings
from gotoassist_api_server.store import RecordingStore

log = logging.getLogger(__name__)


class _PortReportingServer(uvicorn.Server):
    """A uvicorn server that writes its listening port to a file once it accepts connections."""

    def __init__(self, config: uvicorn.Config, port_file: Path | None) -> None:
        super().__init__(config)
        self.port_file = port_file

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.started:
            return
        port = self.servers[0].sockets[0].getsockname()[1]
        log.info("Recordings API listening on http://%s:%s", self.config.host, port)
        if self.port_file is not None:
            # Write beside the target and rename, so a reader never sees a half-written file.
            partial = self.port_file.with_name(self.port_file.name + ".partial")
            partial.write_text(f"{port}\n")
            os.replace(partial, self.port_file)


def _connection_tracking_protocol(connections: OpenConnections) -> type[asyncio.Protocol]:
    """Build uvicorn's HTTP protocol class, extended to keep ``connections`` up to date.

    Only the standard :class:`asyncio.Protocol` callbacks are extended, so uvicorn's request handling
    is untouched.
    """

    class ConnectionTrackingProtocol(AutoHTTPProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.tracked_transport = transport
            connections.add(transport)
            super().connection_made(transport)

        def connection_lost(self, exc: Exception | None) -> None:
            connections.discard(self.tracked_transport)
            super().connection_lost(exc)

    return ConnectionTrackingProtocol


def serve(
    db_path: str | os.PathLike[str],
    settings: ServerSettings,
    faults: FaultPlan | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    port_file: str | os.PathLike[str] | None = None,
    log_level: str = "info",
) -> None:
    """Serve the recordings API until interrupted (SIGINT or SIGTERM).

    :param db_path: the SQLite database file; created when missing.
    :param settings: the behaviour options.
    :param faults: the fault plan to start with; none injected when ``None``.
    :param host: the address to listen on.
    :param port: the port to listen on; 0 for any free port.
    :param port_file: a file to write the listening port to, once listening.
    :param log_level: the uvicorn log level, e.g. ``info`` or ``warning``.
    """
    connections = OpenConnections()
    with RecordingStore(db_path) as store:
        app = create_app(store, settings, faults, connections)
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=log_level,
            http=_connection_tracking_protocol(connections),
            # A drop fault finds a request's connection by the peer address in the scope, which
            # forwarded-for headers must not rewrite.
            proxy_headers=False,
        )
        log.info("Serving %s with settings %s", db_path, settings.model_dump(mode="json"))
        if faults is not None and faults != FaultPlan():
            log.info("Injecting faults: %s", faults.model_dump(mode="json"))
        _PortReportingServer(config, Path(port_file) if port_file is not None else None).run()
