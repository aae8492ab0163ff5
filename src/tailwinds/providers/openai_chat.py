"""The OpenAI-compatible chat completions wire protocol (OpenAI, vLLM, llama.cpp server,
LM Studio, Ollama's /v1, Groq, OpenRouter, Together, Mistral …).

Read as raw bytes, split by our SSEDecoder, parsed with orjson: no SDK object per chunk
(ARCHITECTURE.md measures the SDK at ~7x the cost).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from tailwinds.engine.messages import Usage
from tailwinds.errors import ProviderBadResponse, ProviderError
from tailwinds.providers.base import (
    RETRYABLE_STATUSES,
    ChatRequest,
    ProviderLimits,
    error_for_exception,
    error_for_status,
    redact,
)
from tailwinds.sse import SSEDecoder, SSEProtocolError

MAX_ERROR_BODY_BYTES = 64 * 1024


class OpenAIChatProvider:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        base_url: str,
        api_key: str | None,
        limits: ProviderLimits,
    ) -> None:
        self.http = http
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.api_key = api_key
        self.limits = limits
        self.name = urlsplit(base_url).netloc or base_url

    def _body(self, request: ChatRequest, with_usage: bool) -> bytes:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "stream": True,
        }
        if with_usage:
            body["stream_options"] = {"include_usage": True}
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        return orjson.dumps(body)

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[str | Usage]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.first_token_timeout_s
        state = _StreamState()
        decoder = SSEDecoder()
        resp: aiohttp.ClientResponse | None = None
        try:
            async with asyncio.timeout_at(deadline):
                resp = await self._open(request)
                pieces: list[str] = []
                while not pieces and not state.done:
                    chunk = await resp.content.readany()
                    if not chunk:
                        break
                    pieces = self._parse(decoder.feed(chunk), state)
            self.limits.arm_idle_timeout(resp)
            for piece in pieces:
                yield piece
            content = resp.content
            while not state.done:
                chunk = await content.readany()
                if not chunk:
                    break
                for piece in self._parse(decoder.feed(chunk), state):
                    yield piece
        except ProviderError:
            raise
        except SSEProtocolError as exc:
            raise ProviderBadResponse(f"{self.name} sent a broken event stream: {exc}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise error_for_exception(exc, self.name) from exc
        finally:
            if resp is not None:
                resp.close()  # on a cancel or abort this drops the upstream connection now
        if not (state.done or state.finished):
            raise ProviderBadResponse(f"{self.name} ended the stream before the answer finished")
        if state.usage is not None:
            yield state.usage

    async def _open(self, request: ChatRequest) -> aiohttp.ClientResponse:
        """POST the request, retrying with backoff while nothing has been received."""
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        with_usage = True
        attempt = 0
        while True:
            try:
                resp = await self.http.post(
                    self.url,
                    data=self._body(request, with_usage),
                    headers=headers,
                    timeout=self.limits.client_timeout(),
                )
            except aiohttp.ClientError as exc:
                error = error_for_exception(exc, self.name)
                if attempt >= self.limits.retries:
                    raise error from exc
                await asyncio.sleep(self.limits.retry_delay_s(attempt))
                attempt += 1
                continue
            if resp.status == 200:
                return resp
            message = await self._error_message(resp)
            if with_usage and resp.status == 400 and "stream_options" in message:
                with_usage = False  # an older server refusing usage reports: ask without
                continue
            error = error_for_status(resp.status, message, self.name)
            if resp.status not in RETRYABLE_STATUSES or attempt >= self.limits.retries:
                raise error
            await asyncio.sleep(
                self.limits.retry_delay_s(attempt, _retry_after_s(resp.headers.get("Retry-After")))
            )
            attempt += 1

    async def _error_message(self, resp: aiohttp.ClientResponse) -> str:
        try:
            raw = await resp.content.read(MAX_ERROR_BODY_BYTES)
        except aiohttp.ClientError:
            raw = b""
        finally:
            resp.close()
        return redact(_message_from_body(raw), self.api_key)

    def _parse(self, messages: list[Any], state: _StreamState) -> list[str]:
        pieces: list[str] = []
        for message in messages:
            data = message.data
            if data == "[DONE]":
                state.done = True
                break
            try:
                chunk = orjson.loads(data)
                error = chunk.get("error")
                if error is not None:
                    raise error_for_status(
                        _status_of(error), redact(_message_of(error), self.api_key), self.name
                    )
                choices = chunk.get("choices")
                if choices:
                    choice = choices[0]
                    delta = choice.get("delta")
                    if delta:
                        content = delta.get("content")
                        if content:
                            pieces.append(content)
                    if choice.get("finish_reason"):
                        state.finished = True
                usage = chunk.get("usage")
                if usage:
                    state.usage = Usage(
                        usage.get("prompt_tokens"),
                        usage.get("completion_tokens"),
                        usage.get("total_tokens"),
                    )
            except (orjson.JSONDecodeError, AttributeError, TypeError, IndexError) as exc:
                raise ProviderBadResponse(
                    f"{self.name} sent a malformed chunk: {redact(data[:200], self.api_key)!r}"
                ) from exc
        return pieces


class _StreamState:
    __slots__ = ("done", "finished", "usage")

    def __init__(self) -> None:
        self.done = False
        self.finished = False
        self.usage: Usage | None = None


def _message_from_body(raw: bytes) -> str:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw[:500].decode(errors="replace").strip()
    if isinstance(body, dict) and "error" in body:
        return _message_of(body["error"])
    return str(body)[:500]


def _message_of(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or error)[:500]
    return str(error)[:500]


def _status_of(error: Any) -> int:
    """Mid-stream errors carry no HTTP status: infer one from what they say."""
    text = str(error).lower()
    if "rate" in text and "limit" in text:
        return 429
    if "auth" in text or "api key" in text:
        return 401
    return 503


def _retry_after_s(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
