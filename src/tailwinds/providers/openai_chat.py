"""The OpenAI-compatible chat completions wire protocol (OpenAI, vLLM, llama.cpp server,
LM Studio, Ollama's /v1, Groq, OpenRouter, Together, Mistral …).

Read as raw bytes, split by our SSEDecoder, parsed with orjson: no SDK object per chunk
(ARCHITECTURE.md measures the SDK at ~7x the cost).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from tailwinds.engine.messages import INVALID_ARGUMENTS, ChatMessage, ToolCall, Usage
from tailwinds.errors import ProviderBadResponse, ProviderError, ProviderRejected
from tailwinds.providers.base import ChatRequest, ProviderLimits, function_tools
from tailwinds.providers.http import Endpoint
from tailwinds.sse import SSEDecoder
from tailwinds.wire import WireClient


class OpenAIChatProvider:
    def __init__(
        self,
        wire: WireClient,
        base_url: str,
        api_key: str | None,
        limits: ProviderLimits,
    ) -> None:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.endpoint = Endpoint(
            wire,
            base_url,
            "/chat/completions",
            headers,
            limits,
            api_key,
        )

    def stream_chat(self, request: ChatRequest) -> AsyncIterator[str | ToolCall | Usage]:
        def without_usage(refusal: ProviderRejected) -> bytes | None:
            # an older server refusing usage reports: ask again without
            return _body(request, False) if "stream_options" in refusal.message else None

        return self.endpoint.stream(
            _body(request, True), _Parser(self.endpoint), on_refusal=without_usage
        )


def _message(m: ChatMessage) -> dict[str, Any]:
    if m.tool_calls:
        return {
            "role": "assistant",
            "content": m.content or None,
            "tool_calls": [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": orjson.dumps(c.arguments).decode()},
                }
                for c in m.tool_calls
            ],
        }
    if m.role == "tool":
        return {"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content}
    return {"role": m.role, "content": m.content}


def _body(request: ChatRequest, with_usage: bool) -> bytes:
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [_message(m) for m in request.messages],
        "stream": True,
    }
    if request.tools:
        body["tools"] = function_tools(request.tools)
    if with_usage:
        body["stream_options"] = {"include_usage": True}
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    return orjson.dumps(body)


class _Parser:
    __slots__ = ("calls", "decoder", "done", "endpoint", "error", "finished", "usage")

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.decoder = SSEDecoder()
        self.done = False  # [DONE] seen
        self.finished = False  # a finish_reason seen
        self.usage: Usage | None = None
        self.error: ProviderError | None = None
        # tool calls being assembled from their deltas, by index: id, name, argument pieces
        self.calls: dict[int, list[Any]] = {}

    def feed(self, chunk: bytes) -> list[str | ToolCall]:
        pieces: list[str | ToolCall] = []
        for data in self.decoder.feed_data(chunk):
            if data == b"[DONE]":
                self.done = True
                break
            try:
                parsed = orjson.loads(data)
                error = parsed.get("error")
                if error is not None:
                    self.error = self.endpoint.stream_error(_status_of(error), error)
                    break
                choices = parsed.get("choices")
                if choices:
                    choice = choices[0]
                    delta = choice.get("delta")
                    if delta:
                        content = delta.get("content")
                        if content:
                            pieces.append(content)
                        tool_calls = delta.get("tool_calls")
                        if tool_calls:
                            self._add_call_deltas(tool_calls)
                    if choice.get("finish_reason"):
                        self.finished = True
                        pieces.extend(self._finished_calls())
                usage = parsed.get("usage")
                if usage:
                    self.usage = Usage(
                        usage.get("prompt_tokens"),
                        usage.get("completion_tokens"),
                        usage.get("total_tokens"),
                    )
            except (orjson.JSONDecodeError, AttributeError, TypeError, IndexError):
                self.error = self.endpoint.bad_chunk(data)
                break
        return pieces

    def _add_call_deltas(self, deltas: list[dict[str, Any]]) -> None:
        for delta in deltas:
            call = self.calls.setdefault(delta.get("index", 0), ["", "", []])
            if delta.get("id"):
                call[0] = delta["id"]
            function = delta.get("function") or {}
            if function.get("name"):
                call[1] += function["name"]
            if function.get("arguments"):
                call[2].append(function["arguments"])

    def _finished_calls(self) -> list[ToolCall]:
        calls = []
        for index in sorted(self.calls):
            call_id, name, parts = self.calls[index]
            raw = "".join(parts)
            try:
                arguments = orjson.loads(raw) if raw.strip() else {}
            except orjson.JSONDecodeError:
                arguments = {INVALID_ARGUMENTS: raw}  # the agent tells the model so
            if not isinstance(arguments, dict):
                arguments = {INVALID_ARGUMENTS: raw}
            calls.append(ToolCall(call_id or f"call_{index}", name, arguments))
        self.calls.clear()
        return calls

    def finish(self) -> None:
        # some servers end without [DONE] after the finish chunk; that answer is whole
        if not (self.done or self.finished):
            raise ProviderBadResponse(
                f"{self.endpoint.name} ended the stream before the answer finished"
            )


def _status_of(error: Any) -> int:
    """Mid-stream errors carry no HTTP status: infer one from what they say."""
    text = str(error).lower()
    if "rate" in text and "limit" in text:
        return 429
    if "auth" in text or "api key" in text:
        return 401
    return 503
