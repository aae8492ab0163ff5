"""Ollama's native `/api/chat`: newline-delimited JSON, one object per piece, the last one
`"done": true` with the token counts. Reasoning comes as `message.thinking` (with `"think":
true` in the request, Ollama 0.9+), or, from older builds of R1 distills, inside the text
between `<think>` and `</think>` (`ThinkSplitter`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import orjson

from tailwinds.errors import ProviderBadResponse, ProviderError
from tailwinds.messages import INVALID_ARGUMENTS, ChatMessage, ThinkingEvent, ToolCall, Usage
from tailwinds.providers.base import ChatRequest, Piece, ProviderLimits, function_tools, usage_of
from tailwinds.providers.http import Endpoint
from tailwinds.providers.lenient_json import SurrogateCarry, loads_lenient, whole_json
from tailwinds.providers.reasoning import ThinkSplitter
from tailwinds.providers.tool_calls import checked_arguments, parse_arguments
from tailwinds.wire import WireClient

MAX_LINE_BYTES = 8 * 1024 * 1024
LONG_LINE_BYTES = 64 * 1024  # a line past this is gathered in pieces


class OllamaChatProvider:
    def __init__(
        self,
        wire: WireClient,
        base_url: str,
        limits: ProviderLimits,
        keep_alive: str | None = None,
        think: bool | None = None,
    ) -> None:
        self.keep_alive = keep_alive
        self.think = think
        self.endpoint = Endpoint(
            wire,
            base_url,
            "/api/chat",
            {"Content-Type": "application/json", "Accept": "application/x-ndjson"},
            limits,
            None,
        )

    def stream_chat(self, request: ChatRequest) -> AsyncIterator[Piece]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [_message(m) for m in request.messages],
            "stream": True,
        }
        if request.tools:
            body["tools"] = function_tools(request.tools)
        options: dict[str, Any] = {}
        if request.temperature is not None:
            options["temperature"] = request.temperature
        if request.max_tokens is not None:
            options["num_predict"] = request.max_tokens
        if options:
            body["options"] = options
        if self.keep_alive is not None:
            body["keep_alive"] = self.keep_alive
        if self.think is not None:
            body["think"] = self.think
        return self.endpoint.stream(orjson.dumps(body), partial(_Parser, self.endpoint))


def _message(m: ChatMessage) -> dict[str, Any]:
    message: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.images:  # base64 images beside the text (github.com/ollama/ollama docs/api.md)
        message["images"] = [i.data for i in m.images]
    if m.tool_calls:
        message["tool_calls"] = [
            {"function": {"name": c.name, "arguments": c.arguments}} for c in m.tool_calls
        ]
    return message


class _Parser:
    """NDJSON lines in (cut anywhere: a line is parsed once whole, so a UTF-8 sequence
    split across reads arrives whole), text pieces and tool calls out. Ollama sends each
    tool call whole in one message; an `{"error": ...}` line is a failure, and a body that
    ends before `"done": true` a cut answer."""

    # NDJSON: every line opens with `{`; an error is a line of its own
    event_stream = False

    __slots__ = (
        "buffer",
        "calls",
        "carry",
        "done",
        "endpoint",
        "error",
        "long",
        "long_size",
        "seen",
        "think",
        "usage",
    )

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.buffer = b""
        # a line longer than LONG_LINE_BYTES still open: its pieces (copied once at its
        # end, not once per read), and their size
        self.long: list[bytes] | None = None
        self.long_size = 0
        self.done = False
        self.usage: Usage | None = None
        self.error: ProviderError | None = None
        self.calls = 0  # Ollama gives its tool calls no ids: number them
        self.seen: set[str] = set()  # ids of the calls emitted: a call resent is one call
        self.carry = SurrogateCarry()
        self.think = ThinkSplitter()

    def feed(self, chunk: bytes) -> list[Piece]:
        pieces: list[Piece] = []
        if self.long is not None:
            self.long.append(chunk)
            self.long_size += len(chunk)
            if b"\n" not in chunk:
                if self.long_size > MAX_LINE_BYTES:
                    self.error = self._too_long()
                return pieces
            chunk = b"".join(self.long)
            self.long = None
        lines = (self.buffer + chunk).split(b"\n") if self.buffer else chunk.split(b"\n")
        self.buffer = lines.pop()
        if len(self.buffer) > LONG_LINE_BYTES:
            if len(self.buffer) > MAX_LINE_BYTES:
                self.error = self._too_long()
                return pieces
            self.long = [self.buffer]
            self.long_size = len(self.buffer)
            self.buffer = b""
        return self._lines(lines)

    def end(self) -> list[Piece]:
        """At end of body: the last line, when the server left out its newline (JSON
        Lines, jsonlines.org: "The last character in the file may be a line separator"),
        taken when it is whole JSON; a cut one is dropped and `finish` reports the
        answer cut."""
        line = b"".join(self.long) if self.long is not None else self.buffer
        self.long = None
        self.buffer = b""
        if not line.strip() or not whole_json(line):
            return []
        return self._lines([line])

    def _lines(self, lines: list[bytes]) -> list[Piece]:
        pieces: list[Piece] = []
        think = self.think
        for line in lines:
            if not line.strip():
                continue
            try:
                try:
                    data = orjson.loads(line)
                except orjson.JSONDecodeError:
                    data = self._lenient(line)
                if "error" in data:
                    self.error = self.endpoint.stream_error(data["error"])
                    break
                message = data.get("message") or {}
                thinking = message.get("thinking")
                if thinking:
                    if type(thinking) is not str:
                        raise TypeError("thinking is not a string")
                    pieces.append(ThinkingEvent(thinking))
                content = message.get("content")
                if content:
                    if type(content) is not str:
                        raise TypeError("content is not a string")
                    if think.busy or "<" in content:
                        pieces.extend(think.feed(content))
                    else:
                        pieces.append(content)
                tool_calls = message.get("tool_calls")
                if tool_calls:
                    self._add_calls(tool_calls, pieces)
                if data.get("done"):
                    self.done = True
                    self.endpoint.response.saw(data.get("model"), None)
                    self.endpoint.response.finished(data.get("done_reason"))
                    if self.carry.high:
                        pieces.extend(think.feed(self.carry.flush()))
                    pieces.extend(think.flush())
                    # optional: junk counts are ignored, never fatal to a whole answer
                    self.usage = usage_of(data.get("prompt_eval_count"), data.get("eval_count"))
                    break
            except (ValueError, AttributeError, TypeError, LookupError):
                self.error = self.endpoint.bad_chunk(line)
                break
        return pieces

    def _too_long(self) -> ProviderBadResponse:
        return ProviderBadResponse(
            f"{self.endpoint.name} sent a line longer than {MAX_LINE_BYTES} bytes"
        )

    def _lenient(self, line: bytes) -> Any:
        data = loads_lenient(line)
        message = data.get("message")
        if isinstance(message, dict) and message.get("content"):
            message["content"] = self.carry.join(message["content"])
        return data

    def _add_calls(self, tool_calls: list[dict[str, Any]], pieces: list[Piece]) -> None:
        for n, call in enumerate(tool_calls):
            function = call["function"]
            arguments = function.get("arguments") or {}
            if isinstance(arguments, str):  # servers that send the JSON text, as OpenAI does
                arguments = parse_arguments(arguments)
            elif not isinstance(arguments, dict):
                arguments = {INVALID_ARGUMENTS: str(arguments)}
            else:
                arguments = checked_arguments(arguments)
            call_id = call.get("id") or f"call_{self.calls}_{n}"
            if call_id in self.seen:
                continue
            self.seen.add(call_id)
            pieces.append(ToolCall(call_id, function["name"], arguments))
        self.calls += 1

    def finish(self) -> None:
        if not self.done:
            raise ProviderBadResponse(
                f"{self.endpoint.name} ended the stream before done: the answer may be cut short"
            )
