"""Queue mode checks the Redis it is given before it starts: one that does not answer, or
one older than 7.0 (whose XAUTOCLAIM keeps a withdrawn job pending for ever), stops
`tailwinds start` and `tailwinds worker` with one line naming TAILWINDS_REDIS_URL; an API
node or worker opened from code gets a `ValueError`. A server that refuses INFO is taken
as it is."""

from __future__ import annotations

import asyncio
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tailwinds.config import Settings
from tailwinds.transport.queue import QueueClient, check_server, connect
from tests.conftest import free_port
from tests.integration.test_startup_errors import run_cli
from tests.requirements import require_command


class _OldRedis(socketserver.StreamRequestHandler):
    """Speaks enough RESP (https://redis.io/docs/latest/develop/reference/protocol-spec/)
    for a client to connect, ping and ask INFO, and reports Redis 6.2.14. Test equipment:
    neither Debian's archive nor PyPI has a Redis 6.2 to run here."""

    def handle(self) -> None:
        while header := self.rfile.readline():
            if not header.startswith(b"*"):
                return
            words = []
            for _ in range(int(header[1:])):
                size = int(self.rfile.readline()[1:])
                words.append(self.rfile.read(size + 2)[:-2])
            name = words[0].upper()
            if name == b"PING":
                self.wfile.write(b"+PONG\r\n")
            elif name == b"INFO":
                body = b"# Server\r\nredis_version:6.2.14\r\nredis_mode:standalone\r\n"
                self.wfile.write(b"$%d\r\n%s\r\n" % (len(body), body))
            else:
                self.wfile.write(b"-ERR unknown command '%s'\r\n" % name)


@pytest.fixture
def old_redis_url() -> Iterator[str]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _OldRedis)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"redis://127.0.0.1:{server.server_address[1]}/0"
    server.shutdown()
    server.server_close()


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


@pytest.mark.parametrize("command", [("worker",), ("start",)])
def test_an_old_redis_stops_the_start(
    tmp_path: Path, postgres_url: str, old_redis_url: str, command: tuple[str, ...]
) -> None:
    line = _one_line(
        run_cli(
            tmp_path,
            *command,
            TAILWINDS_MODE="queue",
            TAILWINDS_DATABASE_URL=postgres_url,
            TAILWINDS_REDIS_URL=old_redis_url,
        )
    )
    assert line.startswith("Error: TAILWINDS_REDIS_URL: expected Redis 7.0 or newer"), line
    assert line.endswith("got Redis 6.2.14"), line


@pytest.mark.parametrize("command", [("worker",), ("start",)])
def test_a_redis_that_does_not_answer_stops_the_start(
    tmp_path: Path, postgres_url: str, command: tuple[str, ...]
) -> None:
    line = _one_line(
        run_cli(
            tmp_path,
            *command,
            TAILWINDS_MODE="queue",
            TAILWINDS_DATABASE_URL=postgres_url,
            TAILWINDS_REDIS_URL=f"redis://:hunter2@127.0.0.1:{free_port()}/0",
        )
    )
    assert line.startswith(
        "Error: TAILWINDS_REDIS_URL: expected a Redis server that answers, got ConnectionError"
    ), line
    assert "hunter2" not in line


def test_local_mode_does_not_ask_for_redis(tmp_path: Path, old_redis_url: str) -> None:
    # `db upgrade` stands for any command of local mode: it would fail on this Redis
    result = run_cli(tmp_path, "db", "upgrade", TAILWINDS_REDIS_URL=old_redis_url)
    assert result.returncode == 0, result.stderr


def test_an_api_node_opened_from_code_refuses_an_old_redis(old_redis_url: str) -> None:
    client = QueueClient(Settings(redis_url=old_redis_url))
    with pytest.raises(ValueError, match=r"got Redis 6\.2\.14"):
        asyncio.run(client.open())
    pool = client.redis.connection_pool
    connections = [*pool._available_connections, *pool._in_use_connections]
    assert connections and not any(c.is_connected for c in connections)  # closed again


def test_the_tests_redis_passes(redis_url: str) -> None:
    async def check() -> None:
        client = connect(redis_url)
        try:
            await check_server(client)
        finally:
            await client.aclose()

    asyncio.run(check())


def test_a_redis_that_refuses_info_is_taken_as_it_is(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    binary = require_command(
        "redis-server", "`apt-get install redis-server` (scripts/install-test-deps)"
    )
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", "--rename-command", "INFO", '""'],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with redis.Redis(port=port) as probe:
                    probe.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

        async def check() -> None:
            client = connect(f"redis://127.0.0.1:{port}/0")
            try:
                await check_server(client)
            finally:
                await client.aclose()

        asyncio.run(check())
        assert "its version is not checked" in caplog.text
    finally:
        process.terminate()
        process.wait(10)
