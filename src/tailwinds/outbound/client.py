"""aiohttp sessions whose every connection is checked against an `AddressPolicy` at the
moment it is made, and bounded reads of their answers.

The check sits in the connector, between resolving a host and connecting: it sees the
numeric addresses the socket will use (for an IP literal, the literal as yarl normalised
it; for a name, every address the resolver gave) and the connection is made to those same
addresses, so there is no second lookup a rebinding DNS server could answer differently.

Through a proxy (tailwinds.outbound.proxies) the destination is resolved here and checked
the same way before the proxy is asked for it (a name that does not resolve here is
refused, unless the policy allows private addresses: the operator's own servers, whose
names only the proxy's DNS may know); the proxy's own address, the operator's setting,
is not checked.
"""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from typing import Any

import aiohttp
from aiohttp.abc import ResolveResult
from yarl import URL

from tailwinds.outbound.addresses import AddressPolicy, Refused
from tailwinds.outbound.proxies import DIRECT, ProxyRules

# the answer's head: aiohttp's line and field limits, and at most this many headers (its
# parser refuses more; the joins are linear, one dict entry per header)
MAX_HEADER_LINE_BYTES = 8190
MAX_HEADERS = 100
READ_CHUNK_BYTES = 64 * 1024


# set while the connector resolves the proxy's own name (not checked: the operator's)
_TO_PROXY: contextvars.ContextVar[bool] = contextvars.ContextVar("to_proxy", default=False)


class GuardedConnector(aiohttp.TCPConnector):
    """A TCP connector that connects only to addresses its policy allows (None: any), each
    request through the proxy `proxies` give for its URL (a proxy the request names itself
    wins)."""

    def __init__(
        self, policy: AddressPolicy | None, proxies: ProxyRules = DIRECT, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.policy = policy
        self.proxies = proxies

    async def connect(self, req: Any, traces: Any, timeout: Any) -> Any:  # noqa: ASYNC109
        if req.proxy is None:
            proxy = self.proxies.for_url(req.url.scheme, req.url.raw_host or "", req.port)
            if proxy is not None:
                headers = dict(req.proxy_headers or {})
                if proxy.authorization is not None:
                    # a tunnel's CONNECT carries the proxy headers, a plain request its own
                    headers["Proxy-Authorization"] = proxy.authorization
                    if req.url.scheme != "https":
                        req.headers["Proxy-Authorization"] = proxy.authorization
                req.update_proxy(URL(proxy.url), None, headers)
        return await super().connect(req, traces, timeout)

    async def _create_proxy_connection(
        self,
        req: Any,
        traces: Any,
        timeout: Any,  # noqa: ASYNC109 (aiohttp's signature)
    ) -> Any:
        # the destination, checked as a direct connection's would be
        try:
            await self._resolve_host(req.url.raw_host, req.port, traces=traces)
        except OSError as exc:
            # an operator-configured server's name may be known to the proxy's DNS alone
            if self.policy is not None and not self.policy.private:
                raise Refused(
                    f"{req.url.raw_host} does not resolve here, so where the proxy would take "
                    f"it cannot be checked ({exc})"
                ) from None
        token = _TO_PROXY.set(True)
        try:
            return await super()._create_proxy_connection(req, traces, timeout)
        finally:
            _TO_PROXY.reset(token)

    async def _resolve_host(
        self, host: str, port: int, traces: Sequence[Any] | None = None
    ) -> list[ResolveResult]:
        results = await super()._resolve_host(host, port, traces=traces)
        if self.policy is None or _TO_PROXY.get():
            return results
        for result in results:
            reason = self.policy.refusal(result["host"])
            if reason is not None:
                raise Refused(reason if result["host"] == host else f"{host}: {reason}")
        return results


def guarded_session(
    policy: AddressPolicy,
    *,
    timeout_s: float = 300,
    pooled: bool = False,
    proxies: ProxyRules = DIRECT,
) -> aiohttp.ClientSession:
    """A session for one kind of destination. `pooled`: keep connections alive for reuse
    (a shared session); else one use. Proxies as `proxies` say (Settings.proxies(): the
    same rules as the models' client; aiohttp's own reading of the environment is off, it
    would also read ~/.netrc), no cookies kept: nothing one answer sets rides on the next
    request."""
    connector = GuardedConnector(
        policy,
        proxies,
        limit=0 if pooled else 100,
        force_close=not pooled,
        ttl_dns_cache=10,
        happy_eyeballs_delay=0.25,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        max_line_size=MAX_HEADER_LINE_BYTES,
        max_field_size=MAX_HEADER_LINE_BYTES,
        max_headers=MAX_HEADERS,
    )


async def read_at_most(resp: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """The body's first `limit` bytes, decompressed, and whether there was more. Stops
    reading there: a compressed body is inflated only as far as it is read (aiohttp ≥ 3.14
    decompresses in bounded steps), so a small gzip bomb costs `limit`, not its size."""
    parts: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = await resp.content.read(min(READ_CHUNK_BYTES, limit + 1 - size))
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    data = b"".join(parts)
    return data[:limit], size > limit


def describe_client_error(exc: BaseException) -> str:
    """A client error in words a user can act on (no stack, no internals)."""
    if isinstance(exc, TimeoutError):
        return "it did not answer in time"
    if isinstance(exc, aiohttp.ClientResponseError) and exc.status == 400:
        # aiohttp's parser refused the answer: too long a header line, too many headers,
        # or not HTTP at all
        return f"its answer is not acceptable HTTP ({exc.message})"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return f"its answer's body is broken ({exc})"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect ({exc.os_error.strerror or exc.os_error})"
    return f"{type(exc).__name__}: {exc}"
