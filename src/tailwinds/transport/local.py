"""Resumable runs in one process: the run is driven by its own task into an in-memory log,
and clients read the log from where they were, as often as they reconnect.

While no client reads, the run goes on for its grace period, then is cancelled (stored as
aborted). A finished run's log stays readable for `retention_s`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from tailwinds.background import BackgroundTasks
from tailwinds.engine.events import EndEvent, Event
from tailwinds.errors import RunCancelled, StreamNotFound
from tailwinds.transport.frames import numbered


class RunLog:
    __slots__ = (
        "_grace_timer",
        "_waiter",
        "chatflow_id",
        "done",
        "frames",
        "grace_s",
        "json_answer",
        "message_id",
        "on_abandoned",
        "readers",
    )

    def __init__(
        self,
        chatflow_id: str,
        message_id: str,
        grace_s: float,
        on_abandoned: Callable[[RunLog], None],
    ) -> None:
        self.chatflow_id = chatflow_id
        self.message_id = message_id
        self.grace_s = grace_s
        self.on_abandoned = on_abandoned
        self.frames: list[bytes] = []  # frame n has `id: n+1`
        self.done = False
        self.readers = 0
        # a JSON answer that may wait for a person (runs/waiting.py): the decision route
        # answers with the rest of it
        self.json_answer = False
        self._waiter: asyncio.Future[None] | None = None
        self._grace_timer: asyncio.TimerHandle | None = None

    def append(self, event: Event) -> None:
        self.frames.append(numbered(len(self.frames) + 1, event))
        if type(event) is EndEvent:
            self.done = True
            self._cancel_grace()
        self._wake()

    def close(self) -> None:
        """The run is over, whether or not it wrote `end` (it always does, short of a bug)."""
        self.done = True
        self._cancel_grace()
        self._wake()

    async def read(self, after: int) -> AsyncIterator[bytes]:
        """The frames after number `after`, then the live rest, until `end`."""
        self.readers += 1
        self._cancel_grace()
        try:
            cursor = min(after, len(self.frames))
            while True:
                if cursor < len(self.frames):
                    cursor += 1
                    yield self.frames[cursor - 1]
                    continue
                if self.done:
                    return
                if self._waiter is None:
                    self._waiter = asyncio.get_running_loop().create_future()
                await asyncio.shield(self._waiter)
        finally:
            self.readers -= 1
            if self.readers == 0 and not self.done:
                self._grace_timer = asyncio.get_running_loop().call_later(
                    self.grace_s, self.on_abandoned, self
                )

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set_result(None)

    def _cancel_grace(self) -> None:
        if self._grace_timer is not None:
            self._grace_timer.cancel()
            self._grace_timer = None


class LocalRelays:
    """The resumable runs of this process, by message id."""

    def __init__(self, retention_s: float, abort_run: Callable[[str, RunCancelled], bool]) -> None:
        self.retention_s = retention_s
        self._abort_run = abort_run
        self._logs: dict[str, RunLog] = {}
        self._tasks = BackgroundTasks()

    def start(
        self, chatflow_id: str, message_id: str, grace_s: float, events: AsyncIterator[Event]
    ) -> RunLog:
        log = RunLog(chatflow_id, message_id, grace_s, self._abandoned)
        self._logs[message_id] = log
        self._tasks.spawn(self._drive(log, events))
        return log

    def get(self, chatflow_id: str, message_id: str) -> RunLog:
        log = self._logs.get(message_id)
        if log is None or log.chatflow_id != chatflow_id:
            raise StreamNotFound(
                f"no resumable stream {message_id} of chatflow {chatflow_id}: it was not "
                "asked with resumeGraceSeconds, or it ended too long ago"
            )
        return log

    async def _drive(self, log: RunLog, events: AsyncIterator[Event]) -> None:
        try:
            async for event in events:
                log.append(event)
        finally:
            log.close()
            loop = asyncio.get_running_loop()
            loop.call_later(self.retention_s, self._logs.pop, log.message_id, None)

    def _abandoned(self, log: RunLog) -> None:
        self._abort_run(
            log.message_id,
            RunCancelled(f"nobody read the stream for {log.grace_s:g} s after its client left"),
        )

    async def drain(self) -> None:
        await self._tasks.drain()
