"""New requests yield to running streams: one starts its work per turn of the event loop.

A turn of the loop runs every callback that is ready, then polls the sockets. When two
hundred requests arrive together, their handlers (routing, validation, admission, opening
the model's request: ~0.5 ms each) would all run in one turn, and every token that
arrived meanwhile would wait for all of them: measured at 200 paced streams (the bench's
start burst), the first tokens of the streams already running were 25 to 50 ms late at the
p99. Let requests in one a turn and the sockets are polled between them: the burst takes as
long as before, the tokens no longer wait for it (p99 5 to 20 ms, the rest ~5 ms). One a
turn measured better than two or four; an idle server starts a request at once.
"""

from __future__ import annotations

import asyncio
from collections import deque

PER_TURN = 1


class RequestPacing:
    def __init__(self, per_turn: int = PER_TURN) -> None:
        self.per_turn = per_turn
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._refill: asyncio.TimerHandle | None = None

    async def turn(self) -> None:
        """Return when this request may start its work."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # the first request, or an app served again (tests)
            self._loop = loop
            self._started = 0
            self._waiting.clear()
            self._refill = None
        if self._started < self.per_turn and not self._waiting:
            self._take()
            return
        waiter = loop.create_future()
        self._waiting.append(waiter)
        self._schedule_refill()
        await waiter  # cancelled (the client left): the refill skips it

    def _take(self) -> None:
        self._started += 1
        self._schedule_refill()

    def _schedule_refill(self) -> None:
        if self._refill is None:
            # a timer, not call_soon: due timers run in the next turn, after the poll
            self._refill = self._loop.call_later(0, self._next_turn)  # type: ignore[union-attr]

    def _next_turn(self) -> None:
        self._refill = None
        self._started = 0
        while self._waiting and self._started < self.per_turn:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._take()
