"""The dialect rows of the benchmark: the paced load of the native stream's row, through
the OpenAI-compatible, AG-UI and AI SDK routes (docs/PROTOCOL.md, "Other dialects"), in
the same run, so that each row's CPU per token beside the native one is its encoder's
cost. Each stream is a chat of its own (AG-UI's `threadId` is its chat id)."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from typing import Any

from bench.load import Report, run_load

_numbers = itertools.count()

Route = tuple[Callable[[str, str], str], Callable[[str], dict[str, Any]]]

DIALECTS: dict[str, Route] = {
    "openai": (
        lambda server, _: f"{server}/v1/chat/completions",
        lambda chatflow_id: {
            "model": chatflow_id,
            "messages": [{"role": "user", "content": "go"}],
            "stream": True,
        },
    ),
    "agui": (
        lambda server, chatflow_id: f"{server}/api/v1/agui/{chatflow_id}",
        lambda _: {
            "threadId": f"bench-{next(_numbers)}",
            "runId": "run",
            "messages": [{"id": "1", "role": "user", "content": "go"}],
        },
    ),
    "ai-sdk": (
        lambda server, chatflow_id: f"{server}/api/v1/ai-sdk/{chatflow_id}",
        lambda _: {
            "messages": [{"id": "1", "role": "user", "parts": [{"type": "text", "text": "go"}]}]
        },
    ),
}


async def dialect_rows(
    procs: Any, chatflow_id: str, native: list[tuple[Report, Report]]
) -> list[tuple[Report, Report]]:
    """One report per dialect (target `tailwinds-<mode> <dialect>`) at the largest paced
    concurrency of `native` up to 200 streams, each after a warm-up round at it, with that
    row's floor; memory per stream is not measured again (NaN). `procs`: bench.processes'
    `Processes`."""
    beside, floor = max((r for r in native if r[0].streams <= 200), key=lambda r: r[0].streams)
    rows = []
    for name, (url_of, body_of) in DIALECTS.items():

        def body(body_of: Callable[[str], dict[str, Any]] = body_of) -> dict[str, Any]:
            return body_of(chatflow_id)

        common: dict[str, Any] = {
            "target": f"tailwinds-{procs.mode} {name}",
            "url": url_of(procs.server_url, chatflow_id),
            "body": body,
            "streams": beside.streams,
            "tokens_per_stream": beside.tokens_per_stream,
            "interval_ms": beside.interval_ms,
            "pid": procs.pids,
            "redis_pid": procs.redis_pid,
        }
        await run_load(**common)  # warm-up
        report = await run_load(**common, rounds=beside.rounds)
        rows.append((dataclasses.replace(report, rss_kb_per_stream=float("nan")), floor))
    return rows
