"""Pooled connections and the POST that opens an answer."""

from __future__ import annotations

import asyncio
import select
import ssl
import time
from urllib.parse import urlsplit

import httptools

from tailwinds.outbound.addresses import AddressPolicy
from tailwinds.outbound.proxies import DIRECT, Proxy, ProxyRules
from tailwinds.wire.connect import open_socket
from tailwinds.wire.errors import ConnectionClosed, WireError, WireTooLarge
from tailwinds.wire.response import MAX_HEAD_BYTES, MAX_INFLATED_BYTES, WireResponse

# idle pooled connections: how many per origin (as many as the streams a busy server
# holds: a new connection costs ~100 µs of CPU), and for how long (servers drop theirs
# after 5 s (uvicorn) to 75 s (nginx); one dropped meanwhile costs a retry, not an error)
MAX_IDLE_PER_ORIGIN = 1024
IDLE_EXPIRY_S = 30.0


# (scheme, host, port, the proxy's "host:port" or ""): connections are pooled per origin
# and per the way they reach it
Origin = tuple[str, str, int, str]


class _Connection(asyncio.Protocol):
    __slots__ = (
        "client",
        "closed",
        "idle_since",
        "last_data",
        "loop",
        "origin",
        "response",
        "transport",
    )

    def __init__(self, client: WireClient, origin: Origin, loop: asyncio.AbstractEventLoop):
        self.client = client
        self.origin = origin
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.response: WireResponse | None = None
        self.closed = False
        self.idle_since = 0.0
        self.last_data = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None:
            self.close()  # bytes nobody asked for: the connection is not fit to reuse
            return
        # stamped per chunk, read by the idle timer once a period; the monotonic clock,
        # not the loop's, which would cost a method call through uvloop
        self.last_data = time.monotonic()
        try:
            response.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            response._fail(WireError(f"the server's answer is not valid HTTP: {exc}"))
            return
        if not response.status:  # the head is not whole yet: bound what the parser holds
            response._head_read += len(data)
            if response._head_read > MAX_HEAD_BYTES and response._error is None:
                response._fail(WireTooLarge(f"an answer head of more than {MAX_HEAD_BYTES} bytes"))

    def eof_received(self) -> bool:
        return False  # a half-closed connection is closed: no request can follow

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        self.transport = None  # the transport holds us: no cycle left for the collector
        if self.response is not None:
            self.response._lost(exc)

    def release(self) -> None:
        self.client._release(self)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class WireClient:
    """Pooled connections to the model servers; one per process, shared by every run."""

    def __init__(
        self,
        tls: ssl.SSLContext | None = None,
        max_inflated_bytes: int = MAX_INFLATED_BYTES,
        policy: AddressPolicy | None = None,
        proxies: ProxyRules = DIRECT,
    ) -> None:
        """`tls`: how to check servers' certificates; the system's CAs by default.
        `max_inflated_bytes`: the most a compressed answer may inflate to.
        `policy`: the addresses a new connection may use (tailwinds.outbound), checked on
        the resolved addresses it then connects to (through a proxy: the destination's);
        None: any. `proxies`: which proxy each URL goes through (Settings.proxies())."""
        self._idle: dict[Origin, list[_Connection]] = {}
        self._tls = tls
        self._policy = policy
        self._proxies = proxies
        self.max_inflated_bytes = max_inflated_bytes

    async def post(
        self, url: str, headers: dict[str, str], body: bytes, connect_timeout_s: float
    ) -> WireResponse:
        """Send the request and wait for the answer's status and headers (the caller bounds
        that wait). Raises `WireError` (or `OSError`, `TimeoutError` while connecting,
        `Refused` by the address policy).

        Sent once: a pooled connection found closed before the request is written is
        replaced (nothing was sent on it), but one that drops after the request went out
        raises `ConnectionClosed` with `maybe_processed` set: the server may have read
        the POST, and whether to send it again is the caller's call (aiohttp and urllib3
        re-send only idempotent requests)."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise WireError(f"not an http(s) URL: {url!r}")
        host = parts.hostname
        port = parts.port or (443 if scheme == "https" else 80)
        proxy = self._proxies.for_url(scheme, host, port)
        origin = (scheme, host, port, f"{proxy.host}:{proxy.port}" if proxy else "")
        authority = _host_header(host, parts.port)
        target = f"{parts.path or '/'}?{parts.query}" if parts.query else parts.path or "/"
        if proxy is not None and scheme == "http":
            # a plain request through a proxy names the whole URL (RFC 9112 §3.2.2)
            target = f"http://{authority}{target}"
            if proxy.authorization is not None:
                headers = {**headers, "Proxy-Authorization": proxy.authorization}
        request = _request(target, authority, headers)
        request += b"Content-Length: %d\r\n\r\n" % len(body) + body
        while (conn := self._pooled(origin)) is not None:
            if conn.closed or _hung_up(conn.transport):
                conn.close()  # seen closed before a byte was written: the next one
                continue
            return await _send(conn, request)
        conn = await self._connect(origin, proxy, connect_timeout_s)
        return await _send(conn, request)

    def _pooled(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < IDLE_EXPIRY_S:
                return conn
            conn.close()
        return None

    async def _connect(self, origin: Origin, proxy: Proxy | None, timeout_s: float) -> _Connection:
        scheme, host, port, _ = origin
        loop = asyncio.get_running_loop()
        conn = _Connection(self, origin, loop)
        tls = None
        if scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
            tls = self._tls
        async with asyncio.timeout(timeout_s):
            sock = await open_socket(loop, scheme, host, port, proxy, self._policy)
            try:
                await loop.create_connection(
                    lambda: conn, sock=sock, ssl=tls, server_hostname=host if tls else None
                )
            except BaseException:
                sock.close()
                raise
        return conn

    def _release(self, conn: _Connection) -> None:
        idle = self._idle.setdefault(conn.origin, [])
        if len(idle) >= MAX_IDLE_PER_ORIGIN:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    def close(self) -> None:
        """Close the pooled connections (answers still being read keep theirs)."""
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()

    async def aclose(self) -> None:
        self.close()


async def _send(conn: _Connection, request: bytes) -> WireResponse:
    response = conn.response = WireResponse(conn)
    conn.transport.write(request)  # type: ignore[union-attr]
    try:
        await response._head
    except ConnectionClosed as exc:
        exc.maybe_processed = True  # the request went out: the server may have read it
        raise
    except BaseException:
        conn.close()  # cancelled or failed before the answer: never reuse it
        raise
    return response


def _hung_up(transport: asyncio.Transport | None) -> bool:
    """Whether an idle connection is closing or has bytes or an end the loop has not read
    yet: a FIN (keep-alive timeout, half-close) already in the kernel is seen here before
    the request is written on it, rather than after. One poll(2) of the socket."""
    if transport is None or transport.is_closing():
        return True
    sock = transport.get_extra_info("socket")
    if sock is None:
        return False
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


def _request(target: str, host: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {target} HTTP/1.1", f"Host: {host}"]
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
            # an API key pasted with its line break would otherwise split the request
            raise WireError(f"the header {name.strip()!r} holds a line break or a colon")
        lines.append(f"{name}: {value}")
    try:
        return ("\r\n".join(lines) + "\r\n").encode("latin-1")
    except UnicodeEncodeError:
        raise WireError("a header holds characters HTTP cannot carry (not Latin-1)") from None


def _host_header(host: str, port: int | None) -> str:
    name = f"[{host}]" if ":" in host else host
    return f"{name}:{port}" if port else name
