"""What a database or Redis URL may say, and what `tailwinds start`/`worker` answer when
it says something else: one line naming the setting (never its password), no traceback,
and a bound on how long a server that never answers is waited for.

A Redis URL gives where Redis is, who we are, the database and TLS; the options that set
how the clients talk (timeouts, retries, pool, RESP version, decoding) are refused, since
the token path reads raw RESP2 replies as bytes and its timeouts are sized for blocking
reads (decode_responses=true would hand it str, legacy_responses=false other shapes)."""

from __future__ import annotations

import asyncio
import socket
import uuid
from pathlib import Path

import pytest

from tailwinds.transport.queue import connect
from tailwinds.transport.redis_connection import (
    CancellableSSLConnection,
    RefusedOption,
    url_options,
)
from tests.integration.test_redis_version import one_line
from tests.integration.test_startup_errors import run_cli


@pytest.mark.parametrize(
    "option",
    [
        "decode_responses=true",
        "legacy_responses=false",
        "protocol=3",
        "socket_timeout=0.001",
        "encoding=bogus",
        "retry=1",
        "event_dispatcher=x",
        "maint_notifications_config=x",
        "max_connections=1",
        "health_check_interval=0",
    ],
)
def test_options_the_clients_set_are_refused_by_name(option: str) -> None:
    name = option.split("=")[0]
    with pytest.raises(RefusedOption, match=f"the option '{name}' is not taken"):
        url_options(f"redis://:hunter2@127.0.0.1:6379/0?{option}")


def test_an_option_redis_py_does_not_know_is_not_quoted() -> None:
    with pytest.raises(RefusedOption) as refused:
        url_options("redis://127.0.0.1:6379/0?hunter2=1")
    assert "hunter2" not in str(refused.value)
    assert "an option redis-py does not know" in str(refused.value)


def test_address_credentials_database_and_tls_are_taken() -> None:
    options = url_options(
        "rediss://me:p%40ss@cache.example:6380/3?client_name=api&ssl_cert_reqs=none"
        "&ssl_ca_certs=/etc/ca.pem"
    )
    assert options == {
        "host": "cache.example",
        "port": 6380,
        "db": 3,
        "username": "me",
        "password": "p@ss",
        "client_name": "api",
        "ssl_cert_reqs": "none",
        "ssl_ca_certs": "/etc/ca.pem",
        "connection_class": CancellableSSLConnection,
    }


def test_the_clients_read_resp2_bytes(redis_url: str) -> None:
    # redis-py 8.2 asks for RESP3 by default, where XREAD's reply is a map
    key = f"twtest-resp-{uuid.uuid4().hex[:8]}"

    async def read() -> object:
        client = connect(redis_url)
        try:
            await client.xadd(key, {"f": "v"})
            return await client.xread({key: "0-0"})
        finally:
            await client.delete(key)
            await client.aclose()

    reply = asyncio.run(read())
    assert isinstance(reply, list), reply
    assert reply[0][0] == key.encode() and reply[0][1][0][1] == {b"f": b"v"}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://[", "expected a URL such as"),
        ("redis://:hunter2@127.0.0.1:port/0", "expected a URL such as"),
        ("redis://:hunter\uff0f2@127.0.0.1:6379/0", "expected a URL such as"),  # NFKC
        ("redis://:hunter2@127.0.0.1:99999/0", "expected a URL such as"),
        ("redis://:hunter2@127.0.0.1:6379/0?hunter2=1", "an option redis-py does not know"),
        ("redis://:hunter2@127.0.0.1:6379/0?decode_responses=true", "'decode_responses' is not"),
        ("redis://:hunter2@127.0.0.1:6379/0?ssl_hunter2=1", "expected a URL such as"),
    ],
)
def test_a_redis_url_that_cannot_be_taken_is_one_line_without_its_password(
    tmp_path: Path, postgres_url: str, url: str, expected: str
) -> None:
    line = one_line(
        run_cli(tmp_path, "worker", TAILWINDS_DATABASE_URL=postgres_url, TAILWINDS_REDIS_URL=url)
    )
    assert line.startswith("Error: TAILWINDS_REDIS_URL: "), line
    assert expected in line and "hunter" not in line, line


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("postgresql://postgres:hunter2@127.0.0.1:port/postgres", "ValueError"),
        ("postgresql+asyncpg://postgres:hunter2@127.0.0.1:99999/postgres", "OverflowError"),
        ("postgresql://postgres:hunter2@127.0.0.1:5432/postgres?sslmode=require", "TypeError"),
    ],
)
def test_a_database_url_that_cannot_be_read_is_one_line_without_its_password(
    tmp_path: Path, url: str, kind: str
) -> None:
    line = one_line(run_cli(tmp_path, "db", "upgrade", TAILWINDS_DATABASE_URL=url))
    assert line.startswith("Error: TAILWINDS_DATABASE_URL: expected a URL such as"), line
    assert line.endswith(f"({kind})") and "hunter2" not in line, line


@pytest.mark.parametrize(
    ("command", "setting", "url", "said"),
    [
        (
            ("db", "upgrade"),
            "TAILWINDS_DATABASE_URL",
            "postgresql://postgres:hunter2@127.0.0.1:{port}/x",
            "a database that answers, got TimeoutError: no answer within 10 s",
        ),
        (
            ("worker",),
            "TAILWINDS_REDIS_URL",
            "redis://127.0.0.1:{port}/0",
            "a Redis server that answers, got TimeoutError",
        ),
    ],
)
def test_a_server_that_never_answers_stops_the_start(
    tmp_path: Path, postgres_url: str, command: tuple[str, ...], setting: str, url: str, said: str
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        env = {
            "TAILWINDS_DATABASE_URL": postgres_url,
            setting: url.format(port=silent.getsockname()[1]),
        }
        line = one_line(run_cli(tmp_path, *command, **env))
    assert line.startswith(f"Error: {setting}: expected {said}"), line


@pytest.mark.parametrize(
    ("command", "setting", "url"),
    [
        (("worker",), "TAILWINDS_REDIS_URL", "rediss://127.0.0.1:6379/0?ssl_cert_reqs=S3cretValue"),
        (
            ("db", "upgrade"),
            "TAILWINDS_DATABASE_URL",
            "postgresql://postgres@127.0.0.1:5432/postgres?target_session_attrs=S3cretValue",
        ),
    ],
)
def test_a_value_the_driver_quotes_back_is_not_printed(
    tmp_path: Path, postgres_url: str, command: tuple[str, ...], setting: str, url: str
) -> None:
    env = {"TAILWINDS_DATABASE_URL": postgres_url, setting: url}
    line = one_line(run_cli(tmp_path, *command, **env))
    assert line.startswith(f"Error: {setting}: "), line
    assert "S3cret" not in line, line


def test_an_upgrade_names_the_database_without_its_options(
    tmp_path: Path, postgres_url: str
) -> None:
    done = run_cli(
        tmp_path, "db", "upgrade", TAILWINDS_DATABASE_URL=f"{postgres_url}?password=s3cretpw"
    )
    assert done.returncode == 0, done.stderr
    name = postgres_url.rsplit("/", 1)[1]
    assert done.stdout.strip() == f"database at 127.0.0.1:5432/{name} is up to date"
    assert "s3cret" not in done.stdout + done.stderr


def test_a_database_of_a_newer_version_is_one_line(tmp_path: Path) -> None:
    import sqlite3

    url = f"sqlite+aiosqlite:///{tmp_path / 'newer.db'}"
    assert run_cli(tmp_path, "db", "upgrade", TAILWINDS_DATABASE_URL=url).returncode == 0
    with sqlite3.connect(tmp_path / "newer.db") as db:
        db.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    line = one_line(run_cli(tmp_path, "db", "upgrade", TAILWINDS_DATABASE_URL=url))
    assert line.startswith(
        "Error: TAILWINDS_DATABASE_URL: expected a database migrated by this version"
    ), line
    assert "9999_from_the_future" in line
