"""Dual-stack fallback (RFC 8305) of the models' client's connections
(tailwinds.outbound.sockets): an IPv6 address that never answers does not hold the
request for the whole connect timeout, the IPv4 one is tried a moment later."""

from __future__ import annotations

import asyncio
import socket

import pytest
import uvloop

from tailwinds.outbound.sockets import connect_first, interleaved


def info(family: socket.AddressFamily, address: str, port: int) -> tuple:
    return (family, socket.SOCK_STREAM, 6, "", (address, port))


def test_families_alternate_in_the_resolvers_order() -> None:
    v6a, v6b = info(socket.AF_INET6, "2001:db8::1", 1), info(socket.AF_INET6, "2001:db8::2", 1)
    v4a, v4b = info(socket.AF_INET, "192.0.2.1", 1), info(socket.AF_INET, "192.0.2.2", 1)
    assert interleaved([v6a, v6b, v4a, v4b]) == [v6a, v4a, v6b, v4b]
    assert interleaved([v4a, v6a, v6b]) == [v4a, v6a, v6b]


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_an_ipv6_address_that_never_answers_falls_back_to_ipv4(loop: str) -> None:
    try:
        blackhole = socket.socket(socket.AF_INET6)
        blackhole.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with blackhole:
        blackhole.listen(0)  # and never accepts: once its backlog is full, SYNs go unanswered
        port = blackhole.getsockname()[1]
        fillers = []
        for _ in range(2):
            filler = socket.socket(socket.AF_INET6)
            filler.setblocking(False)
            filler.connect_ex(("::1", port))
            fillers.append(filler)

        async def main() -> None:
            accepted = asyncio.Event()
            server = await asyncio.start_server(lambda r, w: accepted.set(), "127.0.0.1", 0)
            v4_port = server.sockets[0].getsockname()[1]
            loop = asyncio.get_running_loop()
            infos = [info(socket.AF_INET6, "::1", port), info(socket.AF_INET, "127.0.0.1", v4_port)]
            # the IPv6 attempt would hang till the caller's timeout; the test's own bound
            # is far above the 0.25 s the fallback takes
            sock = await asyncio.wait_for(connect_first(loop, infos), 30)
            assert sock.family == socket.AF_INET
            await asyncio.wait_for(accepted.wait(), 30)
            sock.close()
            server.close()

        try:
            (uvloop.run if loop == "uvloop" else asyncio.run)(main())
        finally:
            for filler in fillers:
                filler.close()


def test_every_address_refused_raises_the_last_error() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            port = unused.getsockname()[1]
        infos = [info(socket.AF_INET, "127.0.0.1", port)] * 2
        with pytest.raises(ConnectionRefusedError):
            await connect_first(loop, infos)

    asyncio.run(main())
