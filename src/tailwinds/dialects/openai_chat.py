"""The OpenAI-compatible Chat Completions dialect: a chat completion request read as a
prediction, and the run's events written as `chat.completion.chunk`s (or one
`chat.completion`), as https://platform.openai.com/docs/api-reference/chat defines them and
the `openai` SDKs read them.

- `model` names the chatflow (its id, or its name where that is unique: `chatflow_named` in
  `server/dialect_runs.py`);
- `messages`: the last one, a user message, is the question; the user and assistant
  messages before it the history; a system (or developer) message becomes the
  `systemMessage` override where the chatflow allows that, and is otherwise ignored;
- a chat id in the `X-Tailwinds-Chat-Id` header makes the server's own memory of that chat
  the history instead of the messages before the question. Not `user`: LibreChat, LiteLLM
  and others fill it with their end user's id for every conversation of that user, which
  would merge them all into one chat (and refuse a second one while the first answers).

The model's reasoning (the `thinking` event, where the build and the model have it) is
`delta.reasoning_content`, as DeepSeek and vLLM send it. What the format has no place for
(sources, tool steps, a tool call waiting for a person's decision, the chat and message
ids) travels in a `tailwinds` object on the chunk (or the completion), which plain clients
ignore.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from tailwinds.dialects import action_data, reasoning_text
from tailwinds.dialects.conversation import parse_body, prediction, text_of
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
from tailwinds.errors import TailwindsError
from tailwinds.runs.prediction_request import PredictionRequest
from tailwinds.runs.request_caps import MAX_HISTORY

# the header that names the chat whose stored memory answers
CHAT_ID_HEADER = "x-tailwinds-chat-id"
MAX_PARTS = 100


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    # a string, or parts of which the text ones are read (images and audio are refused)
    content: str | Annotated[list[dict[str, Any]], Field(max_length=MAX_PARTS)] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """The fields of https://platform.openai.com/docs/api-reference/chat/create that a
    chatflow takes; the sampling ones (temperature, max_tokens …) are the chatflow's own
    and are ignored, as are fields unknown here."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=255)
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=MAX_HISTORY + 1)
    stream: bool = False
    stream_options: StreamOptions | None = None


def parse_chat_request(body: bytes) -> ChatCompletionRequest:
    """The request, or a 400 naming the field."""
    return parse_body(body, ChatCompletionRequest)


def to_prediction(
    request: ChatCompletionRequest, chat_id: str | None, allowed_overrides: list[str]
) -> PredictionRequest:
    """The prediction the chat completion asks for (see the module's docstring)."""
    messages = [
        (m.role, text_of(m.content, f"messages[{n}].content"))
        for n, m in enumerate(request.messages)
    ]
    return prediction(
        messages,
        chat_id=chat_id,
        chat_id_field=CHAT_ID_HEADER,
        allowed_overrides=allowed_overrides,
        streaming=request.stream,
        use_memory=chat_id is not None,
    )


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def usage_of(metadata: dict[str, Any]) -> dict[str, int]:
    """OpenAI's usage object from ours (counts the provider did not report are 0)."""
    usage = metadata.get("usage") or {}
    return {
        "prompt_tokens": usage.get("promptTokens") or 0,
        "completion_tokens": usage.get("completionTokens") or 0,
        "total_tokens": usage.get("totalTokens") or 0,
    }


class ChunkEncoder:
    """One stream's `chat.completion.chunk`s, each a `data:` line (no `event:`), ended by
    `data: [DONE]`. A failure mid-stream is a chunk holding only `error` (what the SDKs
    raise as `APIError`), then `[DONE]`."""

    def __init__(self, model: str, include_usage: bool = False) -> None:
        self.id = completion_id()
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage
        self.usage: dict[str, int] | None = None
        self.metadata: dict[str, Any] = {}
        self.failed = False
        head = (
            b'data: {"id":"'
            + self.id.encode()
            + b'","object":"chat.completion.chunk","created":'
            + str(self.created).encode()
            + b',"model":'
            + orjson.dumps(model)
            + b',"system_fingerprint":null,"choices":[{"index":0,"delta":'
        )
        self._head = head
        self._token_head = head + b'{"content":'
        self._token_tail = b'},"logprobs":null,"finish_reason":null}]}\n\n'

    def _chunk(
        self, delta: dict[str, Any], finish: str | None = None, extra: dict[str, Any] | None = None
    ) -> bytes:
        tail = b',"logprobs":null,"finish_reason":' + orjson.dumps(finish) + b"}]"
        if extra:
            tail += b',"tailwinds":' + orjson.dumps(extra)
        return self._head + orjson.dumps(delta) + tail + b"}\n\n"

    def encode(self, event: Event) -> bytes:
        if type(event) is TokenEvent:
            return self._token_head + orjson.dumps(event.text) + self._token_tail
        if type(event) is StartEvent:
            ids = {"chatId": event.chat_id, "messageId": event.message_id}
            return self._chunk({"role": "assistant", "content": ""}, extra=ids)
        if type(event) is SourceDocumentsEvent:
            return self._chunk({}, extra={"sourceDocuments": event.documents})
        if type(event) is UsedToolsEvent:
            return self._chunk({}, extra={"usedTools": event.tools})
        if type(event) is MetadataEvent:
            self.metadata = event.data
            return b""
        if type(event) is ErrorEvent:
            self.failed = True
            error = {"message": event.message, "type": _type_of_code(event.code)}
            return b"data: " + orjson.dumps({"error": {**error, "code": event.code}}) + b"\n\n"
        if type(event) is EndEvent:
            if self.failed:
                return b""
            extra = {k: v for k, v in self.metadata.items() if k not in ("usage", "question")}
            body = self._chunk({}, "stop", extra or None)
            if self.include_usage:
                usage = {
                    "id": self.id,
                    "object": "chat.completion.chunk",
                    "created": self.created,
                    "model": self.model,
                    "system_fingerprint": None,
                    "choices": [],  # not null: the SDKs iterate it
                    "usage": usage_of(self.metadata),
                }
                body += b"data: " + orjson.dumps(usage) + b"\n\n"
            return body
        reasoning = reasoning_text(event)
        if reasoning is not None:
            return self._chunk({"reasoning_content": reasoning})
        action = action_data(event)
        if action is not None:  # a tool call waits for a person: `tailwinds.action`
            return self._chunk({}, extra={"action": action})
        return b""  # an event this dialect has no place for

    def close(self) -> bytes:
        return b"data: [DONE]\n\n"


def completion(model: str, answer: dict[str, Any]) -> dict[str, Any]:
    """One `chat.completion` from `collect_answer`'s answer."""
    extra = {k: v for k, v in answer.items() if k not in ("text", "usage", "question", "thinking")}
    message: dict[str, Any] = {"role": "assistant", "content": answer["text"], "refusal": None}
    if answer.get("thinking"):  # the reasoning, where the model gave it (issue 22)
        message["reasoning_content"] = answer["thinking"]
    return {
        "id": completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": usage_of(answer),
        "tailwinds": extra,
    }


_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def _type_of_code(code: str) -> str:
    return "rate_limit_error" if code.endswith("rate_limited") else "server_error"


def error_body(error: TailwindsError) -> dict[str, Any]:
    """`{"error": {"message", "type", "param", "code"}}`, OpenAI's error shape."""
    return {
        "error": {
            "message": error.message,
            "type": _TYPES.get(error.status, "server_error"),
            "param": getattr(error, "field", None),
            "code": error.code,
        }
    }
