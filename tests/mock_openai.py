"""A mock OpenAI-compatible server for tests: the chat completions streaming wire format,
byte for byte as OpenAI sends it (compact JSON chunks, a role chunk first, a finish chunk,
a usage chunk when asked, then `data: [DONE]`), and its error bodies.

The Anthropic route (`/v1/messages`) refuses, as Anthropic does, a request holding a
message with empty content (but an optional final assistant one).

The model name picks the behaviour:

    echo                 the answer's tokens (see `answer_tokens`), as fast as it can
    paced:<s>            the same, <s> seconds between tokens
    split                every event written in two pieces cut inside its bytes
    status:<code>        an OpenAI-style error answer with that HTTP status
    cut:<n>              n tokens, then the connection is dropped mid-stream
    malformed            one token, then a chunk that is not JSON
    midstream-error      two tokens, then an error object in the stream
    silent:<s>           the first token, then silence for <s> seconds
    slowstart:<s>        <s> seconds before the first byte, then the answer (Anthropic too)
    eof                  tokens, then the stream ends without finish_reason or [DONE]
    flood:<n>:<s>        n tokens of 1000 bytes as fast as they are taken, then one token
                         every 0.1 s for <s> seconds
    no-usage             refuses `stream_options` with 400, as older servers do
    flaky:<n>            503 for the first <n> requests with the same question, then the answer
    redirect             308 to another address, as a server moved behind a new URL does
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

LEAKED_KEY = "sk-proj-mocksecret1234567890"
REDIRECTED_TO = "https://models.example.com/v1/chat/completions"


def text_of_content(content: Any) -> str:
    """A message's text: its string, or the text of its parts (a vision request's content
    is a list of text and image parts, in OpenAI's and Anthropic's formats)."""
    if isinstance(content, str):
        return content
    return " ".join(str(b.get("text") or "") for b in content if b.get("type") == "text")


def agent_turn(messages: list[dict[str, Any]], tool_role: str) -> tuple[list[Any], list[str]]:
    """What a scripted agent model does next: the tool calls to ask for, or, once results
    are in (messages of `tool_role`), the answer's tokens built from them."""

    def text_of(message: dict[str, Any]) -> str:
        content = message["content"]
        if isinstance(content, str):
            return content
        return " ".join(str(b.get("text") or b.get("content") or "") for b in content)

    questions = [
        m for m in messages if m["role"] == "user" and text_of(m).startswith(("call:", "loop:"))
    ]
    question = text_of(questions[-1]) if questions else text_of(messages[-1])
    last = messages[-1]
    results_in = last["role"] == tool_role or (
        isinstance(last["content"], list)
        and any(b.get("type") == "tool_result" for b in last["content"])
    )
    if results_in and not question.startswith("loop:"):
        results = []
        for m in reversed(messages):
            if m["role"] == tool_role and isinstance(m["content"], str):
                results.insert(0, m["content"])
            elif isinstance(m["content"], list) and any(
                b.get("type") == "tool_result" for b in m["content"]
            ):
                results[:0] = [b["content"] for b in m["content"] if b.get("type") == "tool_result"]
            else:
                break
        return [], ["Result:", " " + "; ".join(results)]
    planned = json.loads(question.split(":", 1)[1])
    return ([planned] if question.startswith("loop:") else planned), []


def _anthropic_refusal(messages: list[dict[str, Any]]) -> str | None:
    """The Messages API's documented rule, which it answers with a 400: every message has
    content except an optional final assistant one."""
    for i, m in enumerate(messages):
        content = m["content"]
        empty = (
            not content
            if isinstance(content, str)
            else all(b.get("type") == "text" and not b.get("text") for b in content)
        )
        if empty and not (i == len(messages) - 1 and m["role"] == "assistant"):
            return (
                f"messages.{i}: all messages must have non-empty content except for the "
                "optional final assistant message"
            )
    return None


def answer_tokens(question: str) -> list[str]:
    """`tokens:["a","b"]` answers exactly those tokens; anything else is echoed back."""
    if question.startswith("tokens:"):
        return json.loads(question[len("tokens:") :])
    words = f"You said: {question}".split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def _chunk(completion_id: str, model: str, delta: dict[str, Any], finish: str | None) -> bytes:
    body = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": 1732838400,
        "model": model,
        "system_fingerprint": "fp_mock",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return (
        b"data: " + json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"
    )


def _usage_chunk(completion_id: str, model: str, prompt: int, completion: int) -> bytes:
    body = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": 1732838400,
        "model": model,
        "system_fingerprint": "fp_mock",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


@dataclass
class Record:
    body: dict[str, Any]
    headers: dict[str, str]
    started: float
    last_token_at: float | None = None
    closed_at: float | None = None  # when the mock saw its client leave
    completed: bool = False


def bag_of_words(text: str, dims: int) -> list[float]:
    import hashlib
    import math
    import re

    vector = [0.0] * dims
    for word in re.findall(r"\w+", text.lower()):
        vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % dims] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


@dataclass
class MockOpenAI:
    host: str = "127.0.0.1"
    port: int = 0
    records: list[Record] = field(default_factory=list)
    embedding_calls: dict[str, int] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def root_url(self) -> str:
        """For the Anthropic (`/v1/messages`) and Ollama (`/api/chat`) routes."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> MockOpenAI:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def serve() -> None:
            app = web.Application()
            app.router.add_post("/v1/chat/completions", self._completions)
            app.router.add_post("/v1/messages", self._anthropic)
            app.router.add_post("/v1/embeddings", self._embeddings)
            app.router.add_post("/api/embed", self._ollama_embed)
            app.router.add_post("/api/chat", self._ollama)
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
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def find(self, text: str) -> Record:
        """The request whose last message contains `text`."""
        for record in reversed(self.records):
            if text in text_of_content(record.body["messages"][-1]["content"]):
                return record
        raise LookupError(text)

    def count_prefix(self, text: str) -> int:
        """How many requests had a last message starting with `text`."""
        return sum(
            1
            for record in list(self.records)
            if str(record.body.get("messages", [{}])[-1].get("content", "")).startswith(text)
        )

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        record = Record(body, dict(request.headers), time.monotonic())
        self.records.append(record)
        model: str = body["model"]
        kind, _, arg = model.partition(":")
        question = text_of_content(body["messages"][-1]["content"])

        if kind == "status":
            status = int(arg)
            message = {
                401: "Incorrect API key provided: "
                f"{request.headers.get('Authorization', '')[7:] or LEAKED_KEY}. "
                "You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                429: "Rate limit reached for gpt-4o-mini in organization org-mock "
                "on tokens per min.",
            }.get(status, "The server had an error while processing your request.")
            error = {
                "error": {"message": message, "type": "mock_error", "param": None, "code": None}
            }
            return web.json_response(error, status=status)
        if kind == "flaky":
            tries = sum(1 for r in self.records if r.body["messages"][-1]["content"] == question)
            if tries <= int(arg):
                error = {"error": {"message": "overloaded", "type": "server_error"}}
                return web.json_response(error, status=503, headers={"Retry-After": "0"})
        if kind == "redirect":
            return web.Response(status=308, headers={"Location": REDIRECTED_TO})
        if kind == "no-usage" and "stream_options" in body:
            error = {"error": {"message": "Unrecognized request argument supplied: stream_options"}}
            return web.json_response(error, status=400)
        if kind == "slowstart":
            await asyncio.sleep(float(arg))
        if kind == "agent":
            return await self._agent(request, body, record)

        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
            }
        )
        await response.prepare(request)
        completion_id = f"chatcmpl-mock{len(self.records)}"
        tokens = answer_tokens(question)
        interval = float(arg) if kind == "paced" else 0.0
        paced_from = 1
        if kind == "flood":
            count, _, trickle_s = arg.partition(":")
            paced_from = int(count)
            trickle = [f" t{i}" for i in range(int(float(trickle_s or 0) * 10))]
            tokens, interval = ["x" * 1000] * paced_from + trickle, 0.1
        try:
            await self._write(
                response,
                _chunk(
                    completion_id,
                    model,
                    {"role": "assistant", "content": "", "refusal": None},
                    None,
                ),
                kind,
            )
            if kind == "silent":
                await self._write(
                    response, _chunk(completion_id, model, {"content": tokens[0]}, None), kind
                )
                await asyncio.sleep(float(arg))
            if kind == "cut":
                tokens = tokens[: int(arg)]
            for i, token in enumerate(tokens):
                if interval and i >= paced_from:
                    await asyncio.sleep(interval)
                await self._write(
                    response, _chunk(completion_id, model, {"content": token}, None), kind
                )
                record.last_token_at = time.monotonic()
                if kind == "malformed":
                    await self._write(
                        response, b'data: {"id":"chatcmpl-x","choices":[{"delta":\n\n', kind
                    )
                    break
                if kind == "midstream-error" and i == 1:
                    error = {
                        "error": {"message": "The server is overloaded.", "type": "server_error"}
                    }
                    await self._write(
                        response, b"data: " + json.dumps(error).encode() + b"\n\n", kind
                    )
                    break
            if kind == "cut":
                await asyncio.sleep(0.05)
                assert request.transport is not None
                request.transport.abort()  # no final chunk: a connection cut mid-stream
                return response
            if kind not in ("eof", "malformed", "midstream-error"):
                await self._write(response, _chunk(completion_id, model, {}, "stop"), kind)
                if body.get("stream_options", {}).get("include_usage"):
                    await self._write(
                        response, _usage_chunk(completion_id, model, 9, len(tokens)), kind
                    )
                await self._write(response, b"data: [DONE]\n\n", kind)
            await response.write_eof()
            record.completed = True
        except ConnectionResetError:
            record.closed_at = time.monotonic()
        return response

    async def _agent(
        self, request: web.Request, body: dict[str, Any], record: Record
    ) -> web.StreamResponse:
        """Tool calling as OpenAI streams it: `call:[[name, args], …]` asks for those calls
        (arguments cut in pieces, interleaved by index); once tool results are in, it
        answers with them. `loop:[name, args]` asks for the same call every turn."""
        messages = body["messages"]
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await response.prepare(request)
        cid, model = f"chatcmpl-agent{len(self.records)}", body["model"]
        await response.write(_chunk(cid, model, {"role": "assistant", "content": None}, None))
        question = next(m["content"] for m in reversed(messages) if m["role"] == "user")
        if messages[-1]["role"] == "tool" and not question.startswith("loop:"):
            results = []
            for m in reversed(messages):
                if m["role"] != "tool":
                    break
                results.insert(0, m["content"])
            for token in ["Result:", " " + "; ".join(results)]:
                await response.write(_chunk(cid, model, {"content": token}, None))
            finish = "stop"
        else:
            planned = json.loads(question.split(":", 1)[1])
            calls = [planned] if question.startswith("loop:") else planned
            pieces = []
            for index, (name, args) in enumerate(calls):
                head = {
                    "index": index,
                    "id": f"call_{index}_{len(self.records)}",
                    "type": "function",
                    "function": {"name": name, "arguments": ""},
                }
                await response.write(_chunk(cid, model, {"tool_calls": [head]}, None))
                text = json.dumps(args)
                third = max(1, len(text) // 3)
                pieces.append([text[:third], text[third : 2 * third], text[2 * third :]])
            for part in range(3):  # interleave the calls' argument pieces
                for index, parts in enumerate(pieces):
                    delta = {
                        "tool_calls": [{"index": index, "function": {"arguments": parts[part]}}]
                    }
                    await response.write(_chunk(cid, model, delta, None))
            finish = "tool_calls"
        await response.write(_chunk(cid, model, {}, finish))
        await response.write(_usage_chunk(cid, model, 10, 5))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        record.completed = True
        return response

    async def _embeddings(self, request: web.Request) -> web.Response:
        """OpenAI's embeddings answer, with a bag-of-words vector: texts that share words
        are near. `fail-batch:<n>` answers 500 from the n-th request on."""
        body = await request.json()  # not in `records`, which hold chat requests
        kind, _, arg = body["model"].partition(":")
        self.embedding_calls[body["model"]] = self.embedding_calls.get(body["model"], 0) + 1
        if kind == "fail-batch" and self.embedding_calls[body["model"]] >= int(arg.split("-")[0]):
            return web.json_response({"error": {"message": "embedding backend down"}}, status=500)
        dims = 32 if kind == "small" else 64
        data = [
            {"object": "embedding", "index": i, "embedding": bag_of_words(text, dims)}
            for i, text in enumerate(body["input"])
        ]
        usage = {"prompt_tokens": 1, "total_tokens": 1}
        return web.json_response(
            {"object": "list", "data": data, "model": body["model"], "usage": usage}
        )

    async def _ollama_embed(self, request: web.Request) -> web.Response:
        """Ollama's /api/embed, with the same bag-of-words vectors."""
        body = await request.json()
        if body["model"] == "missing":
            return web.json_response({"error": 'model "missing" not found'}, status=404)
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        return web.json_response(
            {"model": body["model"], "embeddings": [bag_of_words(t, 48) for t in texts]}
        )

    async def _anthropic(self, request: web.Request) -> web.StreamResponse:
        """Anthropic's Messages streaming format, as its documentation shows it."""
        body = await request.json()
        record = Record(body, dict(request.headers), time.monotonic())
        self.records.append(record)
        kind, _, arg = body["model"].partition(":")
        if kind == "status":
            status = int(arg)
            error_type = {
                401: "authentication_error",
                429: "rate_limit_error",
                529: "overloaded_error",
            }
            error = {
                "type": "error",
                "error": {"type": error_type.get(status, "api_error"), "message": f"mock {status}"},
            }
            return web.json_response(error, status=status)
        refusal = _anthropic_refusal(body["messages"])
        if refusal is not None:
            error = {
                "type": "error",
                "error": {"type": "invalid_request_error", "message": refusal},
            }
            return web.json_response(error, status=400)
        if kind == "slowstart":
            await asyncio.sleep(float(arg))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await response.prepare(request)

        async def event(name: str, data: dict[str, Any]) -> None:
            payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
            await response.write(f"event: {name}\ndata: {payload}\n\n".encode())

        if kind == "agent":
            calls, tokens = agent_turn(body["messages"], "tool")
        else:
            calls, tokens = [], answer_tokens(text_of_content(body["messages"][-1]["content"]))
        message = {
            "id": "msg_mock",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": body["model"],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 11, "output_tokens": 1},
        }
        try:
            await event("message_start", {"type": "message_start", "message": message})
            await event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            await event("ping", {"type": "ping"})
            for i, token in enumerate(tokens):
                if kind == "paced" and i:
                    await asyncio.sleep(float(arg))
                delta = {"type": "text_delta", "text": token}
                await event(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": delta},
                )
                record.last_token_at = time.monotonic()
                if kind == "overloaded" and i == 1:
                    error = {"type": "overloaded_error", "message": "Overloaded"}
                    await event("error", {"type": "error", "error": error})
                    await response.write_eof()
                    return response
            await event("content_block_stop", {"type": "content_block_stop", "index": 0})
            for index, (name, args) in enumerate(calls, 1):
                block = {
                    "type": "tool_use",
                    "id": f"toolu_{index}_{len(self.records)}",
                    "name": name,
                    "input": {},
                }
                await event(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": block},
                )
                text = json.dumps(args)
                for cut in range(0, len(text), 5):  # the arguments' JSON in many small pieces
                    delta = {"type": "input_json_delta", "partial_json": text[cut : cut + 5]}
                    await event(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": index, "delta": delta},
                    )
                await event("content_block_stop", {"type": "content_block_stop", "index": index})
            await event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": "tool_use" if calls else "end_turn",
                        "stop_sequence": None,
                    },
                    "usage": {"output_tokens": len(tokens)},
                },
            )
            if kind != "nostop":
                await event("message_stop", {"type": "message_stop"})
            await response.write_eof()
            record.completed = True
        except ConnectionResetError:
            record.closed_at = time.monotonic()
        return response

    async def _ollama(self, request: web.Request) -> web.StreamResponse:
        """Ollama's native /api/chat: one JSON object per line."""
        body = await request.json()
        record = Record(body, dict(request.headers), time.monotonic())
        self.records.append(record)
        kind, _, arg = body["model"].partition(":")
        if kind == "missing":
            return web.json_response(
                {"error": f'model "{body["model"]}" not found, try pulling it first'}, status=404
            )
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        if kind == "agent":
            calls, tokens = agent_turn(body["messages"], "tool")
            if calls:
                tool_calls = [{"function": {"name": n, "arguments": a}} for n, a in calls]
                line = {
                    "model": body["model"],
                    "created_at": "2026-11-29T00:00:00Z",
                    "message": {"role": "assistant", "content": "", "tool_calls": tool_calls},
                    "done": False,
                }
                await response.write(json.dumps(line).encode() + b"\n")
        else:
            tokens = answer_tokens(body["messages"][-1]["content"])

        def line(content: str, done: bool, **extra: Any) -> bytes:
            data = {
                "model": body["model"],
                "created_at": "2026-11-29T00:00:00.000000Z",
                "message": {"role": "assistant", "content": content},
                "done": done,
                **extra,
            }
            return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"

        try:
            for i, token in enumerate(tokens):
                if kind == "paced" and i:
                    await asyncio.sleep(float(arg))
                await response.write(line(token, False))
                record.last_token_at = time.monotonic()
                if kind == "midstream-error" and i == 1:
                    await response.write(
                        b'{"error":"an error was encountered while running the model"}\n'
                    )
                    await response.write_eof()
                    return response
            await response.write(
                line(
                    "",
                    True,
                    done_reason="stop",
                    total_duration=1,
                    prompt_eval_count=7,
                    eval_count=len(tokens),
                )
            )
            await response.write_eof()
            record.completed = True
        except ConnectionResetError:
            record.closed_at = time.monotonic()
        return response

    @staticmethod
    async def _write(response: web.StreamResponse, data: bytes, kind: str) -> None:
        if kind == "split" and len(data) > 20:
            # cut inside the bytes (inside a multi-byte character when there is one)
            cut = next(
                (i for i in range(len(data) // 2, len(data)) if data[i] >= 0x80), len(data) // 2
            )
            await response.write(data[: cut + 1])
            await asyncio.sleep(0.01)
            await response.write(data[cut + 1 :])
            return
        await response.write(data)
