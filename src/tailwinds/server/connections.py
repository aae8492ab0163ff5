"""How many connections the server holds, in all and per client, and which of them could
be closed to make room: those waiting for a request head (new, slow, or idle between
requests) or still sending a request body, oldest first. A connection whose request is
complete (being answered, a stream) is never chosen.

A client is an IPv4 address, or an IPv6 network of TAILWINDS_CLIENT_PREFIX_V6 bits (a /64
by default: what one subscriber is given, RFC 6177), so one host cannot pass the
per-client cap by rotating addresses in its own network.

At a cap, a new connection closes the oldest waiting one in its scope (its own client,
or all); when every connection there is busy, the new one is refused. So a flood of
half-open connections (slowloris, heads or bodies) only ever displaces other half-open
ones: a client that sends its request at once is served, and the file descriptors stay
within bounds."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Protocol


class Connection(Protocol):
    client_address: str

    def evict(self) -> None: ...


def client_key(address: str, prefix_v4: int = 32, prefix_v6: int = 64) -> str:
    """The client an address counts as: `203.0.113.7` (IPv4, exact at 32), or its IPv6
    network, `2001:db8:1:2::/64`; an IPv4-mapped IPv6 address counts as its IPv4 one.
    Anything else (a Unix socket's empty peer) is its own key."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = prefix_v4 if ip.version == 4 else prefix_v6
    if prefix >= ip.max_prefixlen:
        return str(ip)
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


class ConnectionTable:
    def __init__(
        self,
        max_total: int,
        max_per_client: int,
        unlimited: Callable[[str], bool],
        key: Callable[[str], str] = client_key,
    ) -> None:
        """`max_per_client` 0: no per-client cap. `unlimited(address)`: addresses with no
        per-client cap (loopback and trusted proxies, which carry many clients).
        `key(address)`: the client an address counts as (see `client_key`)."""
        self.max_total = max_total
        self.max_per_client = max_per_client
        self.unlimited = unlimited
        self.key = key
        self.total = 0
        self.per_client: dict[str, int] = {}  # client key -> connections
        self.keys: dict[Connection, str] = {}
        self.waiting: dict[Connection, None] = {}  # insertion order: oldest first

    def admit(self, conn: Connection) -> bool:
        """Count a new connection, closing a waiting one to make room if a cap is reached;
        False (not counted) when there is no room."""
        address = conn.client_address
        client = self.key(address)
        capped = self.max_per_client > 0 and not self.unlimited(address)
        full = capped and self.per_client.get(client, 0) >= self.max_per_client
        if full and not self._evict_oldest(client):
            return False
        if self.total >= self.max_total and not self._evict_oldest(None):
            return False
        self.total += 1
        self.per_client[client] = self.per_client.get(client, 0) + 1
        self.keys[conn] = client
        self.waiting[conn] = None
        return True

    def release(self, conn: Connection) -> None:
        """The connection is gone (or closing): uncount it. Once per admitted connection."""
        self.waiting.pop(conn, None)
        client = self.keys.pop(conn, None)
        if client is None:
            return
        left = self.per_client.get(client, 0) - 1
        if left > 0:
            self.per_client[client] = left
        else:
            self.per_client.pop(client, None)
        self.total -= 1

    def busy(self, conn: Connection) -> None:
        """Its request is complete and being answered: never evicted until `idle`."""
        self.waiting.pop(conn, None)

    def idle(self, conn: Connection) -> None:
        """Its answer is done: it waits for the next head, now the newest waiting."""
        self.waiting.pop(conn, None)
        self.waiting[conn] = None

    def _evict_oldest(self, client: str | None) -> bool:
        victim = next(
            (c for c in self.waiting if client is None or self.keys.get(c) == client), None
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
