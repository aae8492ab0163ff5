"""Google Gemini's native REST API (ai.google.dev/api), streamed:

    POST {base}/models/{model}:streamGenerateContent?alt=sse    x-goog-api-key: KEY

answers `data: <GenerateContentResponse>` events (CRLF line ends), each with
`candidates[0].content.parts` (text, `thought: true` reasoning text, `functionCall`s) and
the usage so far in `usageMetadata`; the last carries `finishReason`. There is no `[DONE]`:
the body ends. A prompt refused by the safety filters comes as `promptFeedback.blockReason`
with no candidates; an answer stopped by them as `finishReason` `SAFETY` (and the like).
Errors are `{"error": {"code": 400, "message": ..., "status": "INVALID_ARGUMENT",
"details": [...]}}`; a bad key is a 400 whose details say `API_KEY_INVALID`.

With thinking (`generationConfig.thinkingConfig`), a function call's part may carry a
`thoughtSignature` that must go back on that part when the conversation continues: it
rides on the call's `replay`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Any
from urllib.parse import quote

import orjson

from tailwinds.errors import AnswerTooLong, ProviderBadResponse, ProviderError, ProviderRejected
from tailwinds.messages import INVALID_ARGUMENTS, ChatMessage, ThinkingEvent, ToolCall, Usage
from tailwinds.providers.base import ChatRequest, Piece, ProviderLimits, token_count, usage_of
from tailwinds.providers.embeddings import embed_in_batches
from tailwinds.providers.http import Endpoint
from tailwinds.providers.lenient_json import whole_json
from tailwinds.providers.tool_calls import checked_arguments
from tailwinds.sse import SSEDecoder
from tailwinds.wire import WireClient

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
# the reasons an answer ends whole; any other is a refusal (SAFETY, RECITATION, ...)
WHOLE = frozenset({"STOP", "MAX_TOKENS"})
SAFETY_CATEGORIES = (
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
    "HARM_CATEGORY_CIVIC_INTEGRITY",
)
SAFETY_THRESHOLDS = (
    "BLOCK_NONE",
    "BLOCK_ONLY_HIGH",
    "BLOCK_MEDIUM_AND_ABOVE",
    "BLOCK_LOW_AND_ABOVE",
    "OFF",
)


def _headers(api_key: str | None, accept: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": accept}
    if api_key:
        headers["x-goog-api-key"] = api_key
    return headers


def _model_path(model: str) -> str:
    return "/models/" + quote(model.removeprefix("models/"), safe="-._")


def status_of_failure(status: int, message: str) -> int:
    """Gemini answers a missing or bad key with 400 (INVALID_ARGUMENT): an auth failure."""
    if status == 400 and ("API key" in message or "API_KEY" in message):
        return 401
    return status


class GeminiChatProvider:
    def __init__(
        self,
        wire: WireClient,
        base_url: str,
        api_key: str | None,
        limits: ProviderLimits,
        safety_settings: list[dict[str, str]] | None = None,
        include_thoughts: bool = True,
    ) -> None:
        self.wire = wire
        self.base_url = base_url
        self.api_key = api_key
        self.limits = limits
        self.safety_settings = safety_settings
        self.include_thoughts = include_thoughts

    def stream_chat(self, request: ChatRequest) -> AsyncIterator[Piece]:
        endpoint = Endpoint(
            self.wire,
            self.base_url,
            _model_path(request.model) + ":streamGenerateContent?alt=sse",
            _headers(self.api_key, "text/event-stream"),
            self.limits,
            self.api_key,
        )
        endpoint.status_of_failure = status_of_failure
        return endpoint.stream(self._body(request), partial(_Parser, endpoint))

    def _body(self, request: ChatRequest) -> bytes:
        body: dict[str, Any] = {"contents": contents(request.messages)}
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        config: dict[str, Any] = {}
        if request.temperature is not None:
            config["temperature"] = request.temperature
        if request.max_tokens is not None:
            config["maxOutputTokens"] = request.max_tokens
        if request.thinking_budget is not None or self.include_thoughts:
            thinking: dict[str, Any] = {"includeThoughts": self.include_thoughts}
            if request.thinking_budget is not None:
                thinking["thinkingBudget"] = request.thinking_budget
            config["thinkingConfig"] = thinking
        if config:
            body["generationConfig"] = config
        if self.safety_settings:
            body["safetySettings"] = self.safety_settings
        if request.tools:
            declarations = [
                {"name": t.name, "description": t.description, "parameters": t.parameters}
                for t in request.tools
            ]
            body["tools"] = [{"functionDeclarations": declarations}]
        return orjson.dumps(body)


def contents(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    """The conversation as Gemini's `contents`: roles `user` and `model`, tool calls as
    `functionCall` parts (with their `thoughtSignature`), tool results as `functionResponse`
    parts of a user turn, named after the call they answer; neighbours of one role merged
    (the parallel calls' results must come in one turn); empty text left out."""
    names: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            continue
        parts: list[dict[str, Any]] = []
        if m.role == "tool":
            name = names.get(m.tool_call_id or "", m.tool_call_id or "tool")
            parts.append({"functionResponse": {"name": name, "response": {"result": m.content}}})
            role = "user"
        else:
            role = "model" if m.role == "assistant" else "user"
            if m.content:
                parts.append({"text": m.content})
            for call in m.tool_calls:
                names[call.id] = call.name
                part: dict[str, Any] = {"functionCall": {"name": call.name, "args": call.arguments}}
                signature = (call.replay or {}).get("thoughtSignature")
                if signature:
                    part["thoughtSignature"] = signature
                parts.append(part)
        if not parts:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["parts"].extend(parts)
        else:
            out.append({"role": role, "parts": parts})
    return out


class _Parser:
    """`data:` events in; text, `ThinkingEvent`s (parts with `thought: true`) and tool calls
    (each whole in its part) out; the usage of the last `usageMetadata`."""

    event_stream = True

    __slots__ = ("calls", "decoder", "done", "endpoint", "error", "finished", "usage")

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.decoder = SSEDecoder()
        self.done = False  # no terminator: the body's end is the answer's
        self.finished = False  # a finishReason seen
        self.usage: Usage | None = None
        self.error: ProviderError | None = None
        self.calls = 0

    def feed(self, chunk: bytes) -> list[Piece]:
        return self._events(self.decoder.feed_data(chunk))

    def end(self) -> list[Piece]:
        datas = self.decoder.end_data()
        if datas and not whole_json(datas[-1]):
            datas.pop()
        return self._events(datas)

    def _events(self, datas: list[bytes]) -> list[Piece]:
        pieces: list[Piece] = []
        for data in datas:
            try:
                parsed = orjson.loads(data)
                error = parsed.get("error")
                if error is not None:
                    self.error = self.endpoint.stream_error(error)
                    break
                usage = parsed.get("usageMetadata")
                if type(usage) is dict:  # optional: junk is ignored, not fatal
                    self.usage = _usage(usage) or self.usage
                candidates = parsed.get("candidates")
                if not candidates:
                    blocked = (parsed.get("promptFeedback") or {}).get("blockReason")
                    if blocked:
                        self.error = ProviderRejected(
                            f"{self.endpoint.name} refused the prompt (blockReason {blocked})"
                        )
                        break
                    continue
                candidate = candidates[0]
                for part in (candidate.get("content") or {}).get("parts") or ():
                    self._part(part, pieces)
                finish = candidate.get("finishReason")
                if finish and finish != "FINISH_REASON_UNSPECIFIED":
                    if finish not in WHOLE:
                        self.error = ProviderRejected(
                            f"{self.endpoint.name} stopped the answer (finishReason {finish})"
                        )
                        break
                    self.finished = True
            except (ValueError, AttributeError, TypeError, LookupError):
                self.error = self.endpoint.bad_chunk(data)
                break
            except AnswerTooLong as exc:
                self.error = exc
                break
        if self.decoder.error is not None and self.error is None:
            self.error = self.endpoint.stream_error(self.decoder.error.decode(errors="replace"))
        return pieces

    def _part(self, part: dict[str, Any], pieces: list[Piece]) -> None:
        text = part.get("text")
        if text:
            if type(text) is not str:
                raise TypeError("text is not a string")
            pieces.append(ThinkingEvent(text) if part.get("thought") else text)
        call = part.get("functionCall")
        if call:
            args = call.get("args")
            if args is None:
                args = {}
            elif not isinstance(args, dict):
                args = {INVALID_ARGUMENTS: str(args)}
            else:
                args = checked_arguments(args)
            signature = part.get("thoughtSignature")
            replay = {"thoughtSignature": signature} if signature else None
            call_id = call.get("id") or f"call_{self.calls}"
            self.calls += 1
            pieces.append(ToolCall(call_id, call["name"], args, replay))

    def finish(self) -> None:
        if not self.finished:
            raise ProviderBadResponse(
                f"{self.endpoint.name} ended the stream before a finishReason: "
                "the answer may be cut short"
            )


def _usage(usage: dict[str, Any]) -> Usage | None:
    """Gemini counts the thinking apart from the answer (`thoughtsTokenCount` beside
    `candidatesTokenCount`); here, as OpenAI does, the completion includes it."""
    answer, thoughts = usage.get("candidatesTokenCount"), usage.get("thoughtsTokenCount")
    completion: Any = answer
    thought_count, answer_count = token_count(thoughts), token_count(answer or 0)
    if thought_count is not None and answer_count is not None:
        completion = answer_count + thought_count
    return usage_of(
        usage.get("promptTokenCount"), completion, usage.get("totalTokenCount"), thoughts
    )


class GeminiEmbeddings:
    """`POST {base}/models/{model}:batchEmbedContents`: `{requests: [{model, content:
    {parts: [{text}]}}]}` in, `{embeddings: [{values: [...]}]}` out (at most 100 a batch)."""

    def __init__(
        self,
        wire: WireClient,
        base_url: str,
        api_key: str | None,
        model: str,
        limits: ProviderLimits,
        batch_size: int = 64,
    ) -> None:
        self.model = "models/" + model.removeprefix("models/")
        self.endpoint = Endpoint(
            wire,
            base_url,
            _model_path(model) + ":batchEmbedContents",
            _headers(api_key, "application/json"),
            limits,
            api_key,
        )
        self.endpoint.status_of_failure = status_of_failure
        self.batch_size = min(batch_size, 100)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return await embed_in_batches(
            self.endpoint,
            texts,
            self.batch_size,
            lambda batch: {
                "requests": [
                    {"model": self.model, "content": {"parts": [{"text": t}]}} for t in batch
                ]
            },
            lambda answer: [item["values"] for item in answer["embeddings"]],
        )
