"""One HTTP/1.1 answer as it arrives: httptools' callbacks in, bytes out to the reader,
with back-pressure, an idle timeout, step-by-step inflation and a bounded head."""

from __future__ import annotations

import asyncio
import time
import zlib
from typing import TYPE_CHECKING

import httptools

from tailwinds.wire.errors import ConnectionClosed, WireError, WireTooLarge

if TYPE_CHECKING:
    from tailwinds.wire.client import _Connection

# stop reading the socket past this much unread body: a slow client slows its model
MAX_BUFFERED_BYTES = 256 * 1024
# the answer's head (status line and headers): a server that sends more is refused
MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 128
# a compressed body: inflated at most this much per step (the next step waits for the
# reader, as the socket does), and at most MAX_INFLATED_BYTES in all (a gzip bomb of 60 KB
# is 60 MB of text)
INFLATE_STEP_BYTES = 64 * 1024
MAX_INFLATED_BYTES = 128 * 1024 * 1024


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


class BodyReads:
    """The whole-body reads of a model's answer, on top of its `read()` (an empty chunk:
    the end), shared by both clients (`WireResponse`, `via_aiohttp.AiohttpResponse`)."""

    __slots__ = ()

    async def read(self) -> bytes:
        raise NotImplementedError

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


class WireResponse(BodyReads):
    """One answer, read as it arrives. Also the parser's callback object."""

    __slots__ = (
        "_buffered",
        "_closed",
        "_conn",
        "_decompress",
        "_error",
        "_head",
        "_head_bytes",
        "_head_read",
        "_headers",
        "_idle_s",
        "_inflated",
        "_informational",
        "_max_inflated",
        "_paused",
        "_pending",
        "_repeats",
        "_tail",
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
        self._tail = b""  # compressed bytes not inflated yet
        # the last step filled its quota: zlib may hold output even with no tail left
        self._pending = False
        self._inflated = 0
        self._max_inflated = conn.client.max_inflated_bytes
        self._head_bytes = 0  # of the headers parsed
        self._head_read = 0  # of the bytes read while the head was not whole
        self._headers = 0
        # repeats of a kept header, joined once the head is whole: linear, not a string
        # rebuilt per repeat
        self._repeats: dict[str, list[str]] | None = None
        self._until_close = False
        self._informational = False  # the head being parsed is a 1xx one
        self._idle_s = 0.0
        self._timer: asyncio.TimerHandle | None = None

    # --- the parser's callbacks

    def on_message_begin(self) -> None:
        self.began = True

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers += 1
        self._head_bytes += len(name) + len(value) + 4
        if self._headers > MAX_HEADERS:
            self._fail(WireTooLarge(f"an answer with more than {MAX_HEADERS} headers"))
            return
        if self._head_bytes > MAX_HEAD_BYTES:
            self._fail(WireTooLarge(f"an answer head of more than {MAX_HEAD_BYTES} bytes"))
            return
        key = name.decode("latin-1").lower()
        if key not in KEPT_HEADERS:
            return  # the rest would be held as long as the stream, for nobody
        text = value.decode("latin-1")
        if key not in self.headers:
            self.headers[key] = text
        else:
            if self._repeats is None:
                self._repeats = {}
            self._repeats.setdefault(key, [self.headers[key]]).append(text)

    def on_headers_complete(self) -> None:
        if self._error is not None:
            return
        if self._repeats is not None:
            for key, values in self._repeats.items():
                self.headers[key] = ", ".join(values)
            self._repeats = None
        parser = self.parser
        status = parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            # 100 Continue, 103 Early Hints (RFC 9110 §15.2): an interim answer, the final
            # one follows on the same connection; its headers are dropped, its bytes still
            # count toward the head's bound (status stays 0 till the final head)
            self._informational = True
            self.headers = {}
            return
        self.status = status
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
            body = self._inflate(body)
            if not body:
                return
        self.chunks.append(body)
        self._buffered += len(body)
        if self._buffered > MAX_BUFFERED_BYTES and not self._paused:
            self._paused = True
            self._conn.transport.pause_reading()  # type: ignore[union-attr]
        self._wake()

    def _inflate(self, body: bytes) -> bytes:
        """At most INFLATE_STEP_BYTES of `body` (after what is left of the last ones)
        inflated; the rest kept for the reader's next `read`, the socket paused meanwhile."""
        data = (self._tail + body if body else self._tail) if self._tail else body
        try:
            out = self._decompress.decompress(data, INFLATE_STEP_BYTES)  # type: ignore[union-attr]
        except zlib.error as exc:
            self._fail(WireError(f"the answer's compressed body is broken: {exc}"))
            return b""
        self._tail = self._decompress.unconsumed_tail  # type: ignore[union-attr]
        self._pending = len(out) >= INFLATE_STEP_BYTES
        self._inflated += len(out)
        if self._inflated > self._max_inflated:
            self._fail(WireTooLarge(f"a compressed answer of more than {self._max_inflated} bytes"))
            return b""
        if (self._tail or self._pending) and not self._paused:
            self._paused = True
            transport = self._conn.transport
            if transport is not None:
                transport.pause_reading()
        return out

    def on_message_complete(self) -> None:
        if self._informational:  # the end of a 1xx head: the parser reads on
            self._informational = False
            return
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
            if self._tail or self._pending:  # a compressed body's next step
                # let the other streams run first: without it, a body that inflates to
                # much but yields no token would hold the loop till its end
                await asyncio.sleep(0)
                out = self._inflate(b"")
                if out:
                    chunks.append(out)
                continue
            if self.complete:
                return b""
            self._waiter = waiter = self._conn.loop.create_future()
            await waiter
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._buffered = 0
        if self._paused and not (self._tail or self._pending):
            self._paused = False
            transport = self._conn.transport
            if transport is not None:  # None: the connection is gone, its last bytes are in
                transport.resume_reading()
        return data

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
