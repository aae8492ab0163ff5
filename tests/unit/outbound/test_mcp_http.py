"""The MCP SDK's HTTP client under the policy: addresses checked on connect, answers
capped, compressed answers refused."""

from __future__ import annotations

import asyncio
import gzip

import httpx2
import pytest

from tailwinds.outbound.addresses import PUBLIC, AddressPolicy, Refused, parse_networks
from tailwinds.outbound.mcp_http import GuardedTransport, guarded_client
from tests.unit.outbound.test_fetch import Server, ok

LOOPBACK = AddressPolicy(networks=parse_networks("127.0.0.0/8"))


def test_loopback_is_refused_by_name_and_by_unicode_literal() -> None:
    async def main() -> None:
        async with Server(ok(b"{}")) as server, guarded_client(PUBLIC) as client:
            with pytest.raises(Refused, match="loopback"):
                await client.post(f"http://localhost:{server.port}/mcp", json={})
            # httpx2's own IDNA refuses the full-width literal before we see it
            fullwidth = "\uff11\uff12\uff17.\uff10.\uff10.\uff11"
            with pytest.raises((Refused, httpx2.InvalidURL)):
                await client.post(f"http://{fullwidth}:{server.port}/mcp", json={})
            assert server.connections == 0

    asyncio.run(main())


def test_answers_are_capped_and_compression_refused() -> None:
    async def main() -> None:
        async with Server(ok(b"x" * 5000)) as server:
            transport = GuardedTransport(LOOPBACK, max_bytes=1000)
            async with httpx2.AsyncClient(transport=transport) as client:
                with pytest.raises(httpx2.RemoteProtocolError, match="longer than 1000"):
                    await client.get(server.url)
        async with Server(ok(b"{}")) as server, guarded_client(LOOPBACK) as client:
            assert (await client.get(server.url)).text == "{}"
        bomb = ok(gzip.compress(b"\0" * 1_000_000), b"Content-Encoding: gzip")
        async with Server(bomb) as server, guarded_client(LOOPBACK) as client:
            with pytest.raises(httpx2.DecodingError, match="unasked"):
                await client.get(server.url)

    asyncio.run(main())


def test_an_mcp_session_to_loopback_is_refused() -> None:
    from tailwinds.providers.mcp_sessions import McpServer, McpSessions

    async def main() -> None:
        sessions = McpSessions(connect_timeout_s=20)
        try:
            async with Server(ok(b"{}")) as server:
                with pytest.raises(ConnectionError, match="loopback"):
                    await sessions.list_tools(McpServer(url=f"http://localhost:{server.port}/m"))
                assert server.connections == 0
        finally:
            await sessions.close()

    asyncio.run(main())
