"""The SSE transport: events in, one body chunk per event out, flushed as it comes.

A raw ASGI response rather than `StreamingResponse`, for three things it does not do:
keep-alive comments during silences, stopping the run the moment the client leaves (a
watcher on `receive` cancels the task that drives the run, which closes the upstream
request), and keeping a run going when an abort's cancel lands between two events.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tailwinds.engine.events import KEEPALIVE, Event, encode_event
from tailwinds.metrics import ACTIVE_STREAMS

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    # nginx and friends buffer responses unless told not to
    (b"x-accel-buffering", b"no"),
]


# where the app leaves the server's `send` in the scope (see `TailwindsAPI`)
RAW_SEND = "tailwinds.send"


class SSEResponse(Response):
    media_type = "text/event-stream"

    def __init__(
        self,
        events: AsyncIterator[Event] | AsyncIterator[bytes],
        keepalive_s: float,
        headers: dict[str, str] | None = None,
    ) -> None:
        """`events` are the runner's events, or frames already encoded (a relayed or
        resumable stream)."""
        self.status_code = 200
        self.background = None
        self.headers_list = SSE_HEADERS + [
            (k.lower().encode(), v.encode()) for k, v in (headers or {}).items()
        ]
        self.events = events
        self.keepalive_s = keepalive_s
        self.sent = 0
        self.disconnected = False
        self._seen = -1
        self._send: Send | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._pinging: asyncio.Future[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        assert task is not None
        await send({"type": "http.response.start", "status": 200, "headers": self.headers_list})
        # the middlewares have seen the start: what follows needs none of them
        send = scope.get(RAW_SEND, send)
        ACTIVE_STREAMS.inc()
        watcher = asyncio.create_task(self._watch(receive, task))
        if self.keepalive_s > 0:
            self._send = send
            self._timer = asyncio.get_running_loop().call_later(self.keepalive_s, self._tick)
        try:
            await self._pump(send)
        except asyncio.CancelledError:
            if not self.disconnected:
                raise
            task.uncancel()  # we cancelled ourselves because the client left: not an error
        finally:
            ACTIVE_STREAMS.dec()
            watcher.cancel()
            if self._timer is not None:
                self._timer.cancel()
            if self._pinging is not None:
                self._pinging.cancel()
            await self.events.aclose()  # type: ignore[attr-defined]
        if not self.disconnected:
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _pump(self, send: Send) -> None:
        next_event = self.events.__anext__
        while True:
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

    async def _watch(self, receive: Receive, task: asyncio.Task[Any]) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                task.cancel()
                return

    def _tick(self) -> None:
        # a timer, not a task per stream: a ping's task exists only while a stream is silent
        assert self._send is not None
        if self.sent == self._seen and (self._pinging is None or self._pinging.done()):
            self._pinging = asyncio.ensure_future(
                self._send({"type": "http.response.body", "body": KEEPALIVE, "more_body": True})
            )
        self._seen = self.sent
        self._timer = asyncio.get_running_loop().call_later(self.keepalive_s, self._tick)
