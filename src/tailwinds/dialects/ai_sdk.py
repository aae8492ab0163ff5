"""The Vercel AI SDK's UI message stream (https://ai-sdk.dev/docs/ai-sdk-ui/stream-protocol,
the `ai` package 5 and later: `uiMessageChunkSchema`): a `useChat` request read as a
prediction, and the run's events written as UI message chunks, one `data: <json>` frame
each, ended by `data: [DONE]`, under the header `x-vercel-ai-ui-message-stream: v1`.

    start             start {messageId}
    first token       text-start {id}
    token             text-delta {id, delta}
    thinking          reasoning-start {id} (first of a span), reasoning-delta {id, delta};
                      reasoning-end before the next text, tool step or finish
    usedTools         tool-input-available + tool-output-available {toolCallId, toolName,
                      dynamic: true} per step (the client does not know the flow's tools)
    sourceDocuments   source-document {sourceId, mediaType, title, filename?} per document,
                      then data-sourceDocuments {data: [documents]} with their text
    action            data-action {data: {actionId, tool, toolInput, expiresAt}}
    end               text-end (if one started), finish {finishReason: "stop",
                      messageMetadata: {chatId, messageId, sessionId, chatflowId, usage}}
    error             error {errorText}, then finish {finishReason: "error"}

`useChat` posts `{id, messages: [{id, role, parts}], trigger, messageId}` and every message
of the chat: they are the history (the chat's stored memory is not read as well), `id` is
the chat id. A chunk that fails the package's schema makes the client drop the stream, so
every field the schema requires is always there.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from tailwinds.dialects import action_data, reasoning_text
from tailwinds.dialects.conversation import data_frame, parse_body, prediction, text_of
from tailwinds.engine.events import (
    EndEvent,
    ErrorEvent,
    Event,
    MetadataEvent,
    SourceDocumentsEvent,
    StartEvent,
    TokenEvent,
    UsedToolsEvent,
)
from tailwinds.runs.prediction_request import PredictionRequest
from tailwinds.runs.request_caps import MAX_HISTORY

HEADERS = {"x-vercel-ai-ui-message-stream": "v1"}
MAX_TITLE = 200


class UIMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | None = Field(None, max_length=255)
    role: str = Field(max_length=32)
    parts: list[Any] | None = Field(None, max_length=1000)
    content: Any = None  # the AI SDK 4 spelling


class ChatRequest(BaseModel):
    """The body `useChat`'s `DefaultChatTransport` posts (fields it adds of its own, and
    a caller's `body` extras, are ignored)."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = Field(None, min_length=1, max_length=255)
    messages: list[UIMessage] = Field(min_length=1, max_length=MAX_HISTORY + 1)


def parse_chat_request(body: bytes) -> ChatRequest:
    return parse_body(body, ChatRequest)


def to_prediction(
    chat: ChatRequest, allowed_overrides: list[str], resume_grace_s: float = 0
) -> PredictionRequest:
    """The prediction `chat` asks for; `resume_grace_s`: how long the run goes on for a
    client that left (a reload, a lost network), which may reconnect (`GET
    …/{chatId}/stream`, `useChat({resume: true})`) and read the whole answer."""
    messages = [
        (
            m.role,
            text_of(
                m.parts if m.parts is not None else m.content,
                f"messages[{n}].parts",
                other_parts=True,  # files, tool, source and step parts: only text is read
            ),
        )
        for n, m in enumerate(chat.messages)
    ]
    return prediction(
        messages,
        chat_id=chat.id,
        chat_id_field="id",
        allowed_overrides=allowed_overrides,
        streaming=True,
        resume_grace_s=resume_grace_s,
    )


class ChunkEncoder:
    """One answer's UI message chunks (see the module's docstring)."""

    def __init__(self) -> None:
        self.text_id = ""
        self.text_open = False
        self.reasoning_id = ""  # the open reasoning part's, if one is open
        self.reasonings = 0
        self.failed = False
        self.metadata: dict[str, Any] = {}
        self._delta_head = b""
        self._delta_tail = b"}\n\n"

    def encode(self, event: Event) -> bytes:
        if type(event) is TokenEvent:
            body = self._delta_head + orjson.dumps(event.text) + self._delta_tail
            if self.text_open and not self.reasoning_id:
                return body
            head = self._end_reasoning()
            if not self.text_open:
                self.text_open = True  # a delta before its text-start throws in the client
                head += data_frame({"type": "text-start", "id": self.text_id})
            return head + body
        if type(event) is StartEvent:
            self.text_id = f"text-{event.message_id}"
            self._delta_head = (
                b'data: {"type":"text-delta","id":' + orjson.dumps(self.text_id) + b',"delta":'
            )
            return data_frame({"type": "start", "messageId": event.message_id})
        if type(event) is UsedToolsEvent:
            return self._end_reasoning() + b"".join(self._tool_step(s) for s in event.tools)
        if type(event) is SourceDocumentsEvent:
            return b"".join(_source(doc) for doc in event.documents) + data_frame(
                {"type": "data-sourceDocuments", "data": event.documents}
            )
        if type(event) is MetadataEvent:
            self.metadata = event.data
            return b""
        if type(event) is ErrorEvent:
            self.failed = True
            return data_frame({"type": "error", "errorText": event.message})
        if type(event) is EndEvent:
            body = self._end_reasoning() + self._end_text()
            if self.failed:
                return body + data_frame({"type": "finish", "finishReason": "error"})
            metadata = {k: v for k, v in self.metadata.items() if k != "question"}
            return body + data_frame(
                {"type": "finish", "finishReason": "stop", "messageMetadata": metadata}
            )
        reasoning = reasoning_text(event)
        if reasoning is not None:
            body = b""
            if not self.reasoning_id:
                self.reasonings += 1
                self.reasoning_id = f"reasoning-{self.reasonings}"
                body = data_frame({"type": "reasoning-start", "id": self.reasoning_id})
            delta = {"type": "reasoning-delta", "id": self.reasoning_id, "delta": reasoning}
            return body + data_frame(delta)
        action = action_data(event)
        if action is not None:  # a tool call waits for a person's decision
            return self._end_reasoning() + data_frame({"type": "data-action", "data": action})
        return b""  # an event this dialect has no place for

    def close(self) -> bytes:
        return b"data: [DONE]\n\n"

    def _end_reasoning(self) -> bytes:
        if not self.reasoning_id:
            return b""
        body = data_frame({"type": "reasoning-end", "id": self.reasoning_id})
        self.reasoning_id = ""
        return body

    def _end_text(self) -> bytes:
        if not self.text_open:
            return b""
        self.text_open = False
        return data_frame({"type": "text-end", "id": self.text_id})

    def _tool_step(self, step: dict[str, Any]) -> bytes:
        call_id = f"call-{uuid.uuid4()}"
        name = str(step.get("tool", ""))
        return data_frame(
            {
                "type": "tool-input-available",
                "toolCallId": call_id,
                "toolName": name,
                "input": step.get("toolInput"),
                "dynamic": True,
            }
        ) + data_frame(
            {
                "type": "tool-output-available",
                "toolCallId": call_id,
                "output": step.get("toolOutput"),
                "dynamic": True,
            }
        )


def _source(document: dict[str, Any]) -> bytes:
    metadata = document.get("metadata") or {}
    source = metadata.get("source") if isinstance(metadata, dict) else None
    text = str(document.get("pageContent") or "")
    chunk: dict[str, Any] = {
        "type": "source-document",
        "sourceId": str(document.get("id") or uuid.uuid4()),
        "mediaType": "text/plain",
        # required by the schema: the document's source, else its first words
        "title": str(source or text[:MAX_TITLE] or "document"),
    }
    if source:
        chunk["filename"] = str(source)
    return data_frame(chunk)
