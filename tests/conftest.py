"""Fixtures: a mock model server, real databases, and Tailwinds serving real HTTP, in a
thread of the test process (`tests/thread_server.py`) or as its own process."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tailwinds.config import Settings
from tests.mock_openai import MockOpenAI
from tests.requirements import missing
from tests.thread_server import ServerThread

POSTGRES_ADMIN_URL = os.environ.get(
    "TAILWINDS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def pytest_configure(config: pytest.Config) -> None:
    """The coverage floor ([tool.coverage.report] fail_under) is a floor for the whole
    suite: a run of a part of it (a path, -k, -m, --lf, --deselect, --ignore) still reports
    its coverage but cannot fail on it. With TAILWINDS_TEST_COVERAGE_SERVERS=1 the Python
    processes the tests start (servers, workers) are measured too, through coverage's
    start-up hook (its .pth file reads COVERAGE_PROCESS_START); off by default, as it
    makes the suite about 1.5 to 1.8 times slower and the servers too slow for the tests
    that time them."""
    plugin = config.pluginmanager.get_plugin("_cov")
    if plugin is None or getattr(plugin, "_disabled", False):
        return
    if os.environ.get("TAILWINDS_TEST_COVERAGE_SERVERS") == "1":
        os.environ["COVERAGE_PROCESS_START"] = str(config.rootpath / "pyproject.toml")
    if not _whole_suite(config):
        plugin.options.cov_fail_under = None


def _whole_suite(config: pytest.Config) -> bool:
    option = config.option
    narrowed = (
        option.keyword,
        option.markexpr,
        getattr(option, "lf", False),
        getattr(option, "deselect", None),
        getattr(option, "ignore", None),
        getattr(option, "ignore_glob", None),
    )
    return config.args_source is pytest.Config.ArgsSource.TESTPATHS and not any(narrowed)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def service_missing(what: str, error: BaseException) -> None:
    """Skip on a laptop without the service; on CI a missing service is a failure."""
    missing(what, f"not reachable ({type(error).__name__}: {error})")


@pytest.fixture(scope="session")
def mock_llm() -> Iterator[MockOpenAI]:
    mock = MockOpenAI().start()
    yield mock
    mock.stop()


async def _create_database(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url, timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards."""
    name = f"tailwinds_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_create_database(POSTGRES_ADMIN_URL, name))
    except (TimeoutError, OSError, Exception) as exc:
        service_missing(f"PostgreSQL at {POSTGRES_ADMIN_URL}", exc)
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1)
    asyncio.run(_drop_database(POSTGRES_ADMIN_URL, name))


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'tailwinds.db'}"
    return request.getfixturevalue("postgres_url")


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen[bytes] | ServerThread
    log_path: Path
    home: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def create_chatflow(self, flow_data: dict[str, Any], **fields: Any) -> dict[str, Any]:
        response = requests.post(
            f"{self.url}/api/v1/chatflows",
            json={"name": fields.pop("name", "test"), "flowData": flow_data, **fields},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        return response.json()

    def create_document_store(
        self, embeddings_url: str, name: str = "test", model: str = "bow", **fields: Any
    ) -> str:
        """A store embedding with the mock's OpenAI-style `model`; its id."""
        response = requests.post(
            f"{self.url}/api/v1/document-stores",
            json={
                "name": name,
                "embedding": {
                    "type": "openAIEmbeddings",
                    "model": model,
                    "baseUrl": embeddings_url,
                },
                **fields,
            },
            timeout=10,
        )
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def retrieval_chatflow(self, base_url: str, store_id: str, **fields: Any) -> str:
        """A chatflow answering from `store_id` with the mock's echo model; its id."""
        flow = {
            "nodes": [
                {"id": "m", "type": "chatOpenAI", "inputs": {"model": "echo", "baseUrl": base_url}},
                {"id": "r", "type": "retriever", "inputs": {"documentStoreId": store_id}},
                {"id": "qa", "type": "conversationalRetrievalQAChain", "inputs": {}},
            ],
            "edges": [
                {"source": "m", "target": "qa", "targetInput": "model"},
                {"source": "r", "target": "qa", "targetInput": "retriever"},
            ],
        }
        return self.create_chatflow(flow, **fields)["id"]

    def model_chatflow(self, base_url: str, model: str = "echo", **inputs: Any) -> str:
        node = {
            "id": "chat_0",
            "type": "chatOpenAI",
            "inputs": {"model": model, "baseUrl": base_url, **inputs},
        }
        return self.create_chatflow({"nodes": [node], "edges": []})["id"]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except (subprocess.TimeoutExpired, TimeoutError):
            self.process.kill()
            self.process.wait(10)


TEST_SERVER_ENV = {
    "TAILWINDS_PROVIDER_RETRIES": "0",
    "TAILWINDS_PROVIDER_IDLE_TIMEOUT_S": "1",
    "TAILWINDS_PROVIDER_FIRST_TOKEN_TIMEOUT_S": "3",
    "TAILWINDS_PROVIDER_CONNECT_TIMEOUT_S": "2",
    "TAILWINDS_KEEPALIVE_S": "0.3",
    # not four keep-alive periods (1.2 s): a test client on a busy machine may pause longer
    "TAILWINDS_WRITE_TIMEOUT_S": "10",
    "TAILWINDS_LOG_LEVEL": "INFO",
    # the machine's HTTP(S)_PROXY would otherwise carry the mock model's requests
    "TAILWINDS_OUTBOUND_PROXY": "off",
}


def start_server(
    home: Path,
    database_url: str,
    log_name: str = "server.log",
    *,
    threaded: bool = False,
    **env: str,
) -> RunningServer:
    """Tailwinds on a free port, answering `/api/v1/ping`: `tailwinds start` as a process
    of its own, or with `threaded` the same server in a thread of this process (for tests
    whose subject is not the process: see tests/thread_server.py)."""
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / log_name
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TAILWINDS_")},
        **TEST_SERVER_ENV,
        "TAILWINDS_HOME": str(home),
        "TAILWINDS_DATABASE_URL": database_url,
        **env,
    }
    process: subprocess.Popen[bytes] | ServerThread
    if threaded:
        process = ServerThread(Settings.from_env(full_env, port=port), log_path)
    else:
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "tailwinds", "start", "--port", str(port)],
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
    server = RunningServer(f"http://127.0.0.1:{port}", process, log_path, home)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited:\n{server.log()}")
        try:
            if requests.get(f"{server.url}/api/v1/ping", timeout=1).text == "pong":
                if threaded:
                    # the server froze the collector's heap once started (heap.settle):
                    # right for a server process, a leak for a test process
                    gc.unfreeze()
                return server
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"the server did not answer /api/v1/ping:\n{server.log()}")


REDIS_URL = os.environ.get("TAILWINDS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The machine's Redis; every test that uses it writes under a prefix of its own."""
    import redis

    try:
        with redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2) as client:
            client.ping()
    except redis.RedisError as exc:
        service_missing(f"Redis at {REDIS_URL}", exc)
    return REDIS_URL


@dataclass
class RunningWorker:
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_worker(home: Path, database_url: str, *args: str, **env: str) -> RunningWorker:
    """`tailwinds worker` as its own process, returned once it takes jobs."""
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / f"worker-{uuid.uuid4().hex[:6]}.log"
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TAILWINDS_")},
        **TEST_SERVER_ENV,
        "TAILWINDS_HOME": str(home),
        "TAILWINDS_DATABASE_URL": database_url,
        **env,
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tailwinds", "worker", *args],
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    worker = RunningWorker(process, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited:\n{worker.log()}")
        if "taking jobs" in worker.log():
            return worker
        time.sleep(0.1)
    worker.stop()
    raise RuntimeError(f"the worker did not start:\n{worker.log()}")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """Tailwinds in a thread, once on SQLite and once on PostgreSQL."""
    home = tmp_path_factory.mktemp(f"home-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{home / 'tailwinds.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    running = start_server(home, url, threaded=True)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Tailwinds on SQLite alone, in a thread, for tests whose subject is not the database."""
    home = tmp_path_factory.mktemp("home")
    running = start_server(home, f"sqlite+aiosqlite:///{home / 'tailwinds.db'}", threaded=True)
    yield running
    running.stop()


def stream_then_leave(
    url: str, path: str, body: dict[str, Any], tokens: int, marker: bytes = b"event: token"
) -> bytes:
    """POST a streaming prediction over a plain socket, read until `tokens` token events
    (`marker`s: another dialect's spelling) have come, then close the connection the way a
    browser tab does. Returns what came."""
    import json as _json
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    payload = _json.dumps(body).encode()
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    try:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        received = b""
        while received.count(marker) < tokens:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received
    finally:
        sock.close()
