"""A connection for a client of our own (tailwinds.wire), checked like aiohttp's."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable

from tailwinds.outbound.addresses import AddressPolicy


async def create_checked_connection(
    loop: asyncio.AbstractEventLoop,
    protocol_factory: Callable[[], asyncio.Protocol],
    host: str,
    port: int,
    policy: AddressPolicy,
    tls: ssl.SSLContext | None,
) -> tuple[asyncio.Transport, asyncio.Protocol]:
    """`loop.create_connection`, but resolved once, every address checked against
    `policy` (`Refused` otherwise), and connected to a checked one: no second lookup for a
    rebinding DNS server to answer. TLS still verifies `host`. Raises `OSError` when no
    address answers."""
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    for *_, sockaddr in infos:
        policy.check(str(sockaddr[0]))
    error: OSError | None = None
    for family, _, proto, _, sockaddr in infos:
        sock = socket.socket(family, socket.SOCK_STREAM, proto)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, sockaddr)
            return await loop.create_connection(
                protocol_factory, sock=sock, ssl=tls, server_hostname=host if tls else None
            )
        except OSError as exc:
            sock.close()
            error = exc
        except BaseException:
            sock.close()
            raise
    raise error or OSError(f"{host} resolves to no address")
