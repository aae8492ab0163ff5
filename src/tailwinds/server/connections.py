"""How many connections the server holds, in all and per client address, and which of
them could be closed to make room: those waiting for a request head (new, slow, or idle
between requests), oldest first. A connection that is running a request is never
chosen.

At a cap, a new connection closes the oldest waiting one in its scope (its own address,
or all); when every connection there is busy, the new one is refused. So a flood of
half-open connections (slowloris) only ever displaces other half-open ones: a client
that sends its head at once is served, and the file descriptors stay within bounds."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Protocol


class Connection(Protocol):
    client_address: str

    def evict(self) -> None: ...


class ConnectionTable:
    def __init__(
        self, max_total: int, max_per_client: int, unlimited: Callable[[str], bool]
    ) -> None:
        """`max_per_client` 0: no per-address cap. `unlimited(address)`: addresses with no
        per-address cap (loopback and trusted proxies, which carry many clients)."""
        self.max_total = max_total
        self.max_per_client = max_per_client
        self.unlimited = unlimited
        self.total = 0
        self.per_client: dict[str, int] = {}
        self.waiting: dict[Connection, None] = {}  # insertion order: oldest first

    def admit(self, conn: Connection) -> bool:
        """Count a new connection, closing a waiting one to make room if a cap is reached;
        False (not counted) when there is no room."""
        address = conn.client_address
        capped = self.max_per_client > 0 and not self.unlimited(address)
        full = capped and self.per_client.get(address, 0) >= self.max_per_client
        if full and not self._evict_oldest(address):
            return False
        if self.total >= self.max_total and not self._evict_oldest(None):
            return False
        self.total += 1
        self.per_client[address] = self.per_client.get(address, 0) + 1
        self.waiting[conn] = None
        return True

    def release(self, conn: Connection) -> None:
        """The connection is gone (or closing): uncount it. Once per admitted connection."""
        self.waiting.pop(conn, None)
        address = conn.client_address
        left = self.per_client.get(address, 0) - 1
        if left > 0:
            self.per_client[address] = left
        else:
            self.per_client.pop(address, None)
        self.total -= 1

    def busy(self, conn: Connection) -> None:
        self.waiting.pop(conn, None)

    def idle(self, conn: Connection) -> None:
        self.waiting.pop(conn, None)
        self.waiting[conn] = None  # to the end: now the newest waiting

    def _evict_oldest(self, address: str | None) -> bool:
        victim = next(
            (c for c in self.waiting if address is None or c.client_address == address), None
        )
        if victim is None:
            return False
        victim.evict()  # releases it at once
        return True


def uncapped_addresses(trusted_proxies: str) -> Callable[[str], bool]:
    """Loopback, and the proxies of TAILWINDS_TRUSTED_PROXIES (addresses or networks):
    each carries the connections of many clients, so no per-address cap applies."""
    entries = [p.strip() for p in trusted_proxies.split(",") if p.strip()]
    every = "*" in entries  # uvicorn's "believe everyone"
    networks = [ipaddress.ip_network(p, strict=False) for p in entries if p != "*"]

    def uncapped(address: str) -> bool:
        if every:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False  # a Unix socket's peer has no address: counted as one client
        return ip.is_loopback or any(ip in network for network in networks)

    return uncapped
