"""uvicorn's httptools protocol with the bounds it lacks: the size of a request head, the
time to send it, and the connections held (in all and per client address).

httptools accumulates a header by concatenation, with no cap, on the event loop: one
client streaming an endless header costs memory without bound and CPU quadratic in its
length. Bytes are counted here before the parser sees them; past TAILWINDS_MAX_HEAD_BYTES
the answer is `431` and the connection closes. A head must be complete within
TAILWINDS_HEADER_TIMEOUT_S of its first byte (of the connection, for a new one), else
`408` and close: uvicorn times out only idle connections after a response. The cost is
a counter and a timer per request head; the response path is untouched.
"""

from __future__ import annotations

import asyncio
import resource
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tailwinds.config import Settings
from tailwinds.server.connections import ConnectionTable, uncapped_addresses


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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client_address = ""
        self._counted = False
        self._awaiting_head = True
        self._head_bytes = 0
        self._drained = 0
        self._head_timer: asyncio.TimerHandle | None = None

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
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._awaiting_head:
            super().data_received(data)
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

    def on_headers_complete(self) -> None:
        self._awaiting_head = False
        self._cancel_head_timer()
        if self._counted:
            self.table.busy(self)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
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

    def _refuse_head(self, status: bytes, code: str, message: str) -> None:
        # a pipelined head while an answer is still being written: no answer can go
        # in the middle of that one, close
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(_answer(status, code, message))
        self._uncount()
        self._cancel_head_timer()
        self.transport.close()


def bounded_protocol(
    table: ConnectionTable, max_head_bytes: int, header_timeout_s: float
) -> type[BoundedHttpProtocol]:
    """The protocol class to give uvicorn (`http=`), bound to these limits."""
    return type(
        "TailwindsHttpProtocol",
        (BoundedHttpProtocol,),
        {
            "table": table,
            "max_head_bytes": max_head_bytes,
            "header_timeout_s": header_timeout_s,
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
    table = ConnectionTable(
        connection_cap(settings.max_connections),
        settings.max_connections_per_client,
        uncapped_addresses(settings.trusted_proxies),
    )
    return bounded_protocol(table, settings.max_head_bytes, settings.header_timeout_s)
