"""uvicorn's httptools protocol with the bounds it lacks: the size of a request head, the
time to send it, and the connections held (in all and per client address).

httptools accumulates a header by concatenation, with no cap, on the event loop: one
client streaming an endless header costs memory without bound and CPU quadratic in its
length. Bytes are counted here before the parser sees them; past TAILWINDS_MAX_HEAD_BYTES
the answer is `431` and the connection closes. A head must be complete within
TAILWINDS_HEADER_TIMEOUT_S of its first byte (of the connection, for a new one), else
`408` and close: uvicorn times out only idle connections after a response. The cost is
a counter and a timer per request head; the response path is untouched.

A request body must progress too (RFC 9110 §15.5.9, 408): no body byte for
TAILWINDS_BODY_TIMEOUT_S, or less than TAILWINDS_BODY_MIN_RATE bytes/s on average past that
first allowance (Apache's mod_reqtimeout rule: the deadline moves by 1 s per MinRate
bytes), is answered `408` and the connection closes. One timer, armed only while a body
is awaited past the packet that brought its head, and re-armed when it fires rather than
per chunk; while uvicorn has paused reading (the route has not taken the body yet) the
clock restarts. A connection still sending its body counts as waiting in the table:
evictable at a cap, like a half-open head.
"""

from __future__ import annotations

import asyncio
import resource
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tailwinds.config import Settings
from tailwinds.server.connections import ConnectionTable, client_key, uncapped_addresses


def _answer(status: bytes, code: str, message: str, extra: bytes = b"") -> bytes:
    body = orjson.dumps({"error": message, "code": code})
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
        b"content-length: "
        + str(len(body)).encode()
        + b"\r\nconnection: close\r\n"
        + extra
        + b"\r\n"
        + body
    )


class BoundedHttpProtocol(HttpToolsProtocol):
    """Set by `bounded_protocol`: the shared table and the limits."""

    table: ConnectionTable
    max_head_bytes: int
    header_timeout_s: float
    body_timeout_s: float
    body_min_rate: int  # bytes/s; 0: only the gap between body bytes is bounded

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client_address = ""
        self._counted = False
        self._awaiting_head = True
        self._head_bytes = 0
        self._drained = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._in_body = False  # between a head and its message's end
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_since = 0.0  # loop time the body clock started
        self._body_last = 0.0  # loop time of the last body byte
        self._body_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.client_address = self.client[0] if self.client else ""
        if not self.table.admit(self):
            transport.write(
                _answer(
                    b"503 Service Unavailable",
                    "too_many_connections",
                    "the server holds as many connections as it may; try again",
                    b"retry-after: 1\r\n",
                )
            )
            transport.close()
            return
        self._counted = True
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._uncount()
        self._cancel_head_timer()
        self._cancel_body_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._awaiting_head:
            super().data_received(data)
            if self._in_body and self._body_timer is None:
                self._arm_body_timer(self.body_timeout_s)
            return
        if self._head_bytes == 0 and self._head_timer is None:
            self._arm_head_timer()  # the first byte of a head after a response
        self._head_bytes += len(data)
        super().data_received(data)
        if (
            self._awaiting_head
            and self._head_bytes > self.max_head_bytes
            and not self.transport.is_closing()
        ):
            self._refuse_head(
                b"431 Request Header Fields Too Large",
                "head_too_large",
                f"the request line and headers are larger than {self.max_head_bytes} bytes",
            )
        # a body still to come after the packet that ended the head
        if self._in_body and self._body_timer is None and not self.transport.is_closing():
            self._arm_body_timer(self.body_timeout_s)

    def on_headers_complete(self) -> None:
        self._awaiting_head = False
        self._cancel_head_timer()
        # the connection stays evictable until its message is complete (on_message_complete)
        self._in_body = True
        self._body_since = self._body_last = self.loop.time()
        self._body_bytes = 0
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        self._body_last = self.loop.time()
        if self.cycle is not None and self.cycle.response_complete:
            # answered already (a 413, or a route that never reads its body): the rest is
            # read and dropped, so the client that is still sending reads the answer;
            # past a bound, the connection closes instead
            self._drained += len(body)
            if self._drained > DRAIN_MAX_BYTES and not self.transport.is_closing():
                self._uncount()
                self.transport.close()
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_body = False
        self._cancel_body_timer()
        # a request answered before its body ended (a 413) was put back in line already
        if self._counted and self.cycle is not None and not self.cycle.response_complete:
            self.table.busy(self)
        super().on_message_complete()
        # what comes next is the next request's head (pipelined, or after the answer)
        self._awaiting_head = True
        self._head_bytes = 0
        self._drained = 0

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._counted and not self.pipeline and not self.transport.is_closing():
            self.table.idle(self)

    def evict(self) -> None:
        """Closed to make room for a new connection (see `ConnectionTable`)."""
        self._uncount()
        self._cancel_head_timer()
        self._cancel_body_timer()
        if not self.transport.is_closing():
            self.transport.close()

    def _uncount(self) -> None:
        if self._counted:
            self._counted = False
            self.table.release(self)

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._awaiting_head or self.transport.is_closing():
            return
        if self._head_bytes == 0:
            self.transport.close()  # nothing asked: nothing to answer
            return
        self._refuse_head(
            b"408 Request Timeout",
            "header_timeout",
            f"the request head was not complete within {self.header_timeout_s:g} s",
        )

    def _arm_body_timer(self, delay_s: float) -> None:
        self._body_timer = self.loop.call_later(delay_s, self._body_check)

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_check(self) -> None:
        self._body_timer = None
        if not self._in_body or self.transport.is_closing():
            return
        now = self.loop.time()
        if self.flow.read_paused:
            # the route has not taken what came (or a pipelined request waits its turn):
            # the client is not the one stalling
            self._body_since = self._body_last = now
            self._body_bytes = 0
            self._arm_body_timer(self.body_timeout_s)
            return
        deadline = self._body_last + self.body_timeout_s
        if self.body_min_rate > 0:
            by_rate = self._body_since + self.body_timeout_s + self._body_bytes / self.body_min_rate
            deadline = min(deadline, by_rate)
        if now < deadline:
            self._arm_body_timer(deadline - now)
            return
        if self.cycle is None or not self.cycle.response_started:
            rate = f" or slower than {self.body_min_rate} bytes/s" if self.body_min_rate else ""
            self.transport.write(
                _answer(
                    b"408 Request Timeout",
                    "body_timeout",
                    f"the request body stalled (no byte for {self.body_timeout_s:g} s{rate})",
                )
            )
        self._in_body = False
        self._uncount()
        self.transport.close()

    def _refuse_head(self, status: bytes, code: str, message: str) -> None:
        # a pipelined head while an answer is still being written: no answer can go
        # in the middle of that one, close
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(_answer(status, code, message))
        self._uncount()
        self._cancel_head_timer()
        self.transport.close()


def bounded_protocol(
    table: ConnectionTable,
    max_head_bytes: int,
    header_timeout_s: float,
    body_timeout_s: float = 30.0,
    body_min_rate: int = 0,
) -> type[BoundedHttpProtocol]:
    """The protocol class to give uvicorn (`http=`), bound to these limits."""
    return type(
        "TailwindsHttpProtocol",
        (BoundedHttpProtocol,),
        {
            "table": table,
            "max_head_bytes": max_head_bytes,
            "header_timeout_s": header_timeout_s,
            "body_timeout_s": body_timeout_s,
            "body_min_rate": body_min_rate,
        },
    )


# the unread body after an answer that is dropped rather than closing the connection
DRAIN_MAX_BYTES = 64 * 1024 * 1024

# file descriptors kept for the database, the models' connections and the rest
FD_RESERVE = 128


# raised to at most this, as Go's runtime does for its servers: systemd's default soft
# limit (1024) is a relic of select(), which nothing here uses; the hard limit is the bound
OPEN_FILES_WANTED = 65536


def raise_open_files_limit() -> int:
    """Raise the soft open-files limit toward the hard one; returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = OPEN_FILES_WANTED if hard == resource.RLIM_INFINITY else min(hard, OPEN_FILES_WANTED)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass  # not allowed here: keep what we have
    return OPEN_FILES_WANTED if soft == resource.RLIM_INFINITY else soft


def connection_cap(max_connections: int) -> int:
    """TAILWINDS_MAX_CONNECTIONS, or when 0 half of what the open-files limit leaves after
    a reserve (each stream may hold a second descriptor, toward its model)."""
    if max_connections > 0:
        return max_connections
    return max(16, (raise_open_files_limit() - FD_RESERVE) // 2)


def protocol_for(settings: Settings) -> type[BoundedHttpProtocol]:
    v4, v6 = settings.client_prefix_v4, settings.client_prefix_v6
    table = ConnectionTable(
        connection_cap(settings.max_connections),
        settings.max_connections_per_client,
        uncapped_addresses(settings.trusted_proxies),
        lambda address: client_key(address, v4, v6),
    )
    return bounded_protocol(
        table,
        settings.max_head_bytes,
        settings.header_timeout_s,
        settings.body_timeout_s,
        settings.body_min_rate,
    )
