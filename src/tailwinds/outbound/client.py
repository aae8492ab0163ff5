"""aiohttp sessions whose every connection is checked against an `AddressPolicy` at the
moment it is made, and bounded reads of their answers.

The check sits in the connector, between resolving a host and connecting: it sees the
numeric addresses the socket will use (for an IP literal, the literal as yarl normalised
it; for a name, every address the resolver gave) and the connection is made to those same
addresses, so there is no second lookup a rebinding DNS server could answer differently.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiohttp
from aiohttp.abc import ResolveResult

from tailwinds.outbound.addresses import AddressPolicy, Refused

# the answer's head: aiohttp's line and field limits, and at most this many headers (its
# parser refuses more; the joins are linear, one dict entry per header)
MAX_HEADER_LINE_BYTES = 8190
MAX_HEADERS = 100
READ_CHUNK_BYTES = 64 * 1024


class GuardedConnector(aiohttp.TCPConnector):
    """A TCP connector that connects only to addresses its policy allows."""

    def __init__(self, policy: AddressPolicy, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.policy = policy

    async def _resolve_host(
        self, host: str, port: int, traces: Sequence[Any] | None = None
    ) -> list[ResolveResult]:
        results = await super()._resolve_host(host, port, traces=traces)
        for result in results:
            reason = self.policy.refusal(result["host"])
            if reason is not None:
                raise Refused(reason if result["host"] == host else f"{host}: {reason}")
        return results


def guarded_session(
    policy: AddressPolicy, *, timeout_s: float = 300, pooled: bool = False
) -> aiohttp.ClientSession:
    """A session for one kind of destination. `pooled`: keep connections alive for reuse
    (a shared session); else one use. No proxies from the environment, no cookies kept:
    what is reached is what the URL names, and nothing one answer sets rides on the next
    request."""
    connector = GuardedConnector(
        policy, limit=0 if pooled else 100, force_close=not pooled, ttl_dns_cache=10
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
