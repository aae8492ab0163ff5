"""A mock Azure OpenAI and Google Gemini for tests, in the style of `mock_openai.py`: their
streaming wire formats byte for byte as their references show them, and their error
bodies.

Azure OpenAI (learn.microsoft.com/azure/ai-services/openai/reference):
`POST /openai/deployments/{deployment}/chat/completions?api-version=...` and `.../embeddings`,
the key in `api-key` (or `Authorization: Bearer <token>`). The stream opens with Azure's
`prompt_filter_results` chunk (no choices), each choice carries `content_filter_results`,
and the usage chunk comes when `stream_options.include_usage` is asked. Errors: `{"error":
{"code": "401", "message": ...}}`, `DeploymentNotFound`, `content_filter`. The deployment
name picks the behaviour:

    echo (any name)   the answer's tokens (`mock_openai.answer_tokens`)
    agent             the scripted agent of `mock_openai.agent_turn`, with tool calls
    reasoner          an o-series deployment: usage with `reasoning_tokens`
    filtered          two tokens, then `finish_reason: content_filter`
    status:<code>     that HTTP status with Azure's error body
    missing           404 DeploymentNotFound

Google Gemini (ai.google.dev/api/generate-content):
`POST /v1beta/models/{model}:streamGenerateContent?alt=sse` and `:batchEmbedContents`, the
key in `x-goog-api-key`. Events are `data: <GenerateContentResponse>` ended by CRLF CRLF,
with `usageMetadata` on each and `finishReason` on the last; thought parts (`thought:
true`) first when `thinkingConfig.includeThoughts` is set. A bad key is a 400 with
`API_KEY_INVALID`. The model name picks the behaviour:

    echo (any name)   the answer's tokens
    agent             the scripted agent, calls as `functionCall` parts with a
                      `thoughtSignature`, which must come back (else 400, as Gemini does)
    blocked           `promptFeedback.blockReason: SAFETY`, no candidates
    unsafe            one token, then `finishReason: SAFETY`
    status-<code>     that HTTP status with Google's error body
    midstream-error   one token, then an error object in the stream
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.mock_openai import agent_turn, answer_tokens, bag_of_words

AZURE_KEY = "azure-key-0123456789abcdef"
GEMINI_KEY = "AIzaSyMockKey0123456789abcdefghijklmn"
SIGNATURE = "CiQBcsjafE2Z4pQkX0mR"
GRPC_STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND"}
GRPC_STATUS |= {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
SAFE = {"filtered": False, "severity": "safe"}
FILTERS = {"hate": SAFE, "self_harm": SAFE, "sexual": SAFE, "violence": SAFE}


def _compact(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class MockClouds:
    host: str = "127.0.0.1"
    port: int = 0
    seen: list[Seen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> MockClouds:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def serve() -> None:
            app = web.Application()
            app.router.add_post(
                "/openai/deployments/{deployment}/chat/completions", self._azure_chat
            )
            app.router.add_post("/openai/deployments/{deployment}/embeddings", self._azure_embed)
            app.router.add_post("/v1beta/models/{call}", self._gemini)
            self._runner = web.AppRunner(app, handle_signals=False)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.host, self.port)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(serve())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        async def shutdown() -> None:
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    def find(self, text: str) -> Seen:
        """The last request whose body mentions `text`."""
        for seen in reversed(self.seen):
            if text in json.dumps(seen.body, ensure_ascii=False):
                return seen
        raise LookupError(text)

    async def _record(self, request: web.Request) -> Seen:
        seen = Seen(request.path, dict(request.query), dict(request.headers), await request.json())
        self.seen.append(seen)
        return seen

    # Azure OpenAI

    @staticmethod
    def _azure_error(status: int, code: str, message: str) -> web.Response:
        return web.json_response({"error": {"code": code, "message": message}}, status=status)

    def _azure_refusal(self, request: web.Request, seen: Seen) -> web.Response | None:
        if "api-version" not in seen.query:
            return self._azure_error(404, "404", "Resource not found")
        bearer = seen.headers.get("Authorization") == f"Bearer {AZURE_KEY}"
        if seen.headers.get("api-key") != AZURE_KEY and not bearer:
            return self._azure_error(
                401,
                "401",
                "Access denied due to invalid subscription key or wrong API endpoint. Make "
                "sure to provide a valid key for an active subscription and use a correct "
                "regional API endpoint for your resource.",
            )
        deployment = request.match_info["deployment"]
        if deployment == "missing":
            return self._azure_error(
                404,
                "DeploymentNotFound",
                "The API deployment for this resource does not exist. If you created the "
                "deployment within the last 5 minutes, please wait a moment and try again.",
            )
        if deployment.startswith("status:"):
            status = int(deployment.split(":")[1])
            return self._azure_error(status, str(status), f"mock Azure status {status}")
        return None

    async def _azure_chat(self, request: web.Request) -> web.StreamResponse:
        seen = await self._record(request)
        refusal = self._azure_refusal(request, seen)
        if refusal is not None:
            return refusal
        deployment = request.match_info["deployment"]
        messages = seen.body["messages"]
        calls: list[Any] = []
        if deployment == "agent":
            calls, tokens = agent_turn(messages, "tool")
        else:
            tokens = answer_tokens(messages[-1]["content"])
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        base = {"id": "chatcmpl-Az1", "object": "chat.completion.chunk", "created": 1732838400}
        base |= {"model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_azure"}

        async def chunk(delta: dict[str, Any], finish: str | None = None) -> None:
            choice = {"content_filter_results": FILTERS if delta.get("content") else {}}
            choice |= {"delta": delta, "finish_reason": finish, "index": 0, "logprobs": None}
            await response.write(b"data: " + _compact({**base, "choices": [choice]}) + b"\n\n")

        prompt_filter = {"prompt_index": 0, "content_filter_results": FILTERS}
        first = {"choices": [], "created": 0, "id": "", "model": "", "object": ""}
        await response.write(
            b"data: " + _compact({**first, "prompt_filter_results": [prompt_filter]}) + b"\n\n"
        )
        await chunk({"content": "", "refusal": None, "role": "assistant"})
        for i, (name, args) in enumerate(calls):
            arguments = json.dumps(args)
            head = {"id": f"call_az{i}", "type": "function"}
            head["function"] = {"name": name, "arguments": ""}  # type: ignore[assignment]
            await chunk({"tool_calls": [{"index": i, **head}]})
            await chunk({"tool_calls": [{"index": i, "function": {"arguments": arguments}}]})
        for n, token in enumerate(tokens):
            await chunk({"content": token})
            if deployment == "filtered" and n == 1:
                await chunk({}, "content_filter")
                await response.write(b"data: [DONE]\n\n")
                return response
        await chunk({}, "tool_calls" if calls else "stop")
        if (seen.body.get("stream_options") or {}).get("include_usage"):
            usage: dict[str, Any] = {"prompt_tokens": 9, "completion_tokens": len(tokens)}
            usage["total_tokens"] = 9 + len(tokens)
            if deployment == "reasoner":
                usage["completion_tokens_details"] = {"reasoning_tokens": 64}
            await response.write(b"data: " + _compact({**base, "choices": [], "usage": usage}))
            await response.write(b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        return response

    async def _azure_embed(self, request: web.Request) -> web.Response:
        seen = await self._record(request)
        refusal = self._azure_refusal(request, seen)
        if refusal is not None:
            return refusal
        texts = seen.body["input"]
        data = [
            {"object": "embedding", "index": i, "embedding": bag_of_words(t, 16)}
            for i, t in enumerate(texts)
        ]
        usage = {"prompt_tokens": len(texts), "total_tokens": len(texts)}
        return web.json_response({"object": "list", "data": data, "model": "ada", "usage": usage})

    # Google Gemini

    @staticmethod
    def _google_error(status: int, message: str, reason: str | None = None) -> web.Response:
        error: dict[str, Any] = {"code": status, "message": message}
        error["status"] = GRPC_STATUS.get(status, "UNKNOWN")
        if reason:
            error["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": reason,
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            ]
        return web.json_response({"error": error}, status=status)

    async def _gemini(self, request: web.Request) -> web.StreamResponse:
        seen = await self._record(request)
        model, _, action = request.match_info["call"].partition(":")
        if seen.headers.get("x-goog-api-key") != GEMINI_KEY:
            return self._google_error(
                400, "API key not valid. Please pass a valid API key.", "API_KEY_INVALID"
            )
        if model.startswith("status-"):
            status = int(model.split("-")[1])
            return self._google_error(status, f"mock Gemini status {status}")
        if action == "batchEmbedContents":
            vectors = [
                {"values": bag_of_words(r["content"]["parts"][0]["text"], 16)}
                for r in seen.body["requests"]
            ]
            return web.json_response({"embeddings": vectors})
        if action != "streamGenerateContent" or seen.query.get("alt") != "sse":
            return self._google_error(404, f"mock: {action} without alt=sse is not served")
        refusal = self._gemini_refusal(seen.body["contents"])
        if refusal:
            return self._google_error(400, refusal)
        return await self._gemini_stream(request, model, seen.body)

    @staticmethod
    def _gemini_refusal(contents: list[dict[str, Any]]) -> str | None:
        """Gemini's rules the client must keep: roles alternate user/model, a function
        call made with a signature comes back with it."""
        for i, content in enumerate(contents):
            if content["role"] not in ("user", "model"):
                return f"* GenerateContentRequest.contents[{i}].role: must be user or model"
            for j, part in enumerate(content["parts"]):
                if "functionCall" in part and "thoughtSignature" not in part and j == 0:
                    return (
                        f"Function call is missing a thought_signature in functionCall parts. "
                        f"Additional data, function call `default_api:"
                        f"{part['functionCall']['name']}` , position {i + 1}."
                    )
        return None

    async def _gemini_stream(
        self, request: web.Request, model: str, body: dict[str, Any]
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        usage = {"promptTokenCount": 8, "candidatesTokenCount": 0, "totalTokenCount": 8}
        think = ((body.get("generationConfig") or {}).get("thinkingConfig") or {}).get(
            "includeThoughts"
        )

        async def event(parts: list[dict[str, Any]] | None, finish: str | None = None) -> None:
            data: dict[str, Any] = {}
            if parts is not None:
                candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
                if finish:
                    candidate["finishReason"] = finish
                candidate["index"] = 0
                data["candidates"] = [candidate]
            data["usageMetadata"] = dict(usage)
            data |= {"modelVersion": model, "responseId": "mock-response-1"}
            await response.write(b"data: " + _compact(data) + b"\r\n\r\n")

        if model == "blocked":
            data = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": usage}
            await response.write(b"data: " + _compact(data) + b"\r\n\r\n")
            return response
        if model == "midstream-error":
            await event([{"text": "Hel"}])
            error = {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}
            await response.write(b"data: " + _compact({"error": error}) + b"\r\n\r\n")
            return response
        contents = body["contents"]
        question = contents[-1]["parts"][0].get("text", "")
        if think:
            usage["thoughtsTokenCount"] = 5
            await event([{"text": "**Thinking**\n\nThe user ", "thought": True}])
            await event([{"text": "wants an answer.", "thought": True}])
        if model == "agent":
            calls, tokens = agent_turn(_as_openai(contents), "tool")
            if calls:
                parts = [{"functionCall": {"name": name, "args": args}} for name, args in calls]
                parts[0]["thoughtSignature"] = SIGNATURE
                usage["candidatesTokenCount"] = 3
                usage["totalTokenCount"] = 11 + usage.get("thoughtsTokenCount", 0)
                await event(parts, "STOP")
                return response
        else:
            tokens = answer_tokens(question)
        for n, token in enumerate(tokens):
            usage["candidatesTokenCount"] = n + 1
            usage["totalTokenCount"] = 8 + n + 1 + usage.get("thoughtsTokenCount", 0)
            last = n == len(tokens) - 1
            if model == "unsafe" and n == 1:
                await event([{"text": token}], "SAFETY")
                return response
            await event([{"text": token}], "STOP" if last else None)
        return response


def _as_openai(contents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Gemini's contents as the OpenAI-shaped messages `agent_turn` reads."""
    messages: list[dict[str, Any]] = []
    for content in contents:
        for part in content["parts"]:
            if "functionResponse" in part:
                result = part["functionResponse"]["response"]["result"]
                messages.append({"role": "tool", "content": result})
            elif "text" in part:
                role = "assistant" if content["role"] == "model" else "user"
                messages.append({"role": role, "content": part["text"]})
            elif "functionCall" in part:
                messages.append({"role": "assistant", "content": ""})
    return messages
