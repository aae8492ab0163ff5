"""The HTTP client the MCP SDK talks through (httpx2, from `mcp`), under the same address
policy as our own requests: the name resolved here, every address checked, the
connection made to a checked address (TLS still verifies the name), and each answer
capped in size.

Through a proxy (tailwinds.outbound.proxies, the same rules as every outbound request) the
endpoint's name is resolved and checked here, then the request goes to the proxy (its own
address, the operator's setting, unchecked). The SDK follows a redirect only within the
endpoint's origin. The answer's head is
bounded by h11 (httpcore2's parser refuses a head over 100 KiB), its body here.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterable
from typing import Any

import anyio
import httpcore2
import httpx2

from tailwinds.outbound.addresses import AddressPolicy, Refused
from tailwinds.outbound.proxies import DIRECT, Proxy, ProxyRules

# one JSON-RPC answer, or all the events of one stream: a tool result a model could read
# is far smaller
MAX_ANSWER_BYTES = 16 * 1024 * 1024


class GuardedBackend(httpcore2.AsyncNetworkBackend):
    """Resolves, checks every address, then connects to a checked one."""

    def __init__(self, policy: AddressPolicy) -> None:
        self.policy = policy
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore2's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        addresses = await checked_addresses(host, port, self.policy, timeout)
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore2.ConnectError as exc:
                error = exc
        raise error or httpcore2.ConnectError(f"{host} resolves to no address")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore2's interface)
        socket_options: Any = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise Refused("Unix sockets are not reachable from here")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


async def checked_addresses(
    host: str,
    port: int,
    policy: AddressPolicy,
    timeout: float | None,  # noqa: ASYNC109 (httpcore2's, passed on)
) -> list[str]:
    """`host`'s addresses, each checked against `policy` (`Refused` otherwise)."""
    with anyio.fail_after(timeout):
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        reason = policy.refusal(address)
        if reason is not None:
            raise Refused(reason if address == host else f"{host}: {reason}")
    return addresses


class _Capped(httpx2.AsyncByteStream):
    def __init__(self, stream: Any, limit: int) -> None:
        self._stream = stream
        self._limit = limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size = 0
        async for chunk in self._stream:
            size += len(chunk)
            if size > self._limit:
                raise httpx2.RemoteProtocolError(
                    f"the MCP server's answer is longer than {self._limit} bytes"
                )
            yield chunk

    async def aclose(self) -> None:
        await self._stream.aclose()


class GuardedTransport(httpx2.AsyncHTTPTransport):
    """httpx2's transport on the guarded backend, no proxies from the environment, each
    answer read uncompressed (asked as identity, refused otherwise: a compressed one
    would be inflated past our count) up to `max_bytes`."""

    def __init__(
        self,
        policy: AddressPolicy,
        max_bytes: int = MAX_ANSWER_BYTES,
        proxies: ProxyRules = DIRECT,
    ) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx2.create_ssl_context(trust_env=False),
            network_backend=GuardedBackend(policy),
        )
        self.policy = policy
        self.proxies = proxies
        self._via: dict[Proxy, httpx2.AsyncHTTPTransport] = {}
        self.max_bytes = max_bytes

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        request.headers["Accept-Encoding"] = "identity"
        url = request.url
        port = url.port or (443 if url.scheme == "https" else 80)
        proxy = self.proxies.for_url(url.scheme, url.host, port)
        if proxy is None:
            response = await super().handle_async_request(request)
        else:
            try:
                await checked_addresses(url.host, port, self.policy, 30)
            except OSError as exc:
                raise Refused(
                    f"{url.host} does not resolve here, so where the proxy would take it "
                    f"cannot be checked ({exc})"
                ) from None
            response = await self._through(proxy).handle_async_request(request)
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            await response.aclose()
            raise httpx2.DecodingError(f"the MCP server sent a {encoding!r} answer unasked")
        response.stream = _Capped(response.stream, self.max_bytes)
        return response

    def _through(self, proxy: Proxy) -> httpx2.AsyncHTTPTransport:
        if proxy not in self._via:
            auth = proxy.authorization
            headers = {"Proxy-Authorization": auth} if auth is not None else None
            self._via[proxy] = httpx2.AsyncHTTPTransport(
                proxy=httpx2.Proxy(proxy.url, headers=headers), trust_env=False
            )
        return self._via[proxy]

    async def aclose(self) -> None:
        for transport in self._via.values():
            await transport.aclose()
        await super().aclose()


def guarded_client(policy: AddressPolicy, proxies: ProxyRules = DIRECT) -> httpx2.AsyncClient:
    """An httpx2 client for `mcp.client.streamable_http.streamable_http_client`, with the
    SDK's default timeouts (30 s, and 300 s between a stream's events)."""
    return httpx2.AsyncClient(
        transport=GuardedTransport(policy, proxies=proxies),
        timeout=httpx2.Timeout(30.0, read=300.0),
        trust_env=False,
    )
