"""The HTTP/1.1 client the model providers speak through: POST a body, read the answer's
bytes as they arrive.

Hand-written over asyncio's protocols and httptools' C parser because a model's stream is
the token hot path. ARCHITECTURE.md measured bare relays at 45 to 53 µs of CPU per token with
a client like this one and 60 to 71 with aiohttp; aiohttp's stream reader, its waiter and the
read timeout it re-arms on every chunk are the difference (bench/RESULTS.md has what this
one saves in the whole server).

It does: keep-alive connections pooled per origin; TLS; chunked, Content-Length and
close-delimited bodies; gzip and deflate when a server sends them unasked; a connect
timeout; an idle timeout checked by one timer per idle period, not one per chunk;
back-pressure (it stops reading the socket while its reader lags). A connection whose
answer was not read to the end is closed, never reused: that is how a cancelled stream
stops the model. It leaves out what model APIs do not need: proxies, redirects, cookies,
HTTP/2.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from urllib.parse import urlsplit

import httptools

from tailwinds.outbound.addresses import AddressPolicy
from tailwinds.outbound.sockets import create_checked_connection

# stop reading the socket past this much unread body: a slow client slows its model
MAX_BUFFERED_BYTES = 256 * 1024
# idle pooled connections: how many per origin (as many as the streams a busy server
# holds: a new connection costs ~100 µs of CPU), and for how long (servers drop theirs
# after 5 s (uvicorn) to 75 s (nginx); one dropped meanwhile costs a retry, not an error)
MAX_IDLE_PER_ORIGIN = 1024
IDLE_EXPIRY_S = 30.0


# the answer's headers the client and the providers read; the others are dropped
KEPT_HEADERS = frozenset(
    (
        "content-encoding",
        "content-length",
        "content-type",
        "location",
        "retry-after",
        "transfer-encoding",
    )
)


class WireError(Exception):
    """The connection failed, or what came back is not HTTP."""


class ConnectionClosed(WireError):
    """The server closed the connection before the answer was whole."""


class _Stale(ConnectionClosed):
    """A pooled connection turned out closed before a byte of the answer came: the server
    dropped it while it was idle, so the request can go again on a new one."""


Origin = tuple[str, str, int]


class WireResponse:
    """One answer, read as it arrives. Also the parser's callback object."""

    __slots__ = (
        "_buffered",
        "_closed",
        "_conn",
        "_decompress",
        "_error",
        "_head",
        "_idle_s",
        "_paused",
        "_timer",
        "_until_close",
        "_waiter",
        "began",
        "chunks",
        "complete",
        "headers",
        "keep_alive",
        "parser",
        "status",
    )

    def __init__(self, conn: _Connection) -> None:
        self._conn = conn
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.began = False
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []
        self.complete = False
        self.keep_alive = False
        self._buffered = 0
        self._closed = False
        self._paused = False
        self._error: BaseException | None = None
        self._head: asyncio.Future[None] = conn.loop.create_future()
        self._waiter: asyncio.Future[None] | None = None
        self._decompress: zlib._Decompress | None = None
        self._until_close = False
        self._idle_s = 0.0
        self._timer: asyncio.TimerHandle | None = None

    # --- the parser's callbacks

    def on_message_begin(self) -> None:
        self.began = True

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        if key not in KEPT_HEADERS:
            return  # the rest would be held as long as the stream, for nobody
        text = value.decode("latin-1")
        self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text

    def on_headers_complete(self) -> None:
        parser = self.parser
        self.status = parser.get_status_code()
        self.keep_alive = parser.should_keep_alive()
        encoding = self.headers.get("content-encoding", "identity").strip().lower()
        if encoding in ("gzip", "x-gzip"):
            self._decompress = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif encoding == "deflate":
            self._decompress = zlib.decompressobj()
        elif encoding != "identity":
            self._fail(WireError(f"the answer is encoded as {encoding!r}, which we cannot read"))
            return
        self._until_close = (
            "content-length" not in self.headers
            and "chunked" not in self.headers.get("transfer-encoding", "").lower()
        )
        if not self._head.done():
            self._head.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self._decompress is not None:
            try:
                body = self._decompress.decompress(body)
            except zlib.error as exc:
                self._fail(WireError(f"the answer's compressed body is broken: {exc}"))
                return
        self.chunks.append(body)
        self._buffered += len(body)
        if self._buffered > MAX_BUFFERED_BYTES and not self._paused:
            self._paused = True
            self._conn.transport.pause_reading()  # type: ignore[union-attr]
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self._conn.response = None
        self._wake()

    # --- the connection's events

    def _lost(self, exc: BaseException | None) -> None:
        if self.complete:
            return
        if self._until_close and self._head.done():
            self.keep_alive = False
            self.on_message_complete()  # the body ends where the connection does
            return
        self._fail(ConnectionClosed(f"the connection closed before the answer was whole ({exc})"))

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        if not self._head.done():
            self._head.set_exception(error)
            self._head.exception()  # read, so an unawaited head logs nothing
        self._wake()
        self._conn.close()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # --- the reader's side

    async def read(self) -> bytes:
        """The body's next bytes as they come; b"" once it is whole."""
        chunks = self.chunks
        while not chunks:
            if self._error is not None:
                raise self._error
            if self.complete:
                return b""
            self._waiter = waiter = self._conn.loop.create_future()
            await waiter
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._buffered = 0
        if self._paused:
            self._paused = False
            transport = self._conn.transport
            if transport is not None:  # None: the connection is gone, its last bytes are in
                transport.resume_reading()
        return data

    async def read_at_most(self, limit: int) -> bytes:
        """The body's first `limit` bytes (all of it, when shorter); the rest is not read."""
        parts: list[bytes] = []
        size = 0
        while size < limit and (chunk := await self.read()):
            parts.append(chunk)
            size += len(chunk)
        return b"".join(parts)[:limit]

    async def read_all(self, limit: int) -> bytes:
        """The whole body, refused past `limit` bytes."""
        body = await self.read_at_most(limit + 1)
        if len(body) > limit:
            raise WireError(f"the answer is longer than {limit} bytes")
        return body

    def set_idle_timeout(self, seconds: float) -> None:
        """From now on, fail the read if the server sends nothing for `seconds`."""
        self._idle_s = seconds
        self._conn.last_data = time.monotonic()
        self._timer = self._conn.loop.call_later(seconds, self._check_idle)

    def _check_idle(self) -> None:
        if self.complete or self._error is not None:
            return
        # the arrival time of the last chunk is read here, once a period, instead of
        # re-arming a timer per chunk
        left = self._conn.last_data + self._idle_s - time.monotonic()
        if left > 0 or self._paused:
            self._timer = self._conn.loop.call_later(max(left, 0.05), self._check_idle)
            return
        self._fail(TimeoutError(f"the server sent nothing for {self._idle_s:g} s"))

    def close(self) -> None:
        """Done with the answer: its connection goes back to the pool when it was read to
        the end, and is closed otherwise (which is what stops a model mid-answer)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._closed:
            return
        self._closed = True
        # the parser holds our bound methods: a cycle the collector would otherwise free
        self.parser = None  # type: ignore[assignment]
        conn = self._conn
        if conn.response is self:
            conn.response = None
        if self.complete and self.keep_alive and self._error is None and not conn.closed:
            conn.release()
        else:
            conn.close()


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
        self, tls: ssl.SSLContext | None = None, policy: AddressPolicy | None = None
    ) -> None:
        """`tls`: how to check servers' certificates; the system's CAs by default.
        `policy`: the addresses a new connection may use (tailwinds.outbound), checked on
        the resolved addresses it then connects to; None: any."""
        self._idle: dict[Origin, list[_Connection]] = {}
        self._tls = tls
        self._policy = policy

    async def post(
        self, url: str, headers: dict[str, str], body: bytes, connect_timeout_s: float
    ) -> WireResponse:
        """Send the request and wait for the answer's status and headers (the caller bounds
        that wait). Raises `WireError` (or `OSError`, `TimeoutError` while connecting)."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise WireError(f"not an http(s) URL: {url!r}")
        host = parts.hostname
        port = parts.port or (443 if scheme == "https" else 80)
        origin = (scheme, host, port)
        request = _request(parts.path or "/", parts.query, _host_header(host, parts.port), headers)
        request += b"Content-Length: %d\r\n\r\n" % len(body) + body
        while (conn := self._pooled(origin)) is not None:
            try:
                return await _send(conn, request)
            except _Stale:
                continue  # dropped by the server while idle: try the next, or a new one
        conn = await self._connect(origin, connect_timeout_s)
        try:
            return await _send(conn, request)
        except _Stale as exc:
            raise ConnectionClosed(str(exc)) from None

    def _pooled(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < IDLE_EXPIRY_S:
                return conn
            conn.close()
        return None

    async def _connect(self, origin: Origin, timeout_s: float) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        conn = _Connection(self, origin, loop)
        tls = None
        if scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
            tls = self._tls
        async with asyncio.timeout(timeout_s):
            if self._policy is None:
                await loop.create_connection(
                    lambda: conn, host, port, ssl=tls, server_hostname=host if tls else None
                )
            else:
                await create_checked_connection(loop, lambda: conn, host, port, self._policy, tls)
        return conn

    def _release(self, conn: _Connection) -> None:
        idle = self._idle.setdefault(conn.origin, [])
        if len(idle) >= MAX_IDLE_PER_ORIGIN:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()


async def _send(conn: _Connection, request: bytes) -> WireResponse:
    reused = conn.idle_since > 0  # it has been in the pool
    if conn.closed:
        raise _Stale("closed while idle")
    response = conn.response = WireResponse(conn)
    conn.transport.write(request)  # type: ignore[union-attr]
    try:
        await response._head
    except ConnectionClosed as exc:
        if reused and not response.began:
            raise _Stale(str(exc)) from None
        raise
    except BaseException:
        conn.close()  # cancelled or failed before the answer: never reuse it
        raise
    return response


def _request(path: str, query: str, host: str, headers: dict[str, str]) -> bytes:
    target = f"{path}?{query}" if query else path
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
