"""The benchmark: start the mock and Tailwinds as separate processes, run a matrix of
concurrent streams (paced at 50 tokens/s and unpaced), run the same load straight at the
mock as the floor, and write bench/RESULTS.md.

    .venv/bin/python -m bench.run            # the whole matrix, a few minutes on 2 cores
    .venv/bin/python -m bench.run --quick    # under a minute
    .venv/bin/python -m bench.run --tracing  # also local mode with OpenTelemetry traces on
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp

from bench.dialects import dialect_rows
from bench.load import Report, run_load

ROOT = Path(__file__).parent
FULL = {"streams": [1, 50, 200, 1000], "tokens": 64}
QUICK = {"streams": [1, 50], "tokens": 32}
PACED_MS = 20  # 50 tokens a second


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


def redis_pid() -> int | None:
    """The machine's Redis server, whose CPU queue-mode rows report beside Tailwinds'."""
    found = subprocess.run(["pgrep", "-x", "redis-server"], capture_output=True, text=True)
    pids = found.stdout.split()
    return int(pids[0]) if len(pids) == 1 else None


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
        self.redis_pid = redis_pid() if queue_env else None

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


async def create_chatflow(server_url: str, mock_url: str, model: str) -> str:
    node = {"id": "chat_0", "type": "chatOpenAI", "inputs": {"model": model, "baseUrl": mock_url}}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{server_url}/api/v1/chatflows",
            json={"name": model, "flowData": {"nodes": [node], "edges": []}},
        ) as resp,
    ):
        resp.raise_for_status()
        return (await resp.json())["id"]


async def run_matrix(
    procs: Processes, streams_list: list[int], tokens: int
) -> list[tuple[Report, Report]]:
    rows: list[tuple[Report, Report]] = []
    dialects: list[tuple[Report, Report]] = []  # reported after the native rows
    most_streams = 0  # the most streams this server has held open at once so far
    for interval_ms in (PACED_MS, 0):
        model = f"bench:{tokens}:{interval_ms}"
        chatflow_id = await create_chatflow(procs.server_url, procs.mock_url, model)
        for streams in streams_list:
            # enough samples where there are few streams, and two rounds at least: one round
            # of 200 paced streams is ~1.3 s, where a stray process on the machine shows
            rounds = max(2, 20 // streams)
            floor = await run_load(
                target="mock",
                url=f"{procs.mock_url}/chat/completions",
                body={
                    "model": model,
                    "messages": [{"role": "user", "content": "go"}],
                    "stream": True,
                },
                streams=streams,
                tokens_per_stream=tokens,
                interval_ms=interval_ms,
                pid=procs.mock.pid,
                rounds=rounds,
            )
            # warm up at the same concurrency: a server in its steady state, its pool of
            # upstream connections as large as the load needs
            warm_up = await run_load(
                target=f"tailwinds-{procs.mode}",
                url=f"{procs.server_url}/api/v1/predictions/{chatflow_id}",
                body={"question": "go", "streaming": True},
                streams=streams,
                tokens_per_stream=tokens,
                interval_ms=interval_ms,
                pid=procs.pids,
                redis_pid=procs.redis_pid,
            )
            server = await run_load(
                target=f"tailwinds-{procs.mode}",
                url=f"{procs.server_url}/api/v1/predictions/{chatflow_id}",
                body={"question": "go", "streaming": True},
                streams=streams,
                tokens_per_stream=tokens,
                interval_ms=interval_ms,
                pid=procs.pids,
                rounds=rounds,
                redis_pid=procs.redis_pid,
            )
            # memory per open stream: what the warm-up's peak grew over the server's before,
            # per stream it held beyond the most it had held; nothing new to say otherwise
            grown_kb = warm_up.rss_kb_per_stream * streams
            server = dataclasses.replace(
                server,
                rss_kb_per_stream=grown_kb / (streams - most_streams)
                if streams > most_streams
                else float("nan"),
            )
            most_streams = max(most_streams, streams)
            print(_line(server, floor), flush=True)
            rows.append((server, floor))
        if interval_ms:  # each dialect beside the native row, in the same run
            for row in await dialect_rows(procs, chatflow_id, rows[-len(streams_list) :]):
                print(_line(*row), flush=True)
                dialects.append(row)
    return rows + dialects


# the fixed cost of a prediction (issue 25): short answers, where it is most of the cost,
# and 64-token answers asked in a chat of their own (history read, turn stored) or in none
FIXED_COST_STREAMS = 50
FIXED_COST_ROWS = [(4, False), (64, False), (64, True)]  # (tokens, a chatId per stream)


async def run_fixed_cost(procs: Processes) -> list[tuple[Report, bool]]:
    rows = []
    for tokens, chat_ids in FIXED_COST_ROWS:
        model = f"bench:{tokens}:0"
        chatflow_id = await create_chatflow(procs.server_url, procs.mock_url, model)
        load = {
            "target": f"tailwinds-{procs.mode}",
            "url": f"{procs.server_url}/api/v1/predictions/{chatflow_id}",
            "body": {"question": "go", "streaming": True},
            "streams": FIXED_COST_STREAMS,
            "tokens_per_stream": tokens,
            "interval_ms": 0,
            "pid": procs.pids,
            "chat_ids": chat_ids,
            "redis_pid": procs.redis_pid,
        }
        await run_load(**load)  # warm-up
        report = await run_load(**load, rounds=6)
        print(_fixed_line(report, chat_ids), flush=True)
        rows.append((report, chat_ids))
    return rows


def _fixed_line(report: Report, chat_ids: bool) -> str:
    return (
        f"{report.target[10:]:<5} {report.streams:>4} x {report.tokens_per_stream:>2} tokens "
        f"redis {report.redis_cpu_us_per_token:5.1f} us/token "
        f"{'chatId' if chat_ids else 'no chat':<7} ok {report.completed}/"
        f"{report.streams * report.rounds} cpu {report.cpu_ms_per_prediction:6.2f} ms/prediction "
        f"{report.cpu_us_per_token:6.1f} us/token ttft p50 {report.ttft_p50_ms:6.2f} ms"
    )


def fixed_cost_table(rows: list[tuple[Report, bool]]) -> list[str]:
    lines = [
        "",
        "## The fixed cost of a prediction",
        "",
        f"{FIXED_COST_STREAMS} concurrent unpaced streams, six rounds after a warm-up; CPU of "
        "Tailwinds' processes (queue: API node + worker) per prediction asked and per token. "
        "*chatId*: each stream asks in a chat of its own (its history read, its turn stored, "
        "and in queue mode its chat's lease taken and freed).",
        "",
        "| mode | answer tokens | chatId | completed | CPU ms/prediction | CPU µs/token "
        "| TTFT p50 / p99 ms | tokens/s | Redis CPU µs/token |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for report, chat_ids in rows:
        lines.append(
            f"| {report.target[10:]} | {report.tokens_per_stream} | {'yes' if chat_ids else 'no'} "
            f"| {report.completed}/{report.streams * report.rounds} "
            f"| {report.cpu_ms_per_prediction:.2f} | {report.cpu_us_per_token:.1f} "
            f"| {report.ttft_p50_ms:.2f} / {report.ttft_p99_ms:.2f} | {report.tokens_per_s:.0f} "
            f"| {_kb(report.redis_cpu_us_per_token)} |"
        )
    return lines


def _kb(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if b and b == b and a == a else "-"


def _line(server: Report, floor: Report) -> str:
    pace = "paced" if server.interval_ms else "unpaced"
    return (
        f"{server.target[10:]:<5} {server.streams:>5} {pace:<8} "
        f"ok {server.completed}/{server.streams * server.rounds} "
        f"cpu {server.cpu_us_per_token:6.1f} us/token (mock {floor.cpu_us_per_token:5.1f}) "
        f"added p99 {server.delay_p99_ms - floor.delay_p99_ms:7.2f} ms "
        f"ttft p50 {server.ttft_p50_ms:6.2f} ms rss {_kb(server.rss_kb_per_stream):>6} KB/stream"
        f" redis {server.redis_cpu_us_per_token:5.1f} us/token"
    )


def write_results(
    rows: list[tuple[Report, Report]],
    path: Path,
    quick: bool,
    fixed: list[tuple[Report, bool]] | None = None,
) -> None:
    versions = {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}",
    }
    for package in (
        "tailwinds",
        "uvicorn",
        "starlette",
        "fastapi",
        "aiohttp",
        "orjson",
        "uvloop",
        "httptools",
    ):
        try:
            from importlib.metadata import version

            versions[package] = version(package)
        except Exception:
            versions[package] = "?"
    targets = [*rows, *(fixed or ())]
    lines = [
        "# Benchmark results",
        "",
        f"Run `python -m bench.run{' --quick' if quick else ''}"
        f"{' --tracing' if any(r.target.endswith('traced') for r, _ in targets) else ''}"
        f"{' --queue' if any(r.target.endswith('queue') for r, _ in targets) else ''}"
        f"{' --fixed-cost-only' if fixed and not rows else ''}` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
        + ".",
        "",
        "One Tailwinds process (uvicorn + uvloop + httptools, SQLite), the mock model "
        "(`bench/mock_llm.py`) and the load generator (`bench/load.py`) as three processes on "
        "this machine. Each row: a warm-up round at its concurrency, then at least two "
        "rounds measured. *Floor* is the same load straight at the mock. CPU is the target "
        "process's user+system time per delivered token; memory per stream is how much the "
        "server's peak RSS grew in the row's warm-up, per stream beyond the most it had held "
        "open before (so only where a row opens more streams than any before it); *added* "
        "delay is Tailwinds' p99 token delay minus the floor's p99 (receive time minus the "
        "mock's emit time). "
        "*queue* rows (`--queue`): an API node and a worker (`TAILWINDS_MODE=queue`, "
        "PostgreSQL, the machine's Redis), CPU summed over both; Redis' own CPU is not in it, "
        "it has a column of its own. "
        "*traced* rows (`--tracing`): local mode with OpenTelemetry traces on (every "
        "prediction's spans batched and exported over OTLP/HTTP to a local receiver that "
        "discards them).",
        "",
        "| mode | streams | pace | completed | CPU µs/token | floor (mock) µs/token | ratio "
        "| delay p50 / p99 / max ms | floor p99 ms | added p99 ms | TTFT p50 / p99 ms "
        "| floor TTFT p50 ms | tokens/s | RSS KB/stream | load gen µs/token "
        "| Redis CPU µs/token |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for server, floor in rows:
        pace = f"{1000 // server.interval_ms} tok/s" if server.interval_ms else "unpaced"
        lines.append(
            f"| {server.target[10:]} | {server.streams} | {pace} "
            f"| {server.completed}/{server.streams * server.rounds} "
            f"| {server.cpu_us_per_token:.1f} | {floor.cpu_us_per_token:.1f} "
            f"| {_ratio(server.cpu_us_per_token, floor.cpu_us_per_token)} "
            f"| {server.delay_p50_ms:.2f} / {server.delay_p99_ms:.2f} / {server.delay_max_ms:.1f} "
            f"| {floor.delay_p99_ms:.2f} | {server.delay_p99_ms - floor.delay_p99_ms:.2f} "
            f"| {server.ttft_p50_ms:.2f} / {server.ttft_p99_ms:.2f} | {floor.ttft_p50_ms:.2f} "
            f"| {server.tokens_per_s:.0f} | {_kb(server.rss_kb_per_stream)} "
            f"| {server.load_cpu_us_per_token:.1f} | {_kb(server.redis_cpu_us_per_token)} |"
        )
    if fixed:
        lines += fixed_cost_table(fixed)
    errors = sorted({e for server, _ in rows for e in server.errors})
    errors += sorted({e for report, _ in fixed or () for e in report.errors})
    if errors:
        lines += ["", "Errors seen:", *[f"- `{e}`" for e in errors]]
    path.write_text("\n".join(lines) + "\n")
    (path.with_suffix(".json")).write_text(
        json.dumps(
            [{"tailwinds": s.as_dict(), "floor": f.as_dict()} for s, f in rows]
            + [{"fixed_cost": r.as_dict(), "chat_ids": c} for r, c in fixed or ()],
            indent=1,
        )
    )


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


def main(argv: list[str] | None = None) -> list[tuple[Report, Report]]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1 and 50 streams, 32 tokens")
    parser.add_argument("--streams", type=int, nargs="*", help="override the concurrency list")
    parser.add_argument("--tokens", type=int, help="tokens per stream")
    parser.add_argument("--out", type=Path, default=ROOT / "RESULTS.md")
    parser.add_argument(
        "--tracing",
        action="store_true",
        help="also run local mode with traces on, exported to a local OTLP/HTTP receiver",
    )
    parser.add_argument(
        "--queue",
        action="store_true",
        help="also run queue mode (API node + worker on PostgreSQL and Redis)",
    )
    parser.add_argument(
        "--model-client",
        choices=("wire", "aiohttp"),
        default="wire",
        help="the models' HTTP client the server uses (TAILWINDS_MODEL_CLIENT)",
    )
    parser.add_argument(
        "--fixed-cost-only",
        action="store_true",
        help="only the fixed-cost rows (short answers; with and without a chatId)",
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    streams = args.streams or plan["streams"]
    tokens = args.tokens or plan["tokens"]
    rows: list[tuple[Report, Report]] = []
    fixed: list[tuple[Report, bool]] = []

    def run_all(procs: Processes) -> None:
        if not args.fixed_cost_only:
            rows.extend(asyncio.run(run_matrix(procs, streams, tokens)))
        fixed.extend(asyncio.run(run_fixed_cost(procs)))

    with tempfile.TemporaryDirectory() as home:
        procs = Processes(Path(home), model_client=args.model_client)
        try:
            run_all(procs)
        finally:
            procs.stop()
        if args.tracing:
            with otlp_sink() as endpoint:
                traced_env = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
                procs = Processes(Path(home), traced_env=traced_env)
                try:
                    rows += asyncio.run(run_matrix(procs, streams, tokens))
                finally:
                    procs.stop()
        if args.queue:
            with queue_database() as database_url:
                queue_env = {
                    "TAILWINDS_MODE": "queue",
                    "TAILWINDS_DATABASE_URL": database_url,
                    "TAILWINDS_REDIS_URL": os.environ.get(
                        "TAILWINDS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"
                    ),
                    "TAILWINDS_REDIS_PREFIX": f"twbench-{os.getpid()}",
                }
                procs = Processes(Path(home), queue_env, model_client=args.model_client)
                try:
                    run_all(procs)
                finally:
                    procs.stop()
                    forget_keys(queue_env)
    write_results(rows, args.out, args.quick, fixed)
    print(f"wrote {args.out}")
    return rows


if __name__ == "__main__":
    main()
