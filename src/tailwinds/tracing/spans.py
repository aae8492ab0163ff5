"""The spans themselves (imported only once tracing is on): names and attributes as the
GenAI semantic conventions v1.41.0 give them (docs/gen-ai/gen-ai-spans.md,
gen-ai-agent-spans.md); ours, where they have none, under `tailwinds.*`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from contextvars import ContextVar
from typing import Any, TypeVar
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, StatusCode

from tailwinds.engine.context import RunContext, Turn
from tailwinds.messages import ToolCall, Usage
from tailwinds.providers.base import ResponseInfo, response_info
from tailwinds.redaction import redact
from tailwinds.tracing.content import MAX_TEXT, input_content, to_json, tool_call_part

T = TypeVar("T")

TRACER: trace.Tracer = trace.NoOpTracer()
# prompts, completions, tool arguments and results, retrieval queries (TAILWINDS_TRACE_CONTENT):
# they may hold personal data, so they are opt-in, as the conventions say
CONTENT = False

# gen_ai.provider.name by node type (the conventions' well-known values); another node's
# is its type without "chat", lower-cased
PROVIDERS = {
    "chatOpenAI": "openai",
    "chatAnthropic": "anthropic",
    "chatOllama": "ollama",
    "chatLocal": "llama_cpp",
    "chatAzureOpenAI": "azure.ai.openai",
    "chatGoogleGemini": "gcp.gemini",
    "chatGemini": "gcp.gemini",
}

# the innermost `execute_tool` span of a run, in that tool call's own task: what the run's
# retrievals (a retrieverTool's) nest under
_ACTIVE: ContextVar[tuple[RunContext, Span] | None] = ContextVar("tool_span", default=None)


def _parent(ctx: RunContext) -> otel_context.Context:
    active = _ACTIVE.get()
    span = active[1] if active is not None and active[0] is ctx else ctx.span
    return trace.set_span_in_context(span)


def _fail(span: Span, error_type: str, message: str) -> None:
    span.set_attribute("error.type", error_type)
    # as a log line would say it: keys and bearer tokens replaced
    span.set_status(StatusCode.ERROR, redact(message[:500]))


def _record_exception(span: Span, exc: BaseException) -> None:
    if isinstance(exc, GeneratorExit | asyncio.CancelledError):
        # the consumer stopped reading, the run was aborted: not the operation's failure
        span.set_attribute("tailwinds.cancelled", True)
        return
    code = getattr(exc, "code", None)
    _fail(span, code if isinstance(code, str) else type(exc).__qualname__, str(exc))


# -- the prediction -------------------------------------------------------------------


def start_prediction(chatflow_id: str, turn: Turn) -> Span:
    from tailwinds.tracing import DIALECT

    return TRACER.start_span(
        f"invoke_workflow {chatflow_id}",
        kind=SpanKind.INTERNAL,
        attributes={
            "gen_ai.operation.name": "invoke_workflow",
            "gen_ai.conversation.id": turn.session_id,
            "tailwinds.chatflow.id": chatflow_id,
            "tailwinds.chat.id": turn.chat_id,
            "tailwinds.message.id": turn.message_id,
            "tailwinds.dialect": DIALECT.get() or "tailwinds",
        },
    )


def end_prediction(span: Span, result: Any) -> None:
    span.set_attribute("tailwinds.prediction.status", result.status)
    span.set_attribute("tailwinds.prediction.tokens_streamed", result.tokens)
    if result.first_token_s is not None:
        span.set_attribute(
            "tailwinds.prediction.time_to_first_token", result.first_token_s - result.started_s
        )
    _set_usage(span, result.usage)
    if result.error is not None:
        _fail(span, result.error.code, result.error.message)
    span.end()


def _set_usage(span: Span, usage: Usage | None) -> None:
    if usage is None:
        return
    if usage.prompt_tokens is not None:
        span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
    if usage.completion_tokens is not None:
        span.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)
    reasoning = getattr(usage, "reasoning_tokens", None)  # where a provider reports them
    if reasoning is not None:
        span.set_attribute("gen_ai.usage.reasoning.output_tokens", reasoning)


# -- model calls ----------------------------------------------------------------------


async def traced_chat(
    ctx: RunContext, node: Any, request: Any, provider: Any, stream: AsyncIterator[T]
) -> AsyncIterator[T]:
    type_name = getattr(node, "type_name", "chat")
    provider_name = PROVIDERS.get(type_name) or type_name.removeprefix("chat").lower()
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider_name or type_name,
        "gen_ai.request.model": request.model,
        "gen_ai.request.stream": True,
        "gen_ai.conversation.id": ctx.turn.session_id,
        "tailwinds.node.id": getattr(node, "node_id", ""),
    }
    if request.temperature is not None:
        attributes["gen_ai.request.temperature"] = float(request.temperature)
    if request.max_tokens is not None:
        attributes["gen_ai.request.max_tokens"] = request.max_tokens
    base_url = getattr(getattr(node, "inputs", None), "base_url", None)
    if base_url:
        url = urlsplit(base_url)
        if url.hostname:
            attributes["server.address"] = url.hostname
            attributes["server.port"] = url.port or (443 if url.scheme == "https" else 80)
    if CONTENT:
        attributes.update(input_content(request.messages))
    span = TRACER.start_span(
        f"chat {request.model}", context=_parent(ctx), kind=SpanKind.CLIENT, attributes=attributes
    )
    started = time.perf_counter()
    first = True
    texts: list[str] = []
    calls: list[ToolCall] = []
    try:
        async for item in stream:
            if first:
                first = False
                span.set_attribute(
                    "gen_ai.response.time_to_first_chunk", time.perf_counter() - started
                )
            kind = type(item)
            if kind is str:
                if CONTENT:
                    texts.append(item)  # type: ignore[arg-type]
            elif kind is Usage:
                _set_usage(span, item)  # type: ignore[arg-type]
            elif kind is ToolCall:
                calls.append(item)  # type: ignore[arg-type]
            yield item
    except BaseException as exc:
        _record_exception(span, exc)
        raise
    finally:
        try:
            _set_response(span, response_info(provider), calls, texts)
        finally:
            span.end()
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()


def _set_response(
    span: Span, reported: ResponseInfo | None, calls: list[ToolCall], texts: list[str]
) -> None:
    # what the provider's parser saw (providers.base.ResponseInfo), where it records it
    reasons = None
    if reported is not None:
        if reported.model:
            span.set_attribute("gen_ai.response.model", reported.model)
        if reported.id:
            span.set_attribute("gen_ai.response.id", reported.id)
        reasons = reported.finish_reasons
    if reasons:
        span.set_attribute("gen_ai.response.finish_reasons", list(reasons))
    if calls:
        span.set_attribute("tailwinds.response.tool_calls", len(calls))
    if CONTENT:
        parts: list[dict[str, Any]] = []
        if texts:
            parts.append({"type": "text", "content": "".join(texts)[:MAX_TEXT]})
        parts.extend(tool_call_part(call) for call in calls)
        message: dict[str, Any] = {"role": "assistant", "parts": parts}
        message["finish_reason"] = (reasons or ["tool_call" if calls else "stop"])[-1]
        span.set_attribute("gen_ai.output.messages", to_json([message]))


# -- tools and retrieval --------------------------------------------------------------


async def traced_tool(ctx: RunContext, call: ToolCall, tool: Any, result: Awaitable[Any]) -> Any:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": call.name,
        "gen_ai.tool.call.id": call.id,
        "gen_ai.tool.type": "function",
    }
    if tool is not None:
        attributes["tailwinds.node.id"] = getattr(tool, "node_id", "")
        attributes["tailwinds.node.type"] = getattr(tool, "type_name", "")
    if CONTENT:
        attributes["gen_ai.tool.call.arguments"] = to_json(call.arguments)
    span = TRACER.start_span(
        f"execute_tool {call.name}",
        context=_parent(ctx),
        kind=SpanKind.INTERNAL,
        attributes=attributes,
    )
    # current in this call's own task (no yield in between): a chatflowTool's run and a
    # retrieverTool's search nest under it
    active = _ACTIVE.set((ctx, span))
    attached = otel_context.attach(trace.set_span_in_context(span))
    try:
        output = await result
    except BaseException as exc:
        _record_exception(span, exc)
        span.end()
        raise
    finally:
        otel_context.detach(attached)
        _ACTIVE.reset(active)
    text = getattr(output, "output", "")
    # the agent turns a tool's failure into an output for the model: "error: …"
    if isinstance(text, str) and text.startswith("error: "):
        # the tool's own words may quote its arguments: content, opt-in
        _fail(span, "tool_error", text[len("error: ") :] if CONTENT else "the tool failed")
    elif CONTENT:
        span.set_attribute("gen_ai.tool.call.result", str(text)[:MAX_TEXT])
    span.end()
    return output


async def traced_retrieval(
    ctx: RunContext, store_id: str, mode: str, top_k: int, query: str, found: Awaitable[Any]
) -> Any:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "retrieval",
        "gen_ai.data_source.id": store_id,
        "gen_ai.request.top_k": float(top_k),
        "tailwinds.retrieval.mode": mode,
    }
    if CONTENT:
        attributes["gen_ai.retrieval.query.text"] = query[:MAX_TEXT]
    with TRACER.start_as_current_span(
        f"retrieval {store_id}",
        context=_parent(ctx),
        kind=SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            documents = await found
        except BaseException as exc:
            _record_exception(span, exc)
            raise
        span.set_attribute("tailwinds.retrieval.hits", len(documents))
        return documents


async def traced_ingest(store_id: str, job_id: str, work: Awaitable[dict[str, Any]]) -> Any:
    with TRACER.start_as_current_span(
        f"ingest {store_id}",
        kind=SpanKind.INTERNAL,
        attributes={"tailwinds.document_store.id": store_id, "tailwinds.ingest.job.id": job_id},
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            result = await work
        except BaseException as exc:
            _record_exception(span, exc)
            raise
        for key in ("chunks", "embedded", "replaced"):
            if type(result.get(key)) is int:
                span.set_attribute(f"tailwinds.ingest.{key}", result[key])
        return result


# -- context across processes, and logs -----------------------------------------------


def carrier() -> str | None:
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers.get("traceparent")


def join(traceparent: str) -> None:
    otel_context.attach(propagate.extract({"traceparent": traceparent}))


def log_ids() -> tuple[str, str] | None:
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
