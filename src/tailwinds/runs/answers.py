"""The non-streaming answer: the run's events collected into one JSON object."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from tailwinds.engine.events import (
    ErrorEvent,
    Event,
    MetadataEvent,
    SourceDocumentsEvent,
    ThinkingEvent,
    TokenEvent,
    UsedToolsEvent,
    decode_event,
)
from tailwinds.errors import error_from_code
from tailwinds.sse import SSEDecoder


async def decode_frames(frames: AsyncIterator[bytes]) -> AsyncIterator[Event]:
    """Events back from relayed frames (for a non-streaming answer in queue mode)."""
    decoder = SSEDecoder()
    async for chunk in frames:
        for message in decoder.feed(chunk):
            yield decode_event(message.event, message.data)


async def collect_answer(events: AsyncIterator[Event]) -> dict[str, Any]:
    """The non-streaming answer: a run's events, gathered into one JSON object. The
    model's reasoning, when it sent any (and the chatflow keeps it), is its `thinking`
    field, apart from `text`."""
    parts: list[str] = []
    thinking: list[str] = []
    answer: dict[str, Any] = {}
    async for event in events:
        if type(event) is TokenEvent:
            parts.append(event.text)
        elif type(event) is ThinkingEvent:
            thinking.append(event.text)
        elif type(event) is MetadataEvent:
            answer.update(event.data)
        elif type(event) is SourceDocumentsEvent:
            answer.setdefault("sourceDocuments", []).extend(event.documents)
        elif type(event) is UsedToolsEvent:
            answer.setdefault("usedTools", []).extend(event.tools)
        elif type(event) is ErrorEvent:
            raise error_from_code(event.code, event.message)
    if thinking:
        answer["thinking"] = "".join(thinking)
    return {"text": "".join(parts), **answer}
