"""Connections for a client of our own (tailwinds.wire; it wraps the socket in TLS and its
protocol, tailwinds.wire.connect), checked like aiohttp's, with
dual-stack fallback ("Happy Eyeballs", RFC 8305): the addresses a name resolves to are
tried IPv6 and IPv4 interleaved, the next one started when the last has not connected
within HAPPY_EYEBALLS_DELAY_S, the first to connect used and the others closed. Without
it a host whose AAAA record leads nowhere would cost each request the whole connect
timeout."""

from __future__ import annotations

import asyncio
import socket
from asyncio.staggered import staggered_race
from collections.abc import Callable, Sequence
from typing import Any

from tailwinds.outbound.addresses import AddressPolicy, Refused

# RFC 8305 §5's recommended "Connection Attempt Delay" (asyncio's happy_eyeballs_delay)
HAPPY_EYEBALLS_DELAY_S = 0.25

AddrInfo = tuple[Any, ...]  # (family, type, proto, canonname, sockaddr), as getaddrinfo


async def resolve_checked(
    loop: asyncio.AbstractEventLoop, host: str, port: int, policy: AddressPolicy | None
) -> list[AddrInfo]:
    """`host`'s addresses, every one checked against `policy` (`Refused` names the first
    refused); None: unchecked. Raises `OSError` (socket.gaierror) when it does not resolve."""
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if policy is not None:
        for *_, sockaddr in infos:
            address = str(sockaddr[0])
            reason = policy.refusal(address)
            if reason is not None:
                raise Refused(reason if address == host else f"{host}: {reason}")
    return list(infos)


def interleaved(infos: Sequence[AddrInfo]) -> list[AddrInfo]:
    """The resolver's order kept within each family, the families alternated starting with
    the resolver's first (RFC 8305 §4)."""
    families: dict[int, list[AddrInfo]] = {}
    for info in infos:
        families.setdefault(info[0], []).append(info)
    queues = list(families.values())
    out: list[AddrInfo] = []
    while any(queues):
        for queue in queues:
            if queue:
                out.append(queue.pop(0))
    return out


async def connect_first(
    loop: asyncio.AbstractEventLoop,
    infos: Sequence[AddrInfo],
    delay_s: float = HAPPY_EYEBALLS_DELAY_S,
) -> socket.socket:
    """A connected non-blocking socket to the first of `infos` (interleaved by family)
    that answers, attempts started `delay_s` apart or as soon as the last one failed.
    Raises the last attempt's `OSError` when none connects."""
    ordered = interleaved(infos)
    if not ordered:
        raise OSError("the name resolves to no address")
    opened: list[socket.socket] = []

    def attempt(info: AddrInfo) -> Callable[[], Any]:
        async def connect() -> socket.socket:
            family, _, proto, _, sockaddr = info
            sock = socket.socket(family, socket.SOCK_STREAM, proto)
            opened.append(sock)
            sock.setblocking(False)
            await loop.sock_connect(sock, sockaddr)
            return sock

        return connect

    if len(ordered) == 1:  # no race to run: spare its tasks
        try:
            return await attempt(ordered[0])()
        except BaseException:
            for sock in opened:
                sock.close()
            raise
    winner: socket.socket | None = None
    try:
        winner, _, errors = await staggered_race([attempt(i) for i in ordered], delay_s)
    finally:
        for sock in opened:  # the losers, and every socket when none won
            if sock is not winner:
                sock.close()
    if winner is None:
        raise next((e for e in reversed(errors) if isinstance(e, OSError)), None) or OSError(
            "no address answered"
        )
    return winner
