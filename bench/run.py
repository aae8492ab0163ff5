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
import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

from bench.dialects import dialect_rows
from bench.load import Report, run_load
from bench.processes import ROOT, Processes, otlp_sink, queue_mode
from bench.report import fixed_line, row_line, write_results

FULL = {"streams": [1, 50, 200, 1000], "tokens": 64}
QUICK = {"streams": [1, 50], "tokens": 32}
PACED_MS = 20  # 50 tokens a second


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
            print(row_line(server, floor), flush=True)
            rows.append((server, floor))
        if interval_ms:  # each dialect beside the native row, in the same run
            for row in await dialect_rows(procs, chatflow_id, rows[-len(streams_list) :]):
                print(row_line(*row), flush=True)
                dialects.append(row)
    return rows + dialects


async def prediction_load(
    procs: Processes, streams: int, tokens: int, interval_ms: int, chat_ids: bool = False
) -> dict[str, Any]:
    """`run_load`'s arguments for predictions of a chatflow made for them on `procs`
    (answers of `tokens` tokens, one every `interval_ms` ms, 0: unpaced)."""
    model = f"bench:{tokens}:{interval_ms}"
    chatflow_id = await create_chatflow(procs.server_url, procs.mock_url, model)
    return {
        "target": f"tailwinds-{procs.mode}",
        "url": f"{procs.server_url}/api/v1/predictions/{chatflow_id}",
        "body": {"question": "go", "streaming": True},
        "streams": streams,
        "tokens_per_stream": tokens,
        "interval_ms": interval_ms,
        "pid": procs.pids,
        "chat_ids": chat_ids,
        "redis_pid": procs.redis_pid,
    }


# the fixed cost of a prediction (issue 25): short answers, where it is most of the cost,
# and 64-token ones, each asked in a chat of its own (history read, turn stored) or in none
FIXED_COST_STREAMS = 50
# (tokens, a chatId per stream)
FIXED_COST_ROWS = [(4, False), (4, True), (64, False), (64, True)]


async def run_fixed_cost(procs: Processes) -> list[tuple[Report, bool]]:
    rows = []
    for tokens, chat_ids in FIXED_COST_ROWS:
        load = await prediction_load(procs, FIXED_COST_STREAMS, tokens, 0, chat_ids)
        await run_load(**load)  # warm-up
        report = await run_load(**load, rounds=6)
        print(fixed_line(report, chat_ids), flush=True)
        rows.append((report, chat_ids))
    return rows


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
            with queue_mode() as queue_env:
                procs = Processes(Path(home), queue_env, model_client=args.model_client)
                try:
                    run_all(procs)
                finally:
                    procs.stop()
    write_results(rows, args.out, args.quick, fixed)
    print(f"wrote {args.out}")
    return rows


if __name__ == "__main__":
    main()
