"""A connected socket to a model server, directly or through an HTTP proxy.

Direct: the name resolved once, every address checked against the address policy, the
first to answer used (tailwinds.outbound.sockets: dual-stack fallback). Through a proxy:
the destination is still resolved here and checked against the policy (the proxy would
otherwise reach what the policy refuses: a cloud metadata address, a private network).
A name that does not resolve here (a network whose DNS only the proxy sees) is left to
the proxy for the operator's own servers (a policy that allows private addresses), and
refused for caller-steered requests, since where it leads cannot be checked.
The proxy's own address is the operator's setting and is not checked. An https
destination goes through a CONNECT tunnel (RFC 9110 §9.3.6), its TLS made with the
destination, end to end.
"""

from __future__ import annotations

import asyncio
import socket

from tailwinds.outbound.addresses import AddressPolicy, Refused
from tailwinds.outbound.proxies import Proxy
from tailwinds.outbound.sockets import connect_first, resolve_checked
from tailwinds.wire.errors import WireError, WireTooLarge

MAX_TUNNEL_HEAD_BYTES = 16 * 1024  # the proxy's answer to CONNECT


async def open_socket(
    loop: asyncio.AbstractEventLoop,
    scheme: str,
    host: str,
    port: int,
    proxy: Proxy | None,
    policy: AddressPolicy | None,
) -> socket.socket:
    """A connected non-blocking socket on which to speak HTTP to `host` (TLS not begun):
    to the server itself, to the proxy (http), or through the proxy's tunnel (https).
    Raises `Refused`, `OSError`, or `WireError` (the proxy refused the tunnel)."""
    if proxy is None:
        return await connect_first(loop, await resolve_checked(loop, host, port, policy))
    if policy is not None:
        try:
            await resolve_checked(loop, host, port, policy)
        except socket.gaierror as exc:
            # an operator-configured server's name may be known to the proxy's DNS alone
            if not policy.private:
                raise Refused(
                    f"{host} does not resolve here, so where the proxy would take it cannot "
                    f"be checked ({exc.strerror})"
                ) from None
    sock = await connect_first(loop, await resolve_checked(loop, proxy.host, proxy.port, None))
    if scheme != "https":
        return sock
    try:
        await _tunnel(loop, sock, host, port, proxy)
    except BaseException:
        sock.close()
        raise
    return sock


async def _tunnel(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, host: str, port: int, proxy: Proxy
) -> None:
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    if proxy.authorization is not None:
        lines.append(f"Proxy-Authorization: {proxy.authorization}")
    await loop.sock_sendall(sock, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    head = b""
    while b"\r\n\r\n" not in head:
        data = await loop.sock_recv(sock, 4096)
        if not data:
            raise WireError(f"the proxy {proxy.url} closed the connection instead of a tunnel")
        head += data
        if len(head) > MAX_TUNNEL_HEAD_BYTES:
            raise WireTooLarge(f"the proxy {proxy.url} answered CONNECT with too long a head")
    status_line = head.partition(b"\r\n")[0]
    parts = status_line.split(b" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    if not 200 <= status < 300:
        said = status_line.decode("latin-1", "replace")[:200]
        hint = " (proxy authentication: check the credentials in its URL)" if status == 407 else ""
        raise WireError(f"the proxy {proxy.url} refused a tunnel to {authority}: {said}{hint}")
    if head.index(b"\r\n\r\n") + 4 != len(head):
        # bytes after the head would be read as the server's TLS: not a tunnel to trust
        raise WireError(f"the proxy {proxy.url} sent bytes after its answer to CONNECT")
