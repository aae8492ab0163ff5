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


class AnswerParts:
    """A run's events gathered, one at a time, into the non-streaming answer's fields."""

    __slots__ = ("answer", "parts", "thinking")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.thinking: list[str] = []
        self.answer: dict[str, Any] = {}

    def add(self, event: Event) -> None:
        """Take one event in; an `error` event is raised as its `TailwindsError`."""
        if type(event) is TokenEvent:
            self.parts.append(event.text)
        elif type(event) is ThinkingEvent:
            self.thinking.append(event.text)
        elif type(event) is MetadataEvent:
            self.answer.update(event.data)
        elif type(event) is SourceDocumentsEvent:
            self.answer.setdefault("sourceDocuments", []).extend(event.documents)
        elif type(event) is UsedToolsEvent:
            self.answer.setdefault("usedTools", []).extend(event.tools)
        elif type(event) is ErrorEvent:
            raise error_from_code(event.code, event.message)

    def result(self) -> dict[str, Any]:
        answer = self.answer
        if self.thinking:
            answer["thinking"] = "".join(self.thinking)
        return {"text": "".join(self.parts), **answer}


async def collect_answer(events: AsyncIterator[Event]) -> dict[str, Any]:
    """The non-streaming answer: a run's events, gathered into one JSON object. The
    model's reasoning, when it sent any (and the chatflow keeps it), is its `thinking`
    field, apart from `text`."""
    parts = AnswerParts()
    async for event in events:
        parts.add(event)
    return parts.result()
