"""The `tailwinds` command."""

from __future__ import annotations

import logging
import sys

import click

from tailwinds import __version__
from tailwinds.config import Settings


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@click.group()
@click.version_option(__version__, prog_name="tailwinds")
def main() -> None:
    """Tailwinds: run LLM chatflows behind one HTTP endpoint that streams their answers."""


@main.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default 3000).")
@click.option("--home", default=None, help="Data folder (TAILWINDS_HOME, default ~/.tailwinds).")
@click.option("--database-url", default=None, help="TAILWINDS_DATABASE_URL (default: SQLite).")
@click.option("--log-level", default=None, help="TAILWINDS_LOG_LEVEL (default INFO).")
def start(
    host: str | None,
    port: int | None,
    home: str | None,
    database_url: str | None,
    log_level: str | None,
) -> None:
    """Run the server."""
    settings = Settings.from_env(
        host=host, port=port, home=home, database_url=database_url, log_level=log_level
    )
    serve(settings)


def serve(settings: Settings) -> None:
    import uvicorn

    from tailwinds.server.app import create_app

    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
    )
