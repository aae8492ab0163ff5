"""The benchmark's report: a line per row as it runs, and bench/RESULTS.md (and .json)."""

from __future__ import annotations

import json
import math
import os
import platform
import time
from pathlib import Path

from bench.load import Report


def fixed_line(report: Report, chat_ids: bool) -> str:
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
        f"{rows[0][0].streams} concurrent unpaced streams, six rounds after a warm-up; CPU of "
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


def row_line(server: Report, floor: Report) -> str:
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
        "redis",
        "hiredis",
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
