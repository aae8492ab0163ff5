"""The API server's process: uvicorn on uvloop with our bounded HTTP protocol, and a
graceful end on SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import socket

import uvicorn
from fastapi import FastAPI

from tailwinds.config import Settings
from tailwinds.logs import configure_logging
from tailwinds.server.app import create_app
from tailwinds.server.http_protocol import protocol_for


def serve(settings: Settings) -> None:
    """Run the API server until SIGTERM or Ctrl-C (logging configured from `settings`)."""
    configure_logging(settings.log_level, settings.log_format)
    server_for(settings).run()


class GracefulServer(uvicorn.Server):
    """On SIGTERM or Ctrl-C (or `handle_exit` called from any thread): stop accepting, let
    streams run `shutdown_grace_s`, end the rest with `server_shutdown`, and return (uvicorn
    alone would re-raise the signal and cancel streams mid-event)."""

    def __init__(self, config: uvicorn.Config, app: FastAPI, settings: Settings) -> None:
        super().__init__(config)
        self.app = app
        self.settings = settings
        self.loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: object) -> None:
        if not self.should_exit and self.loop is not None:
            state = getattr(self.app.state, "tailwinds", None)
            if state is not None:
                self.loop.call_soon_threadsafe(
                    state.predictions.begin_shutdown, self.settings.shutdown_grace_s
                )
        super().handle_exit(sig, frame)  # type: ignore[arg-type]
        self._captured_signals.clear()


def server_for(settings: Settings) -> GracefulServer:
    """The API server, ready to `run()` (in the main thread, or any other: signals are
    only listened to from the main thread)."""
    app = create_app(settings)
    protocol = protocol_for(settings)
    logging.getLogger("tailwinds.server").info(
        "at most %d connections (%s per client), request heads of %d bytes within %g s, "
        "bodies with no gap over %g s (at least %d bytes/s)",
        protocol.table.max_total,
        settings.max_connections_per_client or "no limit",
        settings.max_head_bytes,
        settings.header_timeout_s,
        settings.body_timeout_s,
        settings.body_min_rate,
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        # httptools with bounds on request heads, header time and connections
        http=protocol,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s) + 5,
        # uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or "",
    )
    return GracefulServer(config, app, settings)
