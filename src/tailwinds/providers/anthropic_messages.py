"""Anthropic's Messages API, streamed: `message_start` (input usage), `content_block_delta`
text deltas, `message_delta` (output usage, stop reason), `message_stop`, and `error`
events (overloaded, for one) that may come at any point of the stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from tailwinds.engine.messages import INVALID_ARGUMENTS, ChatMessage, ToolCall, Usage
from tailwinds.errors import ProviderBadResponse, ProviderError
from tailwinds.providers.base import ChatRequest, ProviderLimits
from tailwinds.providers.http import Endpoint
from tailwinds.sse import SSEDecoder
from tailwinds.wire import WireClient

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024
# Anthropic's error types, as the HTTP status they stand for (mid-stream errors have none)
_ERROR_STATUS = {
    "authentication_error": 401,
    "permission_error": 403,
    "rate_limit_error": 429,
    "overloaded_error": 529,
    "api_error": 500,
    "invalid_request_error": 400,
    "not_found_error": 404,
    "request_too_large": 413,
}


class AnthropicMessagesProvider:
    def __init__(
        self,
        wire: WireClient,
        base_url: str,
        api_key: str | None,
        limits: ProviderLimits,
    ) -> None:
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
            "anthropic-version": API_VERSION,
        }
        if api_key:
            headers["x-api-key"] = api_key
        self.endpoint = Endpoint(
            wire,
            base_url,
            "/v1/messages",
            headers,
            limits,
            api_key,
        )

    def stream_chat(self, request: ChatRequest) -> AsyncIterator[str | ToolCall | Usage]:
        return self.endpoint.stream(_body(request), _Parser(self.endpoint))


def _body(request: ChatRequest) -> bytes:
    system = "\n\n".join(m.content for m in request.messages if m.role == "system")
    body: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
        "messages": _alternating([m for m in request.messages if m.role != "system"]),
        "stream": True,
    }
    if system:
        body["system"] = system
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.tools:
        body["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters}
            for t in request.tools
        ]
    return orjson.dumps(body)


Content = str | list[dict[str, Any]]


def _turn(message: ChatMessage) -> tuple[str, Content]:
    """A message as the Messages API has it: tool results are user turns of
    `tool_result` blocks, tool calls `tool_use` blocks of the assistant's turn."""
    if message.role == "tool":
        block = {
            "type": "tool_result",
            "tool_use_id": message.tool_call_id,
            "content": message.content,
        }
        return "user", [block]
    if message.tool_calls:
        text = [{"type": "text", "text": message.content}] if message.content else []
        uses = [
            {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
            for c in message.tool_calls
        ]
        return "assistant", [*text, *uses]
    return message.role, message.content


def _as_blocks(content: Content) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _alternating(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    """The Messages API wants user and assistant turns to alternate, starting with the
    user: merge neighbours of the same role, drop a leading answer."""
    out: list[dict[str, Any]] = []
    for message in messages:
        role, content = _turn(message)
        if not out and role != "user":
            continue
        if out and out[-1]["role"] == role:
            previous = out[-1]["content"]
            if isinstance(previous, str) and isinstance(content, str):
                out[-1]["content"] = previous + "\n\n" + content
            else:
                out[-1]["content"] = _as_blocks(previous) + _as_blocks(content)
        else:
            out.append({"role": role, "content": content})
    return out


def _tool_call(call_id: str, name: str, parts: list[str]) -> ToolCall:
    raw = "".join(parts)
    try:
        arguments = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        arguments = {INVALID_ARGUMENTS: raw}
    if not isinstance(arguments, dict):
        arguments = {INVALID_ARGUMENTS: raw}
    return ToolCall(call_id, name, arguments)


class _Parser:
    __slots__ = (
        "decoder",
        "done",
        "endpoint",
        "error",
        "input_tokens",
        "output_tokens",
        "tool_blocks",
        "usage",
    )

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.decoder = SSEDecoder()
        self.done = False
        self.usage: Usage | None = None
        self.error: ProviderError | None = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        # tool_use blocks being streamed, by block index: id, name, partial JSON pieces
        self.tool_blocks: dict[int, tuple[str, str, list[str]]] = {}

    def feed(self, chunk: bytes) -> list[str | ToolCall]:
        pieces: list[str | ToolCall] = []
        for message in self.decoder.feed(chunk):
            try:
                data = orjson.loads(message.data)
                kind = data.get("type", message.event)
                if kind == "content_block_delta":
                    delta = data["delta"]
                    text = delta.get("text")
                    if text:
                        pieces.append(text)
                    elif delta.get("type") == "input_json_delta":
                        self.tool_blocks[data["index"]][2].append(delta.get("partial_json", ""))
                elif kind == "content_block_start":
                    block = data["content_block"]
                    if block.get("type") == "tool_use":
                        self.tool_blocks[data["index"]] = (block["id"], block["name"], [])
                elif kind == "content_block_stop":
                    tool = self.tool_blocks.pop(data.get("index"), None)
                    if tool is not None:
                        pieces.append(_tool_call(*tool))
                elif kind == "message_start":
                    usage = data["message"].get("usage") or {}
                    self.input_tokens = usage.get("input_tokens")
                    self.output_tokens = usage.get("output_tokens")
                elif kind == "message_delta":
                    usage = data.get("usage") or {}
                    self.output_tokens = usage.get("output_tokens", self.output_tokens)
                elif kind == "message_stop":
                    self.done = True
                    self._set_usage()
                    break
                elif kind == "error":
                    error = data.get("error") or {}
                    status = _ERROR_STATUS.get(error.get("type", ""), 500)
                    self.error = self.endpoint.stream_error(status, error)
                    break
            except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError):
                self.error = self.endpoint.bad_chunk(message.data)
                break
        return pieces

    def _set_usage(self) -> None:
        if self.input_tokens is None and self.output_tokens is None:
            return
        total = (self.input_tokens or 0) + (self.output_tokens or 0)
        self.usage = Usage(self.input_tokens, self.output_tokens, total)

    def finish(self) -> None:
        if not self.done:
            raise ProviderBadResponse(f"{self.endpoint.name} ended the stream before message_stop")
