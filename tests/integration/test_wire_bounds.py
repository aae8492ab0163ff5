"""The models' HTTP client keeps what a model server sends bounded: a compressed body is
inflated step by step as it is read and refused past its total, and the answer's head is
refused past its size or header count, against a raw TCP server."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from tailwinds import wire
from tailwinds.wire import WireClient, WireTooLarge
from tests.integration.test_wire_client import Server


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    if request.param == "uvloop":
        return uvloop.run
    return asyncio.run


def gzipped(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    return packer.compress(data) + packer.flush()


def answer(head: bytes, body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\n" + head + b"Content-Length: %d\r\n\r\n" % len(body) + body


def serve(response: bytes) -> Server:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(response)
        await writer.drain()
        await reader.read()

    server = Server(handler)
    return server


def test_a_compressed_body_is_inflated_one_step_per_read(run: Callable[..., Any]) -> None:
    plain = b"data: x\n\n" * 100_000  # 900 KB from ~2 KB of gzip
    response = answer(b"Content-Encoding: gzip\r\n", gzipped(plain))

    async def main() -> None:
        async with serve(response) as server:
            client = WireClient()
            resp = await client.post(server.url, {}, b"{}", 5)
            sizes = []
            while chunk := await resp.read():
                sizes.append(len(chunk))
            resp.close()
            client.close()
        assert sum(sizes) == len(plain)
        assert max(sizes) <= wire.INFLATE_STEP_BYTES
        assert len(sizes) >= len(plain) // wire.INFLATE_STEP_BYTES

    run(main())


def test_a_compressed_body_past_its_total_is_refused(run: Callable[..., Any]) -> None:
    bomb = gzipped(b"\n" * (8 << 20))  # 8 MB of newlines in ~8 KB
    response = answer(b"Content-Encoding: gzip\r\n", bomb)

    async def main() -> None:
        async with serve(response) as server:
            client = WireClient(max_inflated_bytes=1 << 20)
            resp = await client.post(server.url, {}, b"{}", 5)
            read = 0
            with pytest.raises(WireTooLarge, match="compressed answer of more than 1048576"):
                while chunk := await resp.read():
                    read += len(chunk)
            resp.close()
            client.close()
        assert read <= 1 << 20

    run(main())


@pytest.mark.parametrize(
    "head",
    [
        b"Content-Type: text/event-stream\r\n" * 60_000,  # a flood of one kept header
        b"X-Filler: a\r\n" * (wire.MAX_HEADERS + 1),  # more headers than allowed, all small
        b"X-Huge: " + b"a" * (wire.MAX_HEAD_BYTES + 1) + b"\r\n",  # one header too long
    ],
    ids=["repeated", "count", "size"],
)
def test_an_oversized_head_is_refused(run: Callable[..., Any], head: bytes) -> None:
    async def main() -> None:
        async with serve(answer(head, b"data: 1\n\n")) as server:
            client = WireClient()
            with pytest.raises(WireTooLarge):
                await client.post(server.url, {}, b"{}", 5)
            client.close()

    run(main())


def test_repeated_headers_are_joined(run: Callable[..., Any]) -> None:
    head = b"Retry-After: 1\r\n" + b"Retry-After: 2\r\n" * 50 + b"X-Other: y\r\n"

    async def main() -> None:
        async with serve(answer(head, b"ok")) as server:
            client = WireClient()
            resp = await client.post(server.url, {}, b"{}", 5)
            assert resp.headers["retry-after"] == "1" + ", 2" * 50
            assert await resp.read_all(10) == b"ok"
            resp.close()
            client.close()

    run(main())


def test_a_provider_refuses_an_oversized_head_without_retrying(run: Callable[..., Any]) -> None:
    from tailwinds.errors import ProviderBadResponse
    from tailwinds.messages import ChatMessage
    from tailwinds.providers.base import ChatRequest, ProviderLimits
    from tailwinds.providers.openai_chat import OpenAIChatProvider

    head = b"Content-Type: text/event-stream\r\n" * 5_000

    async def main() -> None:
        async with serve(answer(head, b"data: [DONE]\n\n")) as server:
            client = WireClient()
            limits = ProviderLimits(retries=2, retry_backoff_s=0)
            provider = OpenAIChatProvider(client, server.url.split("/v1")[0] + "/v1", None, limits)
            request = ChatRequest(model="m", messages=[ChatMessage("user", "hi")])
            with pytest.raises(ProviderBadResponse, match="more than 128 headers"):
                async for _ in provider.stream_chat(request):
                    pass
            client.close()
        assert server.connections == 1

    run(main())
