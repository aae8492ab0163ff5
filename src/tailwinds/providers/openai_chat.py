"""The OpenAI-compatible chat completions wire protocol (OpenAI, vLLM, llama.cpp server,
LM Studio, Ollama's /v1, Groq, OpenRouter, Together, Mistral …).

Read as raw bytes, split by our SSEDecoder, parsed with orjson: no SDK object per chunk
(ARCHITECTURE.md measures the SDK at ~7x the cost).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import orjson

from tailwinds.errors import AnswerTooLong, ProviderBadResponse, ProviderError, ProviderRejected
from tailwinds.messages import ChatMessage, ThinkingEvent, ToolCall, Usage
from tailwinds.providers.base import (
    ChatRequest,
    ProviderLimits,
    function_tools,
    reasoning_count,
    usage_of,
)
from tailwinds.providers.http import Endpoint
from tailwinds.providers.lenient_json import SurrogateCarry, loads_lenient, whole_json
from tailwinds.providers.reasoning import ThinkSplitter
from tailwinds.providers.tool_calls import ToolCallDeltas
from tailwinds.sse import SSEDecoder
from tailwinds.wire import WireClient


class OpenAIChatProvider:
    def __init__(
        self,
        wire: WireClient,
        base_url: str,
        api_key: str | None,
        limits: ProviderLimits,
        path: str = "/chat/completions",
        key_header: str | None = None,
    ) -> None:
        """`key_header` names a header that carries the key as it is (Azure's `api-key`);
        else it goes as `Authorization: Bearer`."""
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if api_key:
            if key_header:
                headers[key_header] = api_key
            else:
                headers["Authorization"] = f"Bearer {api_key}"
        self.endpoint = Endpoint(wire, base_url, path, headers, limits, api_key)

    def stream_chat(
        self, request: ChatRequest
    ) -> AsyncIterator[str | ToolCall | Usage | ThinkingEvent]:
        def without_usage(refusal: ProviderRejected) -> bytes | None:
            # an older server refusing usage reports: ask again without
            return _body(request, False) if "stream_options" in refusal.message else None

        return self.endpoint.stream(
            _body(request, True), partial(_Parser, self.endpoint), on_refusal=without_usage
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
    if m.images:
        # vision: content parts, each image a data URL (platform.openai.com/docs/guides/vision)
        parts: list[dict[str, Any]] = [{"type": "text", "text": m.content}]
        parts.extend(
            {"type": "image_url", "image_url": {"url": f"data:{i.mime};base64,{i.data}"}}
            for i in m.images
        )
        return {"role": m.role, "content": parts}
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
    if request.reasoning_effort is not None:
        body["reasoning_effort"] = request.reasoning_effort
    return orjson.dumps(body)


class _Parser:
    """One answer's chunks (`chat.completion.chunk` objects in SSE `data:` lines, then
    `data: [DONE]`) into text pieces, whole tool calls and usage.

    An answer is whole only once a `finish_reason` came: a `[DONE]` or an end of body
    before it is a cut answer. Errors come as `data: {"error": ...}` (OpenAI, vLLM,
    llama.cpp), as an `event: error`, or as llama.cpp's non-standard `error:` field.

    Reasoning comes apart as `delta.reasoning_content` (DeepSeek's API, vLLM, llama.cpp
    with `--reasoning-format`) or `delta.reasoning` (OpenRouter, Ollama's /v1, LM Studio),
    or inside the text between `<think>` and `</think>` (`ThinkSplitter`); its token count
    as `usage.completion_tokens_details.reasoning_tokens` (OpenAI's o-series)."""

    # an event stream: a body that opens with `{` is a JSON document instead (an error
    # answered with status 200), which `Endpoint.stream` reads whole
    event_stream = True

    __slots__ = (
        "calls",
        "carry",
        "decoder",
        "done",
        "endpoint",
        "error",
        "finished",
        "think",
        "usage",
    )

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.decoder = SSEDecoder()
        self.done = False  # [DONE] seen
        self.finished = False  # a finish_reason seen
        self.usage: Usage | None = None
        self.error: ProviderError | None = None
        self.calls = ToolCallDeltas()
        self.carry = SurrogateCarry()
        self.think = ThinkSplitter()

    def feed(self, chunk: bytes) -> list[str | ToolCall | ThinkingEvent]:
        return self._events(self.decoder.feed_data(chunk))

    def end(self) -> list[str | ToolCall | ThinkingEvent]:
        """At end of body: the last event, when the server left out the blank line (or
        the newline) that ends it, taken when its data is whole (`[DONE]` or JSON that
        parses); a cut one is dropped, as the SSE standard drops any, and `finish` then
        reports the answer cut."""
        datas = self.decoder.end_data()
        if datas and datas[-1] != b"[DONE]" and not whole_json(datas[-1]):
            datas.pop()
        return self._events(datas)

    def _events(self, datas: list[bytes]) -> list[str | ToolCall | ThinkingEvent]:
        pieces: list[str | ToolCall | ThinkingEvent] = []
        think = self.think
        decoder = self.decoder
        for data in datas:
            if data == b"[DONE]":
                self.done = True
                break
            try:
                try:
                    parsed = orjson.loads(data)
                except orjson.JSONDecodeError:
                    parsed = self._lenient(data)
                error = parsed.get("error")
                if error is not None:
                    self.error = self.endpoint.stream_error(error)
                    break
                choices = parsed.get("choices")
                if choices:
                    choice = choices[0]
                    delta = choice.get("delta")
                    if delta:
                        content = delta.get("content")
                        if content:
                            if type(content) is not str:
                                raise TypeError("content is not a string")
                            if think.busy or "<" in content:
                                pieces.extend(think.feed(content))
                            else:
                                pieces.append(content)
                        else:
                            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                            if reasoning:
                                if type(reasoning) is not str:
                                    raise TypeError("reasoning is not a string")
                                pieces.append(ThinkingEvent(reasoning))
                        tool_calls = delta.get("tool_calls")
                        if tool_calls:
                            self.calls.add(tool_calls)
                    finish = choice.get("finish_reason")
                    if finish:
                        if finish == "error":  # OpenRouter's mid-stream failure, bare
                            self.error = self.endpoint.stream_error(
                                "the server ended the answer with finish_reason 'error'"
                            )
                            break
                        if finish == "content_filter":  # OpenAI's and Azure's: cut, not whole
                            self.error = ProviderRejected(
                                f"{self.endpoint.name} stopped the answer: its content filter "
                                "flagged it (finish_reason 'content_filter')"
                            )
                            break
                        self.finished = True
                        # once an answer, not per chunk: the finishing chunk names both
                        self.endpoint.response.saw(parsed.get("model"), parsed.get("id"))
                        self.endpoint.response.finished(finish)
                        if self.carry.high:
                            pieces.extend(think.feed(self.carry.flush()))
                        pieces.extend(think.flush())
                        pieces.extend(self.calls.finished())
                usage = parsed.get("usage")
                if usage and type(usage) is dict:  # optional: junk is ignored, not fatal
                    self.usage = (
                        usage_of(
                            usage.get("prompt_tokens"),
                            usage.get("completion_tokens"),
                            usage.get("total_tokens"),
                            reasoning_count(usage.get("completion_tokens_details")),
                        )
                        or self.usage
                    )
            except AnswerTooLong as exc:
                self.error = exc
                break
            except (ValueError, AttributeError, TypeError, LookupError):
                self.error = self.endpoint.bad_chunk(data)
                break
        if decoder.error is not None and self.error is None:
            self.error = self._reported(decoder.error)
        return pieces

    def _lenient(self, data: bytes) -> Any:
        """A chunk orjson refused: one half of a surrogate pair (lenient_json), else
        `ValueError`."""
        parsed = loads_lenient(data)
        choices = parsed.get("choices")
        delta = choices[0].get("delta") if choices else None
        if delta and delta.get("content"):
            delta["content"] = self.carry.join(delta["content"])
        return parsed

    def _reported(self, raw: bytes) -> ProviderError:
        """An error sent beside the data (an `error:` field or `event: error`)."""
        try:
            error = orjson.loads(raw)
        except orjson.JSONDecodeError:
            error = raw.decode(errors="replace")
        if isinstance(error, dict) and isinstance(error.get("error"), dict | str):
            error = error["error"]
        return self.endpoint.stream_error(error)

    def finish(self) -> None:
        # some servers end without [DONE] after the finish chunk; that answer is whole
        if not self.finished:
            name = self.endpoint.name
            raise ProviderBadResponse(
                f"{name} ended the stream ({'[DONE]' if self.done else 'end of body'}) "
                "before the answer finished (no finish_reason): the answer may be cut short"
            )
