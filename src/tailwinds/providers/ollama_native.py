"""Ollama's native `/api/chat`: newline-delimited JSON, one object per piece, the last one
`"done": true` with the token counts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from tailwinds.engine.messages import Usage
from tailwinds.errors import ProviderBadResponse, ProviderError
from tailwinds.providers.base import ChatRequest, ProviderLimits
from tailwinds.providers.http import Endpoint

MAX_LINE_BYTES = 8 * 1024 * 1024


class OllamaChatProvider:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        base_url: str,
        limits: ProviderLimits,
        keep_alive: str | None = None,
    ) -> None:
        self.keep_alive = keep_alive
        self.endpoint = Endpoint(
            http,
            base_url.rstrip("/") + "/api/chat",
            {"Content-Type": "application/json", "Accept": "application/x-ndjson"},
            limits,
            urlsplit(base_url).netloc or base_url,
            None,
        )

    def stream_chat(self, request: ChatRequest) -> AsyncIterator[str | Usage]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "stream": True,
        }
        options: dict[str, Any] = {}
        if request.temperature is not None:
            options["temperature"] = request.temperature
        if request.max_tokens is not None:
            options["num_predict"] = request.max_tokens
        if options:
            body["options"] = options
        if self.keep_alive is not None:
            body["keep_alive"] = self.keep_alive
        return self.endpoint.stream(orjson.dumps(body), _Parser(self.endpoint))


class _Parser:
    __slots__ = ("buffer", "done", "endpoint", "error", "usage")

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.buffer = b""
        self.done = False
        self.usage: Usage | None = None
        self.error: ProviderError | None = None

    def feed(self, chunk: bytes) -> list[str]:
        lines = (self.buffer + chunk).split(b"\n")
        self.buffer = lines.pop()
        if len(self.buffer) > MAX_LINE_BYTES:
            self.error = self.endpoint.bad_chunk(self.buffer[:200])
        pieces: list[str] = []
        for line in lines:
            if not line.strip():
                continue
            try:
                data = orjson.loads(line)
                if "error" in data:
                    self.error = self.endpoint.stream_error(500, data["error"])
                    break
                content = (data.get("message") or {}).get("content")
                if content:
                    pieces.append(content)
                if data.get("done"):
                    self.done = True
                    prompt = data.get("prompt_eval_count")
                    completion = data.get("eval_count")
                    if prompt is not None or completion is not None:
                        self.usage = Usage(prompt, completion, (prompt or 0) + (completion or 0))
                    break
            except (orjson.JSONDecodeError, AttributeError, TypeError):
                self.error = self.endpoint.bad_chunk(line)
                break
        return pieces

    def finish(self) -> None:
        if not self.done:
            raise ProviderBadResponse(f"{self.endpoint.name} ended the stream before done")
