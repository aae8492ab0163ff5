"""The `tailwinds` command."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from tailwinds import __version__
from tailwinds.config import Settings
from tailwinds.logs import configure_logging

if TYPE_CHECKING:
    from tailwinds.client import Tailwinds

T = TypeVar("T")
Command = TypeVar("Command", bound=Callable[..., Any])


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
    settings = _settings(
        host=host, port=port, home=home, database_url=database_url, log_level=log_level
    )
    _preflight(settings, redis=settings.mode == "queue")
    from tailwinds.server.serve import serve  # the server's imports only for `start`

    serve(settings)


def _settings(*, open_secrets: bool = True, **flags: Any) -> Settings:
    """The settings, or exit 1 with one line naming the setting that is wrong (no
    traceback). With `open_secrets`, the secret key (or the home folder's key file) is
    tried as well: a bad one stops the process now, not at its first credential."""
    from tailwinds.store.secrets import SecretBox, SecretBoxError

    try:
        settings = Settings.from_env(**flags)
        if settings.mode == "queue":
            settings.check_queue_mode()
        if open_secrets:
            SecretBox.open(settings.secret_key, settings.home)
    except (ValueError, SecretBoxError) as exc:
        raise click.ClickException(str(exc)) from None
    return settings


def _preflight(settings: Settings, redis: bool = False) -> None:
    """Reach the database (migrated now) and, with `redis`, Redis (its version checked):
    a URL that leads nowhere is one line naming the setting (exit 1), not a traceback from
    the server's start."""
    from tailwinds.preflight import PreflightFailed, check_database, check_redis

    try:
        check_database(settings)
        if redis:
            # its warnings (a Redis that refuses INFO) as the process' own log lines
            configure_logging(settings.log_level, settings.log_format)
            check_redis(settings)
    except PreflightFailed as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.option("--concurrency", type=int, default=None, help="Jobs at once (default 50).")
@click.option("--database-url", default=None, help="TAILWINDS_DATABASE_URL (PostgreSQL).")
@click.option("--redis-url", default=None, help="TAILWINDS_REDIS_URL.")
@click.option("--log-level", default=None, help="TAILWINDS_LOG_LEVEL (default INFO).")
def worker(
    concurrency: int | None,
    database_url: str | None,
    redis_url: str | None,
    log_level: str | None,
) -> None:
    """Run queued predictions (TAILWINDS_MODE=queue): as many workers as you like."""
    import uvloop

    from tailwinds.worker import run_worker

    settings = _settings(
        mode="queue",
        database_url=database_url,
        redis_url=redis_url,
        log_level=log_level,
        worker_concurrency=concurrency,
    )
    _preflight(settings, redis=True)
    uvloop.run(run_worker(settings, settings.worker_concurrency))


@main.group("db")
def db_group() -> None:
    """The database."""


@db_group.command("upgrade")
@click.option("--database-url", default=None, help="TAILWINDS_DATABASE_URL (default: SQLite).")
@click.option("--home", default=None, help="TAILWINDS_HOME.")
def db_upgrade(database_url: str | None, home: str | None) -> None:
    """Apply the migrations (`tailwinds start` does it too)."""
    settings = _settings(open_secrets=False, database_url=database_url, home=home)
    _preflight(settings)
    from tailwinds.preflight import where

    click.echo(f"database at {where(settings.database_url)} is up to date")


def _client(url: str, api_key: str | None, admin_token: str | None) -> Tailwinds:
    from tailwinds.client import Tailwinds

    return Tailwinds(url, api_key, admin_token=admin_token)


def client_options(command: Command) -> Command:
    """--url, --api-key and --admin-token, or TAILWINDS_URL, TAILWINDS_API_KEY and
    TAILWINDS_ADMIN_TOKEN."""
    command = click.option(
        "--admin-token", envvar="TAILWINDS_ADMIN_TOKEN", default=None, help="For management calls."
    )(command)
    command = click.option(
        "--api-key", envvar="TAILWINDS_API_KEY", default=None, help="The chatflow's API key."
    )(command)
    return click.option(
        "--url", envvar="TAILWINDS_URL", default="http://127.0.0.1:3000", show_default=True
    )(command)


def _fail_cleanly(call: Callable[[], T]) -> T:
    from tailwinds.client import TailwindsClientError

    try:
        return call()
    except TailwindsClientError as exc:
        raise click.ClickException(str(exc)) from exc


@main.command("mcp")
@click.option(
    "--url",
    envvar="TAILWINDS_URL",
    default="http://127.0.0.1:3000",
    show_default=True,
    help="The running Tailwinds (its /mcp endpoint).",
)
@click.option(
    "--key",
    envvar="TAILWINDS_API_KEY",
    default=None,
    help="A chatflow's API key, or the admin token, sent as the bearer token.",
)
def mcp_command(url: str, key: str | None) -> None:
    """Serve the exposed chatflows as MCP tools on stdin/stdout, relayed to --url (for MCP
    clients that only start local commands)."""
    import asyncio

    from tailwinds.mcp_bridge import run_bridge

    try:
        asyncio.run(run_bridge(url, key))
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # the client reads stderr: one line, not a traceback
        cause: BaseException = exc
        while isinstance(cause, BaseExceptionGroup) and cause.exceptions:
            cause = cause.exceptions[0]  # anyio's task groups wrap the real error
        raise click.ClickException(f"the MCP bridge to {url} stopped: {cause!r}") from exc


@main.command("predict")
@click.argument("chatflow_id")
@click.argument("question")
@click.option("--no-stream", is_flag=True, help="Wait for the whole answer.")
@click.option("--chat-id", default=None, help="Continue this conversation.")
@client_options
def predict_command(
    chatflow_id: str,
    question: str,
    no_stream: bool,
    chat_id: str | None,
    url: str,
    api_key: str | None,
    admin_token: str | None,
) -> None:
    """Ask a chatflow; the answer prints as it streams."""
    from tailwinds.client import console

    with _client(url, api_key, admin_token) as client:
        chat = _fail_cleanly(
            lambda: console.predict(
                client,
                chatflow_id,
                question,
                chat_id=chat_id,
                stream=not no_stream,
                out=sys.stdout,
                err=sys.stderr,
            )
        )
    if chat:
        click.echo(f"chat id: {chat}", err=True)


@main.command("chat")
@click.argument("chatflow_id")
@client_options
def chat_command(chatflow_id: str, url: str, api_key: str | None, admin_token: str | None) -> None:
    """A conversation with a chatflow in the terminal."""
    from tailwinds.client import console

    with _client(url, api_key, admin_token) as client:
        _fail_cleanly(lambda: console.chat(client, chatflow_id, out=sys.stdout, err=sys.stderr))


@main.group("chatflows")
def chatflows_group() -> None:
    """List, create, export and import chatflows."""


@chatflows_group.command("list")
@client_options
def chatflows_list(url: str, api_key: str | None, admin_token: str | None) -> None:
    with _client(url, api_key, admin_token) as client:
        for chatflow in _fail_cleanly(client.chatflows.list):
            click.echo(f"{chatflow['id']}  {chatflow['name']}  (updated {chatflow['updatedDate']})")


@chatflows_group.command("create")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@client_options
def chatflows_create(file: str, url: str, api_key: str | None, admin_token: str | None) -> None:
    """From a JSON file {name, flowData, …} (an export works too). Prints the new id."""
    with _client(url, api_key, admin_token) as client:
        click.echo(_fail_cleanly(lambda: client.chatflows.create(file))["id"])


@chatflows_group.command("export")
@click.argument("chatflow_id")
@client_options
def chatflows_export(
    chatflow_id: str, url: str, api_key: str | None, admin_token: str | None
) -> None:
    """Print a chatflow as JSON (secrets stay masked)."""
    import json

    with _client(url, api_key, admin_token) as client:
        click.echo(json.dumps(_fail_cleanly(lambda: client.chatflows.get(chatflow_id)), indent=2))


chatflows_group.add_command(chatflows_create, "import")


@main.command("export")
@click.option("-o", "--out", type=click.Path(dir_okay=False), help="File (default: stdout).")
@click.option(
    "--with-credentials",
    is_flag=True,
    help="Include credentials and inline secrets, encrypted with a passphrase you choose.",
)
@click.option("--passphrase", envvar="TAILWINDS_EXPORT_PASSPHRASE", default=None, hidden=True)
@client_options
def export_command(
    out: str | None,
    with_credentials: bool,
    passphrase: str | None,
    url: str,
    api_key: str | None,
    admin_token: str | None,
) -> None:
    """Export every chatflow as one JSON file (for backups and moving servers)."""
    import json

    if with_credentials and not passphrase:
        passphrase = click.prompt(
            "Passphrase for the secrets", hide_input=True, confirmation_prompt=True
        )
    with _client(url, api_key, admin_token) as client:
        bundle = _fail_cleanly(lambda: client.export(passphrase if with_credentials else None))
    text = json.dumps(bundle, indent=2)
    if out:
        Path(out).write_text(text + "\n")
        click.echo(f"{len(bundle['chatflows'])} chatflows written to {out}", err=True)
    else:
        click.echo(text)


@main.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--no-credentials", is_flag=True, help="Leave the file's secrets out.")
@click.option("--passphrase", envvar="TAILWINDS_EXPORT_PASSPHRASE", default=None, hidden=True)
@client_options
def import_command(
    file: str,
    no_credentials: bool,
    passphrase: str | None,
    url: str,
    api_key: str | None,
    admin_token: str | None,
) -> None:
    """Create the chatflows (and credentials) of an export file."""
    import json

    bundle = json.loads(Path(file).read_text())
    if no_credentials:
        passphrase = None
    elif bundle.get("secrets") and not passphrase:
        passphrase = click.prompt("Passphrase of the export", hide_input=True)
    with _client(url, api_key, admin_token) as client:
        report = _fail_cleanly(lambda: client.import_bundle(bundle, passphrase))
    for made in report["chatflows"]:
        click.echo(f"imported {made['id']}  {made['name']}")
    for failed in report["failed"]:
        click.echo(f"failed   {failed['name']}: {failed['error']}", err=True)
    for key in report["apiKeys"]:
        click.echo(f"new API key {key['name']}: {key['key']}  (shown once)")
    if report["credentials"]:
        click.echo(f"{report['credentials']} credentials imported")
    if report.get("note"):
        click.echo(report["note"], err=True)
    if report["failed"]:
        raise SystemExit(1)


@main.group("demo")
def demo_group() -> None:
    """Ready-made chatflows that run offline."""


@demo_group.command("docs-qa")
@click.option(
    "--docs",
    type=click.Path(exists=True, file_okay=False),
    default="docs",
    show_default=True,
    help="A folder of markdown (its parent's README.md is read too).",
)
@client_options
def demo_docs_qa(docs: str, url: str, api_key: str | None, admin_token: str | None) -> None:
    """Answer questions about a folder of markdown (Tailwinds' own docs by default) with the
    local model and the local embeddings: nothing leaves the machine."""
    from tailwinds.demo import install_docs_qa

    with _client(url, api_key, admin_token) as client:
        chatflow = _fail_cleanly(lambda: install_docs_qa(client, Path(docs)))
    click.echo(f"Created the chatflow {chatflow['name']!r}: {chatflow['id']}")
    click.echo(f'Ask it: tailwinds predict {chatflow["id"]} "How do I resume a stream?"')
