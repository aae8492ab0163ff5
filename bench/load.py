"""N concurrent streaming clients, against the Prediction API or straight at the mock.

Reports completed and failed streams, time to first token, the delay added to each token
(receive time minus the mock's emit time, both `time.monotonic_ns()` on this machine),
tokens per second, the target process's CPU per delivered token (from /proc, children
included) and its memory per open stream, and the load generator's own CPU, to show it
was not the bottleneck.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp

# the token's text in each dialect: ours, OpenAI's, AG-UI's and the AI SDK's
TOKEN_RE = re.compile(rb'"(?:token|content|delta)":"(\d+) "')
# a stream's end, and its failure, in each dialect
END_MARKS = (b"event: end", b"[DONE]", b'"RUN_FINISHED"')
ERROR_MARKS = (b"event: error", b'data: {"error"', b'"RUN_ERROR"', b'{"type":"error"')


def cpu_seconds(pid: int) -> float:
    """CPU time of the process, all its threads, those that ended too, and of its child
    processes (/proc/<pid>/stat's utime and stime, in clock ticks). Summing the threads'
    own nanosecond counters was finer but wrong: a thread that ended during a run (a
    database connection's, say) took all its time out of the sum."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = [int(child) for child in f.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    return own + sum(cpu_seconds(child) for child in children)


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def ordered(values: list[int]) -> bool:
    return all(a < b for a, b in itertools.pairwise(values))


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


@dataclass
class StreamResult:
    ok: bool
    tokens: int = 0
    ttft_ms: float | None = None
    delays_ms: list[float] = field(default_factory=list)
    error: str | None = None


@dataclass
class Report:
    target: str
    streams: int
    tokens_per_stream: int
    rounds: int
    interval_ms: int
    completed: int
    failed: int
    tokens: int
    ttft_p50_ms: float
    ttft_p99_ms: float
    delay_p50_ms: float
    delay_p99_ms: float
    delay_max_ms: float
    tokens_per_s: float
    cpu_us_per_token: float
    rss_kb_per_stream: float
    load_cpu_us_per_token: float
    wall_s: float
    errors: list[str] = field(default_factory=list)
    # the target's CPU per prediction asked (all rounds), for the fixed-cost rows
    cpu_ms_per_prediction: float = float("nan")
    # Redis' own CPU per delivered token (queue mode), beside the target's
    redis_cpu_us_per_token: float = float("nan")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def one_stream(
    session: aiohttp.ClientSession,
    url: str,
    body: dict[str, Any] | Callable[[], dict[str, Any]],
    opened: asyncio.Event,
    open_count: list[int],
    n: int,
    expected: int = 0,
) -> StreamResult:
    """One stream; it fails unless it ends, with `expected` tokens (0: any count) in the
    order the mock wrote them."""
    result = StreamResult(ok=False)
    started = time.monotonic_ns()
    try:
        async with session.post(url, json=body() if callable(body) else body) as resp:
            if resp.status != 200:
                result.error = f"HTTP {resp.status}"
                return result
            open_count[0] += 1
            if open_count[0] == n:
                opened.set()
            buffer = b""
            ended = False
            emitted_at: list[int] = []  # the mock's emit times: increasing, token by token
            async for chunk in resp.content.iter_any():
                now = time.monotonic_ns()
                buffer += chunk
                frames, _, buffer = buffer.rpartition(b"\n\n")
                for emitted in TOKEN_RE.findall(frames):
                    emitted_at.append(int(emitted))
                    if result.ttft_ms is None:
                        result.ttft_ms = (now - started) / 1e6
                    result.delays_ms.append((now - int(emitted)) / 1e6)
                    result.tokens += 1
                if any(mark in frames for mark in END_MARKS):
                    ended = True
                for mark in ERROR_MARKS:
                    if mark in frames:
                        result.error = frames[frames.index(mark) :][:200].decode(errors="replace")
            if result.error is None and not ordered(emitted_at):
                result.error = "tokens out of order"
            if result.error is None and expected and result.tokens != expected:
                result.error = f"{result.tokens} tokens of {expected}"
            result.ok = ended and result.error is None
            if not ended and result.error is None:
                result.error = "stream ended without its end"
    except (TimeoutError, aiohttp.ClientError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    return result


async def run_load(
    *,
    target: str,
    url: str,
    body: dict[str, Any] | Callable[[], dict[str, Any]],
    streams: int,
    tokens_per_stream: int,
    interval_ms: int,
    pid: int | list[int],
    rounds: int = 1,
    timeout_s: float = 300,
    chat_ids: bool = False,
    redis_pid: int | None = None,
) -> Report:
    """`rounds` runs of `streams` concurrent streams, one round after the other, reported
    together (more samples for small concurrencies); `body` may be a function, called for
    each stream's own body (a chat id of its own). CPU and memory are those of `pid`, or
    the sum over several (an API node and a worker). `chat_ids`: each stream asks in a
    chat of its own (`chatId`), so the server reads its history and stores its turn.
    `redis_pid`: Redis' CPU is measured too (queue mode), not counted in the target's."""
    pids = pid if isinstance(pid, list) else [pid]

    def cpu_of_all() -> float:
        return sum(cpu_seconds(p) for p in pids)

    def rss_of_all() -> int:
        return sum(rss_bytes(p) for p in pids)

    # idle connections dropped before the server drops them (uvicorn: 5 s; aiohttp keeps
    # them 15 s): a request sent on one as the server closed it failed with "Server
    # disconnected" (31 of 2,000 streams once, at 1,000 paced when first tokens took 6 s)
    connector = aiohttp.TCPConnector(limit=0, force_close=False, keepalive_timeout=4)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        opened = asyncio.Event()
        open_count = [0]
        rss_before = rss_of_all()
        cpu_before = cpu_of_all()
        redis_before = cpu_seconds(redis_pid) if redis_pid else 0.0
        load_before = time.process_time()
        wall_before = time.monotonic()
        peak_rss = rss_before
        results: list[StreamResult] = []
        for _ in range(rounds):
            tasks = [
                asyncio.create_task(
                    one_stream(
                        session,
                        url,
                        {**body, "chatId": uuid.uuid4().hex} if chat_ids else body,
                        opened,
                        open_count,
                        streams,
                        tokens_per_stream,
                    )
                )
                for _ in range(streams)
            ]
            while not all(t.done() for t in tasks):
                await asyncio.sleep(0.05)
                peak_rss = max(peak_rss, rss_of_all())
            results.extend(t.result() for t in tasks)
        wall = time.monotonic() - wall_before
        cpu = cpu_of_all() - cpu_before
        redis_cpu = cpu_seconds(redis_pid) - redis_before if redis_pid else float("nan")
        load_cpu = time.process_time() - load_before
    tokens = sum(r.tokens for r in results)
    delays = [d for r in results for d in r.delays_ms]
    ttfts = [r.ttft_ms for r in results if r.ttft_ms is not None]
    errors = sorted({r.error for r in results if r.error})[:5]
    return Report(
        target=target,
        streams=streams,
        tokens_per_stream=tokens_per_stream,
        interval_ms=interval_ms,
        rounds=rounds,
        completed=sum(r.ok for r in results),
        failed=sum(not r.ok for r in results),
        tokens=tokens,
        ttft_p50_ms=percentile(ttfts, 50),
        ttft_p99_ms=percentile(ttfts, 99),
        delay_p50_ms=percentile(delays, 50),
        delay_p99_ms=percentile(delays, 99),
        delay_max_ms=max(delays) if delays else float("nan"),
        tokens_per_s=tokens / wall if wall else 0.0,
        cpu_us_per_token=cpu / tokens * 1e6 if tokens else float("nan"),
        rss_kb_per_stream=max(0, peak_rss - rss_before) / 1024 / streams,
        load_cpu_us_per_token=load_cpu / tokens * 1e6 if tokens else float("nan"),
        wall_s=wall,
        errors=errors,
        cpu_ms_per_prediction=cpu / (streams * rounds) * 1e3,
        redis_cpu_us_per_token=redis_cpu / tokens * 1e6 if tokens else float("nan"),
    )
