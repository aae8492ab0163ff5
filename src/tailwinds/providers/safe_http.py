"""HTTP for tools that reach URLs a model chose: only allow-listed URLs, never a private,
loopback, link-local or cloud-metadata address, checked on the addresses the name resolves
to (the ones the connection then uses) and again at every redirect."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

MAX_REDIRECTS = 3
METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class Refused(Exception):
    """The URL or the address it leads to is not one a tool may reach."""


def public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and ip not in METADATA and not ip.is_multicast


def check_url(url: str, allow_list: list[str], public_only: bool = True) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused(f"{url!r} is not an http(s) URL")
    if parts.username or parts.password:
        raise Refused("URLs with credentials in them are refused")
    if not any(url.startswith(prefix) for prefix in allow_list):
        raise Refused(f"{url} is not on this tool's allow-list")
    if not public_only:
        return url
    try:
        literal = ipaddress.ip_address(parts.hostname.strip("[]"))
    except ValueError:
        return url
    if not public_address(str(literal)):
        raise Refused(f"{parts.hostname} is not a public address")
    return url


class PublicOnlyResolver(AbstractResolver):
    """Resolves like the system, then refuses the name if any address is not public."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, family=family)
        except socket.gaierror as exc:
            raise OSError(f"cannot resolve {host}: {exc}") from exc
        results: list[ResolveResult] = []
        for fam, _, proto, _, sockaddr in infos:
            address = str(sockaddr[0])
            if not public_address(address):
                raise Refused(f"{host} resolves to {address}, which is not a public address")
            results.append(
                {
                    "hostname": host,
                    "host": address,
                    "port": int(sockaddr[1]),
                    "family": fam,
                    "proto": proto,
                    "flags": socket.AI_NUMERICHOST,
                }
            )
        return results

    async def close(self) -> None:
        pass


@dataclass(slots=True)
class Fetched:
    url: str
    status: int
    text: str
    truncated: bool
    data: bytes = b""
    content_type: str = ""


async def fetch(
    url: str,
    *,
    allow_list: list[str],
    method: str = "GET",
    body: Any = None,
    headers: dict[str, str] | None = None,
    max_bytes: int = 100_000,
    timeout_s: float = 10,
    public_only: bool = True,
) -> Fetched:
    """One request, following at most three redirects, each hop checked like the first.
    `public_only=False` (an operator's explicit choice) lets it reach private addresses."""
    connector = aiohttp.TCPConnector(
        resolver=PublicOnlyResolver() if public_only else None, use_dns_cache=False
    )
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, trust_env=False
    ) as session:
        for _ in range(MAX_REDIRECTS + 1):
            check_url(url, allow_list, public_only)
            try:
                async with session.request(
                    method, url, json=body, headers=headers, allow_redirects=False
                ) as resp:
                    location = resp.headers.get("Location")
                    if resp.status in (301, 302, 303, 307, 308) and location:
                        url = urljoin(url, location)
                        if resp.status == 303:
                            method, body = "GET", None
                        continue
                    raw = await resp.content.read(max_bytes + 1)
                    text = raw[:max_bytes].decode(resp.charset or "utf-8", errors="replace")
                    return Fetched(
                        url,
                        resp.status,
                        text,
                        len(raw) > max_bytes,
                        raw[:max_bytes],
                        resp.content_type,
                    )
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, Refused):
                    raise exc.os_error from exc
                raise
        raise Refused(f"more than {MAX_REDIRECTS} redirects")
