"""Outbound requests against raw local servers: the address checked when the connection
is made (names, Unicode literals, redirects), and every answer read within bounds."""

from __future__ import annotations

import asyncio
import gzip
import socket
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from tailwinds.errors import FlowError
from tailwinds.outbound import PUBLIC, AddressPolicy, Refused, Unreachable, fetch
from tailwinds.outbound.addresses import parse_networks
from tailwinds.outbound.client import GuardedConnector, guarded_session
from tailwinds.providers.chroma import ChromaCollection

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """A raw HTTP server on a loopback address; counts the connections it accepted."""

    def __init__(self, answer: bytes | Callable[[bytes], bytes], host: str = "127.0.0.1"):
        self.answer = answer
        self.host = host
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        self.server = await asyncio.start_server(self._handle, self.host, 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            answer = self.answer(head) if callable(self.answer) else self.answer
            writer.write(answer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def ok(body: bytes, *headers: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n" % len(body) + b"".join(
        h + b"\r\n" for h in headers
    )
    return head + b"Connection: close\r\n\r\n" + body


LOOPBACK_ONLY = AddressPolicy(networks=parse_networks("127.0.0.2"))


def test_unicode_ip_literals_are_checked_as_the_literal_they_become() -> None:
    async def main() -> None:
        async with Server(ok(b"secret")) as server:
            for host in ("\uff11\uff12\uff17.\uff10.\uff10.\uff11", "127\u30020\u30020\u30021"):
                with pytest.raises(Refused, match=r"127\.0\.0\.1 is a loopback address"):
                    await fetch(f"http://{host}:{server.port}/", policy=PUBLIC)
            assert server.connections == 0

    asyncio.run(main())


def test_a_name_is_checked_on_what_it_resolves_to() -> None:
    async def main() -> None:
        async with Server(ok(b"secret")) as server:
            with pytest.raises(Refused, match=r"localhost: 127\.0\.0\.1 is a loopback address"):
                await fetch(f"http://localhost:{server.port}/", policy=PUBLIC)
            assert server.connections == 0

    asyncio.run(main())


class Rebinding(AbstractResolver):
    """A DNS server that answers an allowed address, then a refused one."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers
        self.asked = 0

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        address = self.answers[min(self.asked, len(self.answers) - 1)]
        self.asked += 1
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        pass


def test_each_connection_uses_the_resolution_it_checked() -> None:
    """Rebinding: the name first resolves to an allowed address, then to loopback. The
    first connection goes to the allowed address it was checked on; the second is
    refused before any connection, however the name is spelled."""

    async def main() -> None:
        async with Server(ok(b"allowed"), host="127.0.0.2") as allowed, Server(ok(b"no")) as secret:
            resolver = Rebinding(["127.0.0.2", "127.0.0.1"])
            connector = GuardedConnector(
                LOOPBACK_ONLY, resolver=resolver, use_dns_cache=False, force_close=True
            )
            async with aiohttp.ClientSession(connector=connector) as session:
                first = await session.get(f"http://rebind.test:{allowed.port}/")
                assert await first.text() == "allowed"
                with pytest.raises(Refused, match=r"rebind\.test: 127\.0\.0\.1 is a loopback"):
                    await session.get(f"http://rebind.test:{secret.port}/")
            assert resolver.asked == 2 and secret.connections == 0

    asyncio.run(main())


def test_redirects_to_loopback_are_refused_at_the_hop() -> None:
    async def main() -> None:
        async with Server(ok(b"secret")) as secret:
            for target in (
                f"http://127.0.0.1:{secret.port}/key",
                f"http://\uff11\uff12\uff17.\uff10.\uff10.\uff11:{secret.port}/key",
                f"http://localhost:{secret.port}/key",
            ):
                redirect = b"HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n"
                answer = redirect % target.encode()
                async with Server(answer, host="127.0.0.2") as first:
                    with pytest.raises(Refused, match="loopback"):
                        await fetch(first.url + "/start", policy=LOOPBACK_ONLY)
                    assert first.connections == 1
            assert secret.connections == 0

    asyncio.run(main())


def test_headers_stay_with_the_first_origin() -> None:
    seen: list[bytes] = []

    def record(head: bytes) -> bytes:
        seen.append(head)
        return ok(b"done")

    async def main() -> None:
        async with Server(record, host="127.0.0.2") as other:
            answer = b"HTTP/1.1 307 Temporary\r\nLocation: %s/x\r\nContent-Length: 0\r\n\r\n"
            async with Server(answer % other.url.encode(), host="127.0.0.2") as first:
                got = await fetch(first.url, policy=LOOPBACK_ONLY, headers={"X-Token": "tok-1"})
        assert got.text == "done" and b"tok-1" not in seen[0]

    asyncio.run(main())


def test_an_oversized_body_is_cut_at_max_bytes() -> None:
    async def main() -> None:
        async with Server(ok(b"x" * 5_000_000), host="127.0.0.2") as server:
            got = await fetch(server.url, policy=LOOPBACK_ONLY, max_bytes=1000)
        assert got.truncated and len(got.data) == 1000

    asyncio.run(main())


def test_a_gzip_bomb_is_inflated_only_as_far_as_it_is_read() -> None:
    bomb = gzip.compress(b"\0" * 200_000_000, compresslevel=9)  # 200 MB in ~200 KB

    async def main() -> Any:
        async with Server(ok(bomb, b"Content-Encoding: gzip"), host="127.0.0.2") as server:
            tracemalloc.start()
            try:
                got = await fetch(server.url, policy=LOOPBACK_ONLY, max_bytes=10_000)
                return got, tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()

    got, peak = asyncio.run(main())
    assert got.truncated and len(got.data) == 10_000
    assert peak < 30_000_000, f"peak {peak} bytes"


@pytest.mark.parametrize(
    "head",
    [
        b"".join(b"X-Flood-%d: y\r\n" % n for n in range(10_000)),
        b"X-Long: " + b"y" * 100_000 + b"\r\n",
    ],
    ids=["many headers", "one long header"],
)
def test_an_oversized_head_is_refused(head: bytes) -> None:
    answer = b"HTTP/1.1 200 OK\r\n" + head + b"Content-Length: 2\r\n\r\nok"

    async def main() -> None:
        async with Server(answer, host="127.0.0.2") as server:
            with pytest.raises(Unreachable, match="not acceptable HTTP"):
                await fetch(server.url, policy=LOOPBACK_ONLY)

    asyncio.run(main())


def test_a_silent_server_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up

    async def main() -> None:
        server = await asyncio.start_server(silent, "127.0.0.2", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            with pytest.raises(Unreachable, match="did not answer in time"):
                await fetch(f"http://127.0.0.2:{port}/", policy=LOOPBACK_ONLY, timeout_s=0.3)
        finally:
            server.close()

    asyncio.run(main())


def test_chroma_reads_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tailwinds.providers.chroma.MAX_ANSWER_BYTES", 1000)
    bomb = gzip.compress(b"[" + b" " * 50_000_000 + b"]")

    async def main() -> None:
        for answer in (ok(b"[" + b"0," * 5000 + b"0]"), ok(bomb, b"Content-Encoding: gzip")):
            async with (
                Server(answer) as server,
                guarded_session(AddressPolicy(private=True)) as http,
            ):
                chroma = ChromaCollection(http, server.url, "c")
                with pytest.raises(FlowError, match="longer than 1000 bytes"):
                    await chroma.id()

    asyncio.run(main())


def test_chroma_on_a_metadata_address_is_refused() -> None:
    async def main() -> None:
        async with guarded_session(AddressPolicy(private=True)) as http:
            chroma = ChromaCollection(http, "http://169.254.169.254:8000", "c")
            with pytest.raises(FlowError, match="cloud metadata"):
                await chroma.id()

    asyncio.run(main())
