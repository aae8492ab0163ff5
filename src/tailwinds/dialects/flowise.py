"""Flowise's dialect: the one event model written as Flowise's server writes it, for the
clients built for Flowise (the `flowise-embed` chat widget, the `flowise-sdk` npm package,
the `flowise` PyPI package).

Each event is one frame `message:\\ndata: {"event": <name>, "data": <payload>}\\n\\n`, the
event's name inside the JSON (the `message:` line is no SSE field: clients dispatch on
the JSON). Source: Flowise's `packages/server/src/utils/SSEStreamer.ts`, and how the
clients read it: FlowiseChatEmbed's `src/components/Bot.tsx` (`onmessage`), flowise-sdk's
`dist/flowise-sdk.js`, the PyPI `flowise` package's `client.py`. docs/PROTOCOL.md, "The
Flowise dialect", has the table.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from tailwinds.dialects import transcode
from tailwinds.engine.events import (
    EndEvent,
    ErrorEvent,
    Event,
    MetadataEvent,
    SourceDocumentsEvent,
    StartEvent,
    ThinkingEvent,
    TokenEvent,
    UsedToolsEvent,
    decode_event,
)
from tailwinds.sse import SSEDecoder

DONE = "[DONE]"

_HEAD = b'message:\ndata: {"event":"'
_TOKEN_HEAD = _HEAD + b'token","data":'

# The PyPI client strips every "data:" it finds in a line (`line.replace('data:', '')`), so
# the JSON must never hold that byte sequence. Outside strings it cannot occur (a key is
# followed by a quote before its colon); inside a string the colon is written as its JSON
# escape, which every JSON parser reads back as ":".
_DATA_COLON = b"data:"
_ESCAPED = b"data\\u003a"


def frame(name: str, data: Any, **extra: Any) -> bytes:
    """One frame of this dialect: `{"event": name, "data": data, **extra}`."""
    body = orjson.dumps({"event": name, "data": data, **extra})
    return b"message:\ndata: " + body.replace(_DATA_COLON, _ESCAPED) + b"\n\n"


class FlowiseEncoder:
    """One stream in Flowise's dialect (see `tailwinds.dialects.Encoder`).

    `start` opens the stream before anything else (the widget drops tokens until a
    `start` has opened its bubble), with `chatId` and `chatMessageId` beside its `data`;
    `token` is a bare string; `sourceDocuments`, `usedTools` arrays; the run's usage
    becomes `usageMetadata` (LangChain's `input_tokens`, `output_tokens`, `total_tokens`),
    then `metadata` `{chatId, chatMessageId, question, sessionId}`; an error is a plain
    string, an aborted run ends with `abort` `"[DONE]"`; every stream ends with `end`
    `"[DONE]"`. Reasoning (`thinking` events) streams as Flowise's own `thinking` frames,
    closed by one with `data: ""` and its `duration` in seconds. Any other event type is
    dropped."""

    __slots__ = ("started", "thinking_since")

    def __init__(self) -> None:
        self.started = False
        self.thinking_since: float | None = None

    def encode(self, event: Event) -> bytes:
        kind = type(event)
        if kind is TokenEvent:
            text = event.text  # type: ignore[union-attr]
            head = self._open() if not self.started or self.thinking_since is not None else b""
            return head + _TOKEN_HEAD + orjson.dumps(text).replace(_DATA_COLON, _ESCAPED) + b"}\n\n"
        if kind is StartEvent:
            if self.started:
                return b""
            self.started = True
            # beside Flowise's fields, the ids a client needs to resume or abort early
            return frame(
                "start",
                "",
                chatId=event.chat_id,  # type: ignore[union-attr]
                chatMessageId=event.message_id,  # type: ignore[union-attr]
            )
        if kind is ThinkingEvent:
            text = event.text  # type: ignore[union-attr]
            head = b"" if self.started else self._open()
            if self.thinking_since is None:
                self.thinking_since = time.monotonic()
            return head + frame("thinking", text) if text else head
        body = self._open() if not self.started or self.thinking_since is not None else b""
        if kind is SourceDocumentsEvent:
            return body + frame("sourceDocuments", event.documents)  # type: ignore[union-attr]
        if kind is UsedToolsEvent:
            return body + frame("usedTools", event.tools)  # type: ignore[union-attr]
        if kind is MetadataEvent:
            return body + _metadata(event.data)  # type: ignore[union-attr]
        if kind is ErrorEvent:
            if event.code == "aborted":  # type: ignore[union-attr]
                return body + frame("abort", DONE)
            return body + frame("error", event.message)  # type: ignore[union-attr]
        if kind is EndEvent:
            return body + frame("end", DONE)
        return body  # an event this dialect has no place for

    def close(self) -> bytes:
        return b""

    def _open(self) -> bytes:
        """`start` if not sent yet, and the end of any reasoning in progress."""
        out = b""
        if not self.started:
            self.started = True
            out = frame("start", "")
        if self.thinking_since is not None:
            duration = round(time.monotonic() - self.thinking_since)
            self.thinking_since = None
            out += frame("thinking", "", duration=duration)
        return out


def _metadata(data: dict[str, Any]) -> bytes:
    usage = data.get("usage") or {}
    out = b""
    if any(value is not None for value in usage.values()):
        out = frame(
            "usageMetadata",
            {
                "input_tokens": usage.get("promptTokens"),
                "output_tokens": usage.get("completionTokens"),
                "total_tokens": usage.get("totalTokens"),
            },
        )
    meta = {
        "chatId": data.get("chatId"),
        "chatMessageId": data.get("messageId"),
        "question": data.get("question"),
        "sessionId": data.get("sessionId"),
    }
    if data.get("followUpPrompts"):
        meta["followUpPrompts"] = data["followUpPrompts"]
    return out + frame("metadata", meta)


def flowise_answer(answer: dict[str, Any]) -> dict[str, Any]:
    """A non-streaming answer as Flowise's clients read it: ours, plus `chatMessageId`."""
    if "messageId" in answer:
        answer["chatMessageId"] = answer["messageId"]
    return answer


async def flowise_stream(
    stream: AsyncIterator[Event] | AsyncIterator[bytes],
) -> AsyncIterator[bytes]:
    """The stream in Flowise's dialect. Events from the runner go through `transcode`;
    frames of our own dialect (a resumable, relayed or resumed stream) are decoded back
    with their `id:` lines kept, so that `Last-Event-ID` resumes either dialect alike.
    Closing this generator closes `stream`, which stops the run it drives."""
    try:
        first: Any = await anext(stream, None)
        if first is None:
            return
        if type(first) is not bytes:
            async for chunk in transcode(_chain(first, stream), FlowiseEncoder()):  # type: ignore[arg-type]
                yield chunk
            return
        encoder = FlowiseEncoder()
        decoder = SSEDecoder()
        item: Any = first
        while item is not None:
            out = b""
            for message in decoder.feed(item):
                body = encoder.encode(decode_event(message.event, message.data))
                if body and message.id:
                    body = b"id: " + message.id.encode() + b"\n" + body
                out += body
            if out:
                yield out
            item = await anext(stream, None)
    finally:
        await stream.aclose()  # type: ignore[union-attr]


async def _chain(first: Event, rest: AsyncIterator[Event]) -> AsyncIterator[Event]:
    yield first
    async for event in rest:
        yield event
