"""The non-streaming answer: the run's events collected into one JSON object, unless the
client leaves first."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import Response
from starlette.types import Receive

from tailwinds.engine.events import (
    ErrorEvent,
    Event,
    MetadataEvent,
    SourceDocumentsEvent,
    TokenEvent,
    UsedToolsEvent,
    decode_event,
)
from tailwinds.errors import error_from_code
from tailwinds.server.disconnect import unless_disconnected
from tailwinds.server.errors import json_response
from tailwinds.sse import SSEDecoder

# nginx's "client closed request": what the request metrics count for a client that left
CLIENT_CLOSED_REQUEST = 499


async def answer_response(events: AsyncIterator[Event], receive: Receive) -> Response:
    """`200` with the answer; when the client disconnects first, the run is cancelled at
    once (the model's request closed, the turn stored `aborted`) and the response, which
    nobody reads, is an empty 499."""
    answered, answer = await unless_disconnected(receive, collect_answer(events))
    if not answered:
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    return json_response(answer)


async def decode_frames(frames: AsyncIterator[bytes]) -> AsyncIterator[Event]:
    """Events back from relayed frames (for a non-streaming answer in queue mode)."""
    decoder = SSEDecoder()
    async for chunk in frames:
        for message in decoder.feed(chunk):
            yield decode_event(message.event, message.data)


async def collect_answer(events: AsyncIterator[Event]) -> dict[str, Any]:
    """The non-streaming answer: a run's events, gathered into one JSON object."""
    parts: list[str] = []
    answer: dict[str, Any] = {}
    async for event in events:
        if type(event) is TokenEvent:
            parts.append(event.text)
        elif type(event) is MetadataEvent:
            answer.update(event.data)
        elif type(event) is SourceDocumentsEvent:
            answer.setdefault("sourceDocuments", []).extend(event.documents)
        elif type(event) is UsedToolsEvent:
            answer.setdefault("usedTools", []).extend(event.tools)
        elif type(event) is ErrorEvent:
            raise error_from_code(event.code, event.message)
    return {"text": "".join(parts), **answer}
