"""A tool call is a prediction: the Prediction API's admission, limits, run and storage,
with the answer as the tool result and each token as an MCP progress notification.

Results follow the MCP spec's `CallToolResult`
(https://modelcontextprotocol.io/specification/2025-11-25/server/tools#tool-result): the
answer as text content, the sources and ids as `structuredContent`, and a failure as a
result with `isError` whose `structuredContent.error` carries the Prediction API's code.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any

import orjson
from mcp import types

from tailwinds.engine.events import (
    ErrorEvent,
    Event,
    MetadataEvent,
    SourceDocumentsEvent,
    TokenEvent,
    decode_event,
)
from tailwinds.errors import InvalidRequest, TailwindsError, error_from_code
from tailwinds.runs.service import PredictionService
from tailwinds.server.mcp.catalog import ChatflowTool
from tailwinds.sse import SSEDecoder

# (tokens so far, the token) -> sends `notifications/progress`; a no-op when the client
# gave no progress token
Progress = Callable[[float, str], Awaitable[None]]

ARGUMENTS = frozenset({"question", "chatId", "vars"})
SOURCE_EXCERPT_CHARS = 300  # of each source, in the text the model reads


def prediction_body(arguments: dict[str, Any]) -> bytes:
    """The Prediction API body for a call's arguments: always streamed, never resumable
    (an MCP client resumes through its own transport, not our stream ids).

    Raises `InvalidRequest` naming the argument that is wrong."""
    for name in arguments:
        if name not in ARGUMENTS:
            raise InvalidRequest(
                f"unknown argument (expected: {', '.join(sorted(ARGUMENTS))})",
                field=f"arguments.{name}",
            )
    body: dict[str, Any] = {
        "question": arguments.get("question"),
        "streaming": True,
        "resumeGraceSeconds": 0,
    }
    if "chatId" in arguments:
        body["chatId"] = arguments["chatId"]
    if "vars" in arguments:
        body["overrideConfig"] = {"vars": arguments["vars"]}
    return orjson.dumps(body)


async def call_chatflow(
    predictions: PredictionService,
    tool: ChatflowTool,
    arguments: dict[str, Any],
    authorization: str | None,
    progress: Progress,
) -> types.CallToolResult:
    """Run the chatflow of `tool` once. A cancelled call (the task is cancelled) aborts
    the run, as a client leaving an SSE stream does."""
    try:
        body = prediction_body(arguments)
        admission = await predictions.admit(tool.chatflow_id, body, authorization)
        stream = await predictions.stream(admission)
        if predictions.relays_frames:  # numbered frames relayed from a worker
            events: AsyncIterator[Event] = _decoded(stream)  # type: ignore[arg-type]
        else:
            events = stream  # type: ignore[assignment]
        return await _collect(events, progress)
    except TailwindsError as exc:
        return error_result(exc)


async def _collect(events: AsyncIterator[Event], progress: Progress) -> types.CallToolResult:
    parts: list[str] = []
    sources: list[dict[str, Any]] = []
    metadata: dict[str, Any] = {}
    failed: ErrorEvent | None = None
    # read to `end`, even after `error`: a relay left early would count as a client gone
    async with aclosing(events):  # type: ignore[type-var]
        async for event in events:
            if type(event) is TokenEvent:
                parts.append(event.text)
                await progress(len(parts), event.text)
            elif type(event) is SourceDocumentsEvent:
                sources.extend(event.documents)
            elif type(event) is MetadataEvent:
                metadata.update(event.data)
            elif type(event) is ErrorEvent:
                failed = event
    if failed is not None:
        return error_result(error_from_code(failed.code, failed.message))
    return answer_result("".join(parts), sources, metadata)


async def _decoded(frames: AsyncIterator[bytes]) -> AsyncIterator[Event]:
    decoder = SSEDecoder()
    async with aclosing(frames):  # type: ignore[type-var]
        async for chunk in frames:
            for message in decoder.feed(chunk):
                yield decode_event(message.event, message.data)


def answer_result(
    text: str, sources: list[dict[str, Any]], metadata: dict[str, Any]
) -> types.CallToolResult:
    """The answer as text; the chat id (to continue) and sources in a second text block
    for models that read only text, and as structured content for programs."""
    chat_id = metadata.get("chatId")
    lines = [f"chatId: {chat_id}"]
    for number, source in enumerate(sources, 1):
        origin = (source.get("metadata") or {}).get("source", "")
        excerpt = str(source.get("pageContent", ""))[:SOURCE_EXCERPT_CHARS]
        lines.append(f"[{number}] {origin}: {excerpt}")
    structured = {
        "text": text,
        "chatId": chat_id,
        "messageId": metadata.get("messageId"),
        "sourceDocuments": sources,
        "usage": metadata.get("usage"),
    }
    return types.CallToolResult(
        content=[types.TextContent(text=text), types.TextContent(text="\n".join(lines))],
        structured_content=structured,
    )


def error_result(error: TailwindsError) -> types.CallToolResult:
    """A tool error with the Prediction API's `code` and HTTP status."""
    return types.CallToolResult(
        content=[types.TextContent(text=f"{error.code}: {error.message}")],
        structured_content={
            "error": {"code": error.code, "message": error.message, "status": error.status}
        },
        is_error=True,
    )
