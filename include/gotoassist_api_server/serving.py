"""Running the application under uvicorn, with the listening port reported in a file.

With port 0 the operating system picks a free port; whoever started the server learns it from the
port file, which appears only once the server accepts connections.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import uvicorn

from gotoassist_api_server.app import create_app
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


def serve(
    db_path: str | os.PathLike[str],
    settings: ServerSettings,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    port_file: str | os.PathLike[str] | None = None,
    log_level: str = "info",
) -> None:
    """Serve the recordings API until interrupted (SIGINT or SIGTERM).

    :param db_path: the SQLite database file; created when missing.
    :param settings: the behaviour options.
    :param host: the address to listen on.
    :param port: the port to listen on; 0 for any free port.
    :param port_file: a file to write the listening port to, once listening.
    :param log_level: the uvicorn log level, e.g. ``info`` or ``warning``.
    """
    with RecordingStore(db_path) as store:
        app = create_app(store, settings)
        config = uvicorn.Config(app, host=host, port=port, log_level=log_level)
        log.info("Serving %s with settings %s", db_path, settings.model_dump(mode="json"))
        _PortReportingServer(config, Path(port_file) if port_file is not None else None).run()
