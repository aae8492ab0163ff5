"""The SSE transport: events in, one body chunk per event out, flushed as it comes.

A raw ASGI response rather than `StreamingResponse`, for what it does not do: keep-alive
comments into any silence, stopping the run the moment the client leaves (a watcher on
`receive` cancels the task that drives the run, which closes the upstream request), a
bound on how long a write may wait for a client that stopped reading, and keeping a run
going when an abort's cancel lands between two events.

Keep-alives and the write bound share one timer per stream that ticks every half
keep-alive period and looks at a count of the writes taken: nothing is armed, stamped or
awaited per token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import struct
from collections.abc import AsyncIterator

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tailwinds.config import Settings
from tailwinds.engine.events import KEEPALIVE, Event, encode_event
from tailwinds.metrics import ACTIVE_STREAMS, WRITE_TIMEOUTS
from tailwinds.server.disconnect import watch_disconnect

logger = logging.getLogger("tailwinds.server")

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    # nginx and friends buffer responses unless told not to
    (b"x-accel-buffering", b"no"),
]


# however small the settings, a stream's timer ticks no more often than this
MIN_TICK_S = 0.05

# where the app leaves the server's `send` in the scope (see `TailwindsAPI`)
RAW_SEND = "tailwinds.send"


def sse_response(
    events: AsyncIterator[Event] | AsyncIterator[bytes], settings: Settings
) -> SSEResponse:
    """The stream with the operator's keep-alive period and write bound."""
    return SSEResponse(events, settings.keepalive_s, settings.client_write_timeout_s())


class SSEResponse(Response):
    media_type = "text/event-stream"

    def __init__(
        self,
        events: AsyncIterator[Event] | AsyncIterator[bytes],
        keepalive_s: float,
        write_timeout_s: float,
        headers: dict[str, str] | None = None,
    ) -> None:
        """`events` are the runner's events, or frames already encoded (a relayed or
        resumable stream). A `: ping` comment goes out when nothing was written for
        `keepalive_s` (0: never); a client that takes no write for `write_timeout_s` is
        dropped as if it had disconnected."""
        self.status_code = 200
        self.background = None
        self.headers_list = SSE_HEADERS + [
            (k.lower().encode(), v.encode()) for k, v in (headers or {}).items()
        ]
        self.events = events
        self.keepalive_s = keepalive_s
        self.write_timeout_s = write_timeout_s
        # the timer's period: half a keep-alive period, so that a ping comes 1/2 to 1
        # period into a silence, and a quarter of the write bound at most
        period = write_timeout_s / 4
        if keepalive_s > 0:
            period = min(keepalive_s / 2, period)
        self._period = period = max(period, MIN_TICK_S)
        self._ping_ticks = max(1, round(keepalive_s / period) - 1) if keepalive_s > 0 else 0
        self._timeout_ticks = math.ceil(write_timeout_s / period - 1e-9)
        self.sent = 0  # the writes the client has taken: events and keep-alives
        self.disconnected = False  # the client left, or was dropped: nothing more to send
        self._quiet = 0  # ticks in a row that saw no write taken
        self._seen = 0
        self._send: Send | None = None
        self._task: asyncio.Task[object] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._probe: asyncio.Future[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        assert task is not None
        await send({"type": "http.response.start", "status": 200, "headers": self.headers_list})
        # the middlewares have seen the start: what follows needs none of them
        send = scope.get(RAW_SEND, send)
        self._send, self._task = send, task
        ACTIVE_STREAMS.inc()
        watcher = asyncio.create_task(watch_disconnect(receive, self._left))
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._period, self._tick)
        try:
            await self._pump(send)
        except asyncio.CancelledError:
            if not self.disconnected:
                raise
            task.uncancel()  # we cancelled ourselves because the client left: not an error
        finally:
            ACTIVE_STREAMS.dec()
            watcher.cancel()
            self._timer.cancel()
            if self._probe is not None:
                self._probe.cancel()
            await self.events.aclose()  # type: ignore[union-attr]
        if not self.disconnected:
            await self._close(send)

    async def _pump(self, send: Send) -> None:
        next_event = self.events.__anext__
        # the flag, not only the cancel: a cancel can be lost inside a library's await
        # (Python 3.11's `wait_for`), and the run would go on for nobody
        while not self.disconnected:
            try:
                event = await next_event()
            except StopAsyncIteration:
                return
            body = event if type(event) is bytes else encode_event(event)  # type: ignore[arg-type]
            try:
                await send({"type": "http.response.body", "body": body, "more_body": True})
            except asyncio.CancelledError:
                if self.disconnected:
                    raise
                # an abort's cancel that landed in our send: the runner sees the abort at
                # its next step and ends the stream with `error` and `end`
                asyncio.current_task().uncancel()  # type: ignore[union-attr]
            self.sent += 1

    async def _close(self, send: Send) -> None:
        # the last chunk may wait on a client that stopped reading, like any write
        timer = asyncio.get_running_loop().call_later(self.write_timeout_s, self._give_up)
        try:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not self.disconnected:
                raise
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
        finally:
            timer.cancel()

    def _left(self) -> None:
        """The client is gone: stop the run where it is (the runner stores it aborted)."""
        if not self.disconnected:
            self.disconnected = True
            assert self._task is not None
            self._task.cancel()

    def _give_up(self) -> None:
        """The client took no write for `write_timeout_s`: it is treated as gone."""
        WRITE_TIMEOUTS.inc()
        logger.info("dropped a stream whose client took no write for %g s", self.write_timeout_s)
        # the server learns of the reset before our task wakes from the cancel below, so
        # it takes the response as disconnected, not as unfinished
        _reset_connection(self._send)
        self._left()

    def _tick(self) -> None:
        # one timer per stream, re-armed per tick, never per token
        if self.sent != self._seen:
            self._seen = self.sent
            self._quiet = 0
        else:
            self._quiet += 1
            if self._probe is not None and not self._probe.done():
                # a write waits for the client to read (the probe, and maybe an event)
                if self._quiet >= self._timeout_ticks:
                    self._give_up()
                    return
            elif self._ping_ticks and self._quiet >= self._ping_ticks:
                self._probe = asyncio.ensure_future(self._write(KEEPALIVE))
            else:
                # no byte: it only waits, as any write would, if the client stopped reading
                self._probe = asyncio.ensure_future(self._write(b""))
        self._timer = asyncio.get_running_loop().call_later(self._period, self._tick)

    async def _write(self, body: bytes) -> None:
        assert self._send is not None
        await self._send({"type": "http.response.body", "body": body, "more_body": True})
        if body:
            self.sent += 1


def _reset_connection(send: Send | None) -> None:
    """Reset the client's connection, where the server lets us reach it: uvicorn's `send`
    is a method of its request cycle, which holds the asyncio transport. Elsewhere the run
    still stops, and the server closes the connection its own way."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None or not hasattr(transport, "abort"):
        return
    get_extra_info = getattr(transport, "get_extra_info", None)
    sock = get_extra_info("socket") if get_extra_info is not None else None
    if sock is not None:
        # RST, dropping what the kernel still holds for the client: a plain close would
        # go on offering it to a client that reads nothing, for minutes
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    # not close(): it waits for the unsent buffer to be taken, that is forever
    transport.abort()
