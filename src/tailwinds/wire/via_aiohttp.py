"""The escape hatch: the models' client protocol (`ModelClient`) over aiohttp, chosen with
TAILWINDS_MODEL_CLIENT=aiohttp when our own client meets a server or a network it gets
wrong. Same contract, same bounds, same address policy and proxies (through
tailwinds.outbound's guarded connector); it costs more CPU per token (ARCHITECTURE.md,
"The models' HTTP client"). tests/integration/test_model_client_conformance.py runs the
same table of edge cases against both.
"""

from __future__ import annotations

import asyncio

import aiohttp

from tailwinds.outbound.addresses import AddressPolicy
from tailwinds.outbound.client import (
    MAX_HEADER_LINE_BYTES,
    MAX_HEADERS,
    GuardedConnector,
)
from tailwinds.outbound.proxies import DIRECT, ProxyRules
from tailwinds.wire.errors import ConnectionClosed, WireError, WireTooLarge
from tailwinds.wire.response import KEPT_HEADERS, MAX_INFLATED_BYTES, BodyReads

READ_BYTES = 256 * 1024  # at most this much a read: as the wire client's buffer


class AiohttpResponse(BodyReads):
    """One answer (the `ModelResponse` protocol), read through aiohttp."""

    def __init__(self, resp: aiohttp.ClientResponse, max_inflated: int) -> None:
        self._resp = resp
        self.status = resp.status
        self.headers = {k.lower(): v for k, v in resp.headers.items() if k.lower() in KEPT_HEADERS}
        self._idle_s = 0.0
        self._read = 0
        # aiohttp inflates in bounded steps; the bound in all is counted here, as ours does
        encoded = self.headers.get("content-encoding", "identity").strip().lower()
        self._max_inflated = max_inflated if encoded not in ("", "identity") else 1 << 62
        self._closed = False

    async def read(self) -> bytes:
        """The body's next bytes as they come; b"" once it is whole."""
        try:
            if self._idle_s:
                try:
                    async with asyncio.timeout(self._idle_s):
                        data = await self._resp.content.readany()
                except TimeoutError:
                    raise TimeoutError(f"the server sent nothing for {self._idle_s:g} s") from None
            else:
                data = await self._resp.content.readany()
        except aiohttp.ClientPayloadError as exc:
            raise ConnectionClosed(f"the answer's body is broken or cut short ({exc})") from None
        except aiohttp.ClientConnectionError as exc:
            raise ConnectionClosed(
                f"the connection closed before the answer was whole ({exc})"
            ) from None
        self._read += len(data)
        if self._read > self._max_inflated:
            raise WireTooLarge(f"a compressed answer of more than {self._max_inflated} bytes")
        return data

    def set_idle_timeout(self, seconds: float) -> None:
        """From now on, fail a read if the server sends nothing for `seconds`."""
        self._idle_s = seconds

    def close(self) -> None:
        """Done with the answer: its connection is pooled when it was read to the end,
        closed otherwise (which stops a model mid-answer)."""
        if self._closed:
            return
        self._closed = True
        if self._resp.content.is_eof():
            self._resp.release()
        else:
            self._resp.close()


class AiohttpClient:
    """The `ModelClient` protocol over one pooled aiohttp session (made on first use, in
    the running loop)."""

    def __init__(
        self,
        policy: AddressPolicy | None = None,
        proxies: ProxyRules = DIRECT,
        max_inflated_bytes: int = MAX_INFLATED_BYTES,
        tls: object = None,
    ) -> None:
        """As `WireClient`'s; `tls`: an `ssl.SSLContext`, or None for the system's CAs."""
        self._policy = policy
        self._proxies = proxies
        self._tls = tls
        self.max_inflated_bytes = max_inflated_bytes
        self._session: aiohttp.ClientSession | None = None

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = GuardedConnector(
                self._policy,
                proxies=self._proxies,
                limit=0,
                ttl_dns_cache=10,
                ssl=self._tls if self._tls is not None else True,
                happy_eyeballs_delay=0.25,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None),
                cookie_jar=aiohttp.DummyCookieJar(),
                max_line_size=MAX_HEADER_LINE_BYTES,
                max_field_size=MAX_HEADER_LINE_BYTES,
                max_headers=MAX_HEADERS,
                read_bufsize=READ_BYTES,
                # what the wire client sends: no Accept-Encoding (an unasked gzip answer
                # is still inflated), no User-Agent of aiohttp's
                skip_auto_headers=("Accept-Encoding", "User-Agent"),
            )
        return self._session

    async def post(
        self, url: str, headers: dict[str, str], body: bytes, connect_timeout_s: float
    ) -> AiohttpResponse:
        """As `WireClient.post`: the answer once its head is in; redirects not followed."""
        for name, value in headers.items():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
                raise WireError(f"the header {name.strip()!r} holds a line break or a colon")
        session = self._open_session()
        try:
            resp = await session.post(
                url,
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=None, connect=connect_timeout_s),
            )
        except TimeoutError:
            raise  # connecting took longer than connect_timeout_s
        except aiohttp.ClientHttpProxyError as exc:
            raise WireError(f"the proxy refused the request: {exc.status} {exc.message}") from None
        except aiohttp.InvalidURL as exc:
            raise WireError(f"not an http(s) URL: {exc}") from None
        except aiohttp.ClientConnectorError as exc:
            raise exc.os_error from None
        except aiohttp.ServerDisconnectedError as exc:
            closed = ConnectionClosed(f"the connection closed before the answer ({exc})")
            closed.maybe_processed = True
            raise closed from None
        except aiohttp.ClientResponseError as exc:
            raise WireError(f"the server's answer is not acceptable HTTP: {exc.message}") from None
        except aiohttp.ClientError as exc:
            raise WireError(str(exc) or type(exc).__name__) from None
        encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("identity", "gzip", "x-gzip", "deflate"):
            resp.close()  # what ours refuses (none was asked for): brotli, zstd, unknown
            raise WireError(f"the answer is encoded as {encoding!r}, which we cannot read")
        return AiohttpResponse(resp, self.max_inflated_bytes)

    def close(self) -> None:
        """Drop the pooled connections (sync, as `WireClient.close`; `aclose` awaits)."""
        if self._session is not None and not self._session.closed:
            connector = self._session.connector
            if connector is not None:
                connector._close()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
