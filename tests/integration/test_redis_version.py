"""Queue mode checks the Redis it is given before it starts: a URL that cannot be read, a
server that does not answer, or one older than 7.0 (whose XAUTOCLAIM keeps a withdrawn job
pending for ever) stops `tailwinds start` and `tailwinds worker` with one line naming
TAILWINDS_REDIS_URL and never its password; an API node or worker opened from code gets a
`ValueError`. A server that refuses INFO is taken as it is; one that may evict keys is
warned of. A Redis on a Unix socket carries queue mode as one on TCP does. (What a URL
may say: test_preflight_urls.py.)"""

from __future__ import annotations

import asyncio
import json
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from tailwinds.config import Settings
from tailwinds.transport.queue import QueueClient, check_server, connect
from tests.conftest import free_port, start_worker
from tests.integration.test_queue_mode import queue_env, start_cluster, stream
from tests.integration.test_startup_errors import run_cli
from tests.mock_openai import MockOpenAI
from tests.requirements import require_command
from tests.sse_frames import numbered_tokens, parse_numbered


class _OldRedis(socketserver.StreamRequestHandler):
    """Speaks enough RESP (https://redis.io/docs/latest/develop/reference/protocol-spec/)
    for a client to connect, ping and ask INFO, and reports the server's `version` (Redis
    6.2.14 unless told). Test equipment: neither Debian's archive nor PyPI has a Redis 6.2
    to run here."""

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
                version = getattr(self.server, "version", b"6.2.14")
                body = b"# Server\r\nredis_version:%s\r\nredis_mode:standalone\r\n" % version
                self.wfile.write(b"$%d\r\n%s\r\n" % (len(body), body))
            else:
                self.wfile.write(b"-ERR unknown command '%s'\r\n" % name)


@contextmanager
def _fake_redis(version: bytes = b"6.2.14") -> Iterator[str]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _OldRedis)
    server.daemon_threads = True
    server.version = version  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"redis://127.0.0.1:{server.server_address[1]}/0"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def old_redis_url() -> Iterator[str]:
    with _fake_redis() as url:
        yield url


@contextmanager
def _own_redis(tmp_path: Path, *args: str) -> Iterator[int]:
    """A redis-server of the test's own (`args` added to its command line); its port."""
    binary = require_command(
        "redis-server", "`apt-get install redis-server` (scripts/install-test-deps)"
    )
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", *args],
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
        yield port
    finally:
        process.terminate()
        process.wait(10)


def _checked(url: str) -> None:
    async def check() -> None:
        client = connect(url)
        try:
            await check_server(client)
        finally:
            await client.aclose()

    asyncio.run(check())


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


@pytest.mark.parametrize("command", [("worker",), ("start",)])
def test_an_old_redis_stops_the_start(
    tmp_path: Path, postgres_url: str, old_redis_url: str, command: tuple[str, ...]
) -> None:
    line = one_line(
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
    line = one_line(
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
    _checked(redis_url)


@pytest.mark.parametrize(
    ("version", "refused"),
    [(b"6", True), (b"6.10", True), (b"7", False), (b"7.2.4", False), (b"8.0.0-rc1", False)],
)
def test_versions_as_servers_report_them(version: bytes, refused: bool) -> None:
    # redis-py reads INFO values that look like numbers as numbers: "7" comes as 7
    with _fake_redis(version) as url:
        if refused:
            with pytest.raises(ValueError, match=r"expected Redis 7\.0 or newer"):
                _checked(url)
        else:
            _checked(url)


def test_a_redis_that_refuses_info_is_taken_as_it_is(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with _own_redis(tmp_path, "--rename-command", "INFO", '""') as port:
        _checked(f"redis://127.0.0.1:{port}/0")
    assert "its version is not checked" in caplog.text


@pytest.mark.parametrize(("policy", "warned"), [("allkeys-lru", True), ("noeviction", False)])
def test_a_redis_that_may_evict_keys_is_warned_of(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, policy: str, warned: bool
) -> None:
    """Evicted, a queued job or a run's stream would vanish with no error anywhere: the
    operator is told at the start, as BullMQ tells its own."""
    with _own_redis(tmp_path, "--maxmemory", "100mb", "--maxmemory-policy", policy) as port:
        _checked(f"redis://127.0.0.1:{port}/0")
    assert ("maxmemory-policy allkeys-lru" in caplog.text) is warned, caplog.text


def test_its_warning_is_a_line_of_the_worker_log_in_its_format(
    tmp_path: Path, postgres_url: str
) -> None:
    with _own_redis(tmp_path, "--rename-command", "INFO", '""') as port:
        worker = start_worker(
            tmp_path / "home",
            postgres_url,
            TAILWINDS_MODE="queue",
            TAILWINDS_REDIS_URL=f"redis://127.0.0.1:{port}/0",
            TAILWINDS_LOG_FORMAT="json",
        )
        worker.stop()
    lines = worker.log().splitlines()
    assert any("its version is not checked" in line for line in lines), lines
    for line in lines:
        assert isinstance(json.loads(line), dict), line


def test_a_unix_socket_redis_carries_a_queued_prediction(
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,
    mock_llm: MockOpenAI,
) -> None:
    path = tmp_path / "redis.sock"
    with _own_redis(tmp_path, "--unixsocket", str(path)):
        cluster = start_cluster(
            tmp_path_factory, postgres_url, queue_env(f"unix://{path}"), apis=1, workers=1
        )
        try:
            api = cluster.apis[0]
            chatflow_id = api.model_chatflow(mock_llm.base_url)
            frames = parse_numbered(stream(api, chatflow_id, 'tokens:["over ", "a socket"]'))
            assert numbered_tokens(frames) == "over a socket"
        finally:
            cluster.stop()
