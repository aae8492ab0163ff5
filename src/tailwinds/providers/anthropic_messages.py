"""Anthropic's Messages API, streamed: `message_start` (input usage), `content_block_delta`
text deltas, `message_delta` (output usage, stop reason), `message_stop`, and `error`
events (overloaded, for one) that may come at any point of the stream.

Extended thinking (docs.anthropic.com/en/docs/build-with-claude/extended-thinking): with
`thinking: {"type": "enabled", "budget_tokens": N}` the answer opens with `thinking`
blocks streamed as `thinking_delta`s (yielded as `ThinkingEvent`s) and closed by a
`signature_delta`; `redacted_thinking` blocks carry only encrypted `data`. When the model
then calls tools, those blocks must go back unchanged, signature and all, before the
`tool_use` blocks of the assistant turn: they ride on the first call's `replay`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import orjson

from tailwinds.errors import AnswerTooLong, ProviderBadResponse, ProviderError
from tailwinds.messages import ChatMessage, ThinkingEvent, ToolCall, Usage
from tailwinds.providers.base import ChatRequest, Piece, ProviderLimits, usage_of
from tailwinds.providers.http import Endpoint
from tailwinds.providers.lenient_json import SurrogateCarry, loads_lenient, whole_json
from tailwinds.providers.tool_calls import MAX_ARGUMENTS_CHARS, parse_arguments
from tailwinds.sse import SSEDecoder, SSEMessage
from tailwinds.wire import WireClient

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024


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

    def stream_chat(self, request: ChatRequest) -> AsyncIterator[Piece]:
        return self.endpoint.stream(_body(request), partial(_Parser, self.endpoint))


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
    if request.thinking_budget:
        body["thinking"] = {"type": "enabled", "budget_tokens": request.thinking_budget}
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
        replay = message.tool_calls[0].replay or {}
        thinking = list(replay.get("anthropic_thinking", ()))
        text = [{"type": "text", "text": message.content}] if message.content else []
        uses = [
            {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
            for c in message.tool_calls
        ]
        return "assistant", [*thinking, *text, *uses]
    if message.images:
        # images before the text, as docs.anthropic.com/en/docs/build-with-claude/vision advises
        images = [
            {"type": "image", "source": {"type": "base64", "media_type": i.mime, "data": i.data}}
            for i in message.images
        ]
        return message.role, [*images, {"type": "text", "text": message.content}]
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


class _Parser:
    """Events in, text pieces and whole tool calls out. A `tool_use` block is assembled
    by its `content_block` index from `input_json_delta` pieces and emitted at its
    `content_block_stop` (or at `message_stop`, for a server that leaves it open)."""

    # an event stream: a body that opens with `{` is a JSON document instead (an error
    # answered with status 200), which `Endpoint.stream` reads whole
    event_stream = True

    __slots__ = (
        "arguments_size",
        "carry",
        "decoder",
        "done",
        "endpoint",
        "error",
        "input_tokens",
        "output_tokens",
        "thinking",
        "tool_blocks",
        "usage",
    )

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.decoder = SSEDecoder()
        self.done = False
        self.usage: Usage | None = None
        self.error: ProviderError | None = None
        # as sent: checked once, at the end (`usage_of`)
        self.input_tokens: Any = None
        self.output_tokens: Any = None
        # tool_use blocks being streamed, by block index: id, name, partial JSON pieces
        self.tool_blocks: dict[int, tuple[str, str, list[str]]] = {}
        self.arguments_size = 0
        self.carry = SurrogateCarry()
        # this answer's thinking blocks, whole, by index: sent back with its tool calls
        self.thinking: dict[int, dict[str, Any]] = {}

    def feed(self, chunk: bytes) -> list[Piece]:
        return self._events(self.decoder.feed(chunk))

    def end(self) -> list[Piece]:
        """At end of body: the last event, when the server left out the blank line (or
        the newline) that ends it, taken when its data is whole JSON; a cut one is
        dropped, as the SSE standard drops any, and `finish` then reports the answer cut."""
        messages = self.decoder.end()
        if messages and not whole_json(messages[-1].data):
            messages.pop()
        return self._events(messages)

    def _events(self, messages: list[SSEMessage]) -> list[Piece]:
        pieces: list[Piece] = []
        for message in messages:
            try:
                try:
                    data = orjson.loads(message.data)
                except orjson.JSONDecodeError:
                    data = self._lenient(message.data)
                kind = data.get("type", message.event)
                if kind == "content_block_delta":
                    delta = data["delta"]
                    text = delta.get("text")
                    if text:
                        if type(text) is not str:
                            raise TypeError("text is not a string")
                        pieces.append(text)
                    elif delta.get("type") == "input_json_delta":
                        self._add_json(data["index"], delta.get("partial_json") or "")
                    elif delta.get("type") in ("thinking_delta", "signature_delta"):
                        self._add_thinking(data["index"], delta, pieces)
                elif kind == "content_block_start":
                    block = data["content_block"]
                    if block.get("type") in ("thinking", "redacted_thinking"):
                        self.thinking[data["index"]] = dict(block)
                    tool = self.tool_blocks.pop(data["index"], None)
                    if tool is not None:  # a block restarted at an open index: close it
                        pieces.append(self._call(tool))
                    if block.get("type") == "tool_use":
                        self.tool_blocks[data["index"]] = (block["id"], block["name"], [])
                elif kind == "content_block_stop":
                    self._close_blocks(pieces, data.get("index"))
                elif kind == "message_start":
                    self.endpoint.response.saw(
                        data["message"].get("model"), data["message"].get("id")
                    )
                    usage = data["message"].get("usage")
                    if type(usage) is dict:  # optional: junk is ignored, not fatal
                        self.input_tokens = usage.get("input_tokens")
                        self.output_tokens = usage.get("output_tokens")
                elif kind == "message_delta":
                    self.endpoint.response.finished((data.get("delta") or {}).get("stop_reason"))
                    usage = data.get("usage")
                    if type(usage) is dict:
                        self.output_tokens = usage.get("output_tokens", self.output_tokens)
                elif kind == "message_stop":
                    self.done = True
                    self._close_blocks(pieces, None)
                    self._set_usage()
                    break
                elif kind == "error":
                    error = data.get("error") or data
                    self.error = self.endpoint.stream_error(error)
                    break
            except AnswerTooLong as exc:
                self.error = exc
                break
            except (ValueError, AttributeError, LookupError, TypeError):
                self.error = self.endpoint.bad_chunk(message.data)
                break
        if self.decoder.error is not None and self.error is None:
            # an `error:` field beside the events (SSEDecoder.error)
            self.error = self.endpoint.stream_error(self.decoder.error.decode(errors="replace"))
        return pieces

    def _lenient(self, raw: str) -> Any:
        """A chunk orjson refused: one half of a surrogate pair (lenient_json), else
        `ValueError`."""
        data = loads_lenient(raw)
        delta = data.get("delta")
        if isinstance(delta, dict) and delta.get("text"):
            delta["text"] = self.carry.join(delta["text"])
        return data

    def _add_thinking(self, index: int, delta: dict[str, Any], pieces: list[Piece]) -> None:
        block = self.thinking.setdefault(index, {"type": "thinking", "thinking": ""})
        thinking = delta.get("thinking")
        if thinking:
            if type(thinking) is not str:
                raise TypeError("thinking is not a string")
            block["thinking"] = (block.get("thinking") or "") + thinking
            pieces.append(ThinkingEvent(thinking))
        signature = delta.get("signature")
        if signature:
            block["signature"] = (block.get("signature") or "") + str(signature)

    def _add_json(self, index: int, piece: str) -> None:
        self.arguments_size += len(piece)
        if self.arguments_size > MAX_ARGUMENTS_CHARS:
            raise AnswerTooLong(
                f"the model's tool-call arguments passed {MAX_ARGUMENTS_CHARS} characters"
            )
        self.tool_blocks[index][2].append(piece)

    def _close_blocks(self, pieces: list[Piece], index: int | None) -> None:
        """Emit the tool block at `index` (all the open ones when None), and any half of
        a surrogate pair still held."""
        if self.carry.high:
            pieces.append(self.carry.flush())
        indexes = sorted(self.tool_blocks) if index is None else [index]
        for i in indexes:
            tool = self.tool_blocks.pop(i, None)
            if tool is not None:
                pieces.append(self._call(tool))

    def _call(self, tool: tuple[str, str, list[str]]) -> ToolCall:
        """A whole call; the answer's first carries its thinking blocks back (`replay`)."""
        replay = None
        if self.thinking:
            replay = {"anthropic_thinking": [self.thinking[i] for i in sorted(self.thinking)]}
            self.thinking = {}
        return ToolCall(tool[0], tool[1], parse_arguments("".join(tool[2])), replay)

    def _set_usage(self) -> None:
        self.usage = usage_of(self.input_tokens, self.output_tokens)

    def finish(self) -> None:
        if not self.done:
            raise ProviderBadResponse(
                f"{self.endpoint.name} ended the stream before message_stop: "
                "the answer may be cut short"
            )
