"""OpenTelemetry traces of predictions, named and attributed as the GenAI semantic
conventions say (v1.41.0, `docs/gen-ai/` of open-telemetry/semantic-conventions: the last
release before they moved to their own repository).

Off by default. When off, nothing here imports OpenTelemetry (the optional extra
`tailwinds[tracing]`), the HTTP middleware is not installed, and every hook below costs one
attribute check per run, model call, tool call or retrieval; none runs per token.

The spans of one prediction:

    {method} {route}                      SERVER   (tracing/http.py; a client's traceparent)
    └─ invoke_workflow {chatflow_id}      INTERNAL (the run: status, ttft, tokens streamed)
       ├─ retrieval {store_id}            CLIENT
       ├─ chat {model}                    CLIENT   (each model call: usage, finish reasons)
       └─ execute_tool {name}             INTERNAL (a chatflowTool's run nests under it)

In queue mode the job carries the API node's context (`carrier`), and the worker's run
joins that trace (`join`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from tailwinds.config import Settings
    from tailwinds.engine.context import RunContext, Turn

T = TypeVar("T")

# tailwinds.tracing.spans once tracing is configured, else None: the one check of every hook
_spans: Any = None
_provider: Any = None

# the wire dialect a prediction request asked for, set by its route (`DIALECT.set("openai")`)
# when it is not our own: `tailwinds.dialect` on the request's span, and on the run's span
# where the run is in the same process (a worker always encodes our own: "tailwinds")
DIALECT: ContextVar[str | None] = ContextVar("dialect", default=None)


def configure(settings: Settings) -> None:
    """Start exporting spans when `settings.tracing` is "on" (Settings.from_env turns
    "auto" into "on" when an OTLP endpoint is set in the OTEL_* environment)."""
    global _spans, _provider
    if settings.tracing != "on" or _spans is not None:
        return
    from tailwinds.tracing import setup, spans

    _provider = setup.tracer_provider()
    spans.TRACER = _provider.get_tracer("tailwinds")
    spans.CONTENT = settings.trace_content
    _spans = spans


async def shutdown() -> None:
    """Export what is buffered and stop (off the event loop: an unreachable collector
    takes up to its export timeout)."""
    global _spans, _provider
    provider, _spans, _provider = _provider, None, None
    if provider is not None:
        import asyncio

        await asyncio.to_thread(provider.shutdown)


def enabled() -> bool:
    return _spans is not None


def start_prediction(chatflow_id: str, turn: Turn) -> Any:
    """The run's span (child of the current context: the HTTP request's, the API node's in
    a worker, a tool's for a chatflowTool), or None when tracing is off."""
    if _spans is None:
        return None
    return _spans.start_prediction(chatflow_id, turn)


def end_prediction(span: Any, result: Any) -> None:
    """End the run's span with the `RunResult`'s status, error, tokens and ttft."""
    _spans.end_prediction(span, result)


def traced_chat(ctx: RunContext, node: Any, request: Any, provider: Any) -> AsyncIterator[Any]:
    """`provider.stream_chat(request)`, inside a `chat {model}` span when the run is
    traced; the provider's own iterator, untouched, otherwise."""
    stream = provider.stream_chat(request)
    if getattr(ctx, "span", None) is None:  # (a stand-in context in a test may have none)
        return stream
    return _spans.traced_chat(ctx, node, request, provider, stream)


async def traced_tool(ctx: RunContext, call: Any, tool: Any, result: Awaitable[T]) -> T:
    """Await a tool call's `ToolResult` inside an `execute_tool {name}` span."""
    if getattr(ctx, "span", None) is None:
        return await result
    return await _spans.traced_tool(ctx, call, tool, result)


async def traced_retrieval(
    ctx: RunContext, store_id: str, mode: str, top_k: int, query: str, found: Awaitable[T]
) -> T:
    """Await a document store search inside a `retrieval {store_id}` span."""
    if getattr(ctx, "span", None) is None:
        return await found
    return await _spans.traced_retrieval(ctx, store_id, mode, top_k, query, found)


async def traced_ingest(
    store_id: str, job_id: str, work: Awaitable[dict[str, Any]]
) -> dict[str, Any]:
    """Await an ingestion job (an upsert run off the request) inside an `ingest {store_id}`
    span, child of the request that started it."""
    if _spans is None:
        return await work
    return await _spans.traced_ingest(store_id, job_id, work)


def carrier() -> str | None:
    """The current context as a W3C `traceparent` value, for a job to carry; None when
    tracing is off."""
    if _spans is None:
        return None
    return _spans.carrier()


def join(traceparent: str | None) -> None:
    """Make a job's carried context the current one, in the calling task's own context
    (a worker's task per job): its run's spans join the API node's trace."""
    if _spans is not None and traceparent:
        _spans.join(traceparent)


def log_ids() -> tuple[str, str] | None:
    """The current trace and span ids (hex), for log lines; None when off or outside a
    span."""
    if _spans is None:
        return None
    return _spans.log_ids()
