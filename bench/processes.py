"""The benchmark's processes: the mock model, Tailwinds (one process in local mode; an API
node and a worker in queue mode), and what queue mode and traces need beside them (a
PostgreSQL database of the run's own, an OTLP receiver)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout_s: float = 30) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def wait_worker(worker: subprocess.Popen[bytes], queue_env: dict[str, str]) -> None:
    """Until the worker has made its consumer group (it does after its migrations)."""
    import redis

    client = redis.Redis.from_url(queue_env["TAILWINDS_REDIS_URL"])
    jobs = f"{queue_env['TAILWINDS_REDIS_PREFIX']}:jobs"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError("the worker exited; see its log")
        try:
            if client.xinfo_groups(jobs):
                return
        except redis.ResponseError:
            pass  # no stream yet
        time.sleep(0.1)
    raise RuntimeError("the worker did not start")


def redis_pid(queue_env: dict[str, str]) -> int | None:
    """The process of the Redis server that queue mode uses, whose CPU queue-mode rows
    report beside Tailwinds': asked of the server itself (other redis-servers may run on
    the machine, the tests' own); None when it is on another machine."""
    import redis

    client = redis.Redis.from_url(queue_env["TAILWINDS_REDIS_URL"])
    pid = int(client.info("server")["process_id"])
    return pid if Path(f"/proc/{pid}").exists() else None


def forget_keys(queue_env: dict[str, str]) -> None:
    """Leave Redis as it was: the run's keys all start with its own prefix."""
    import redis

    client = redis.Redis.from_url(queue_env["TAILWINDS_REDIS_URL"])
    for key in client.scan_iter(f"{queue_env['TAILWINDS_REDIS_PREFIX']}:*", count=1000):
        client.delete(key)


def wait_port(port: int, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


class Processes:
    """The mock and Tailwinds: one process in local mode; in queue mode an API node and a
    worker, on PostgreSQL and Redis (`queue_env`)."""

    def __init__(
        self,
        home: Path,
        queue_env: dict[str, str] | None = None,
        traced_env: dict[str, str] | None = None,
        model_client: str = "wire",
    ) -> None:
        self.home = home
        self.mode = "queue" if queue_env else "traced" if traced_env else "local"
        self.mock_port = free_port()
        self.server_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAILWINDS_")}
        self.mock = subprocess.Popen(
            [sys.executable, str(ROOT / "mock_llm.py"), "--port", str(self.mock_port)], env=env
        )
        wait_port(self.mock_port)
        server_env = {
            **env,
            "TAILWINDS_HOME": str(home),
            "TAILWINDS_LOG_LEVEL": "WARNING",
            "TAILWINDS_PROVIDER_RETRIES": "0",
            "TAILWINDS_MODEL_CLIENT": model_client,
            "TAILWINDS_OUTBOUND_PROXY": "off",
            **(queue_env or {}),
            **(traced_env or {}),
        }
        self.server_log = (home / f"server-{self.mode}.log").open("wb")
        self.server = subprocess.Popen(
            [sys.executable, "-m", "tailwinds", "start", "--port", str(self.server_port)],
            env=server_env,
            stdout=self.server_log,
            stderr=subprocess.STDOUT,
        )
        wait_http(f"{self.server_url}/api/v1/ping")
        self.worker: subprocess.Popen[bytes] | None = None
        if queue_env:
            self.worker = subprocess.Popen(
                [sys.executable, "-m", "tailwinds", "worker", "--concurrency", "1200"],
                env=server_env,
                stdout=self.server_log,
                stderr=subprocess.STDOUT,
            )
            wait_worker(self.worker, queue_env)
        self.redis_pid = redis_pid(queue_env) if queue_env else None

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in (self.server, self.worker) if p is not None]

    @property
    def server_url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    @property
    def mock_url(self) -> str:
        return f"http://127.0.0.1:{self.mock_port}/v1"

    def stop(self) -> None:
        for process in (self.server, self.worker, self.mock):
            if process is None:
                continue
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        self.server_log.close()


@contextlib.contextmanager
def otlp_sink() -> Iterator[str]:
    """An OTLP/HTTP receiver that takes every export and keeps nothing (a collector's
    cost is not Tailwinds'): its endpoint URL."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    class Sink(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def queue_database() -> Iterator[str]:
    """A PostgreSQL database of its own for the queue-mode run, dropped afterwards."""
    import asyncpg

    admin = os.environ.get(
        "TAILWINDS_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    name = f"tailwinds_bench_{os.getpid()}"

    async def execute(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def queue_mode() -> Iterator[dict[str, str]]:
    """The environment of an API node and a worker in queue mode: a database of their own
    (`queue_database`), the machine's Redis (or `TAILWINDS_BENCH_REDIS_URL`) under a key
    prefix of their own, its keys forgotten afterwards."""
    with queue_database() as database_url:
        queue_env = {
            "TAILWINDS_MODE": "queue",
            "TAILWINDS_DATABASE_URL": database_url,
            "TAILWINDS_REDIS_URL": os.environ.get(
                "TAILWINDS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"
            ),
            "TAILWINDS_REDIS_PREFIX": f"twbench-{os.getpid()}",
        }
        try:
            yield queue_env
        finally:
            forget_keys(queue_env)
