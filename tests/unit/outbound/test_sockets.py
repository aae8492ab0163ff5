"""The checked connection (outbound/sockets.py) of the model and embedding servers'
client (tailwinds.wire) under an address policy: checked on the resolved address it
connects to."""

from __future__ import annotations

import asyncio

import pytest

from tailwinds.outbound.addresses import PUBLIC, AddressPolicy, Refused
from tailwinds.wire import WireClient
from tests.unit.outbound.test_fetch import Server, ok

SERVICES = AddressPolicy(private=True)


def test_configured_servers_may_be_private_but_never_metadata() -> None:
    async def main() -> None:
        async with Server(ok(b"{}")) as server:
            resp = await WireClient(policy=SERVICES).post(
                f"http://localhost:{server.port}/v1", {}, b"{}", 5
            )
            assert await resp.read_all(100) == b"{}"
            resp.close()
            with pytest.raises(Refused, match="loopback"):
                await WireClient(policy=PUBLIC).post(server.url, {}, b"{}", 5)
            assert server.connections == 1
        with pytest.raises(Refused, match="cloud metadata"):
            await WireClient(policy=SERVICES).post("http://169.254.169.254/v1", {}, b"", 5)

    asyncio.run(main())
