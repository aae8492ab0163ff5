"""The aiohttp requests (tools, URL upserts) and the MCP SDK's client through a real
proxy (proxy.py): Basic credentials from the proxy URL, and the destination still checked
against the address policy while the proxy's own address is not."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tailwinds.outbound.addresses import PUBLIC, AddressPolicy, Refused, parse_networks
from tailwinds.outbound.fetch import fetch
from tailwinds.outbound.mcp_http import guarded_client
from tailwinds.outbound.proxies import ProxyRules, parse_proxy
from tests.forward_proxy import forward_proxy
from tests.unit.outbound.test_fetch import Server, ok

LOOPBACK = AddressPolicy(networks=parse_networks("127.0.0.0/8"))


def through(port: int, credentials: str) -> ProxyRules:
    proxy = parse_proxy(f"http://{credentials}@127.0.0.1:{port}")
    return ProxyRules(proxy, proxy)


def test_fetch_and_mcp_go_through_the_proxy_and_still_check_the_destination(
    tmp_path: Path,
) -> None:
    async def main(port: int) -> None:
        good, bad = through(port, "tw:pa%40ss"), through(port, "tw:nope")
        async with Server(ok(b"{}")) as server:
            page = await fetch(server.url + "/x", policy=LOOPBACK, proxies=good)
            assert (page.status, page.text) == (200, "{}")
            assert server.connections == 1
            # a plain request: the proxy's refusal is its answer
            assert (await fetch(server.url + "/x", policy=LOOPBACK, proxies=bad)).status == 407
            with pytest.raises(Refused, match="loopback"):
                await fetch(server.url + "/x", policy=PUBLIC, proxies=good)

            async with guarded_client(LOOPBACK, good) as client:
                assert (await client.get(server.url + "/mcp")).text == "{}"
            async with guarded_client(LOOPBACK, bad) as client:
                assert (await client.get(server.url + "/mcp")).status_code == 407
            async with guarded_client(PUBLIC, good) as client:
                with pytest.raises(Refused, match="loopback"):
                    await client.get(server.url + "/mcp")
            assert server.connections == 2  # the refused ones never reached it

    with forward_proxy(tmp_path, "tw:pa@ss") as port:
        asyncio.run(main(port))
