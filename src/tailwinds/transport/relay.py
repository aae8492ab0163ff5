"""One client's relay of a run in queue mode (`QueueClient.relay`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from tailwinds.transport.counts import count_once
from tailwinds.transport.redis_events import Subscription

if TYPE_CHECKING:
    from tailwinds.transport.queue import QueueClient

logger = logging.getLogger("tailwinds.transport")


class Relay:
    """One client's relay of a run (`QueueClient.relay`): an async iterator of frames.

    Not a bare async generator: `aclose()` of one that never started runs none of its
    code, and a client that left before its first frame would leave the run going for
    nobody. Closed or failed at any point, the relay tells the run its reader left and
    calls `release`, once."""

    __slots__ = (
        "__weakref__",
        "_client",
        "_first",
        "_frames",
        "_grace_s",
        "_message_id",
        "_reader",
        "_release",
        "_started",
        "_sub",
    )

    def __init__(
        self,
        client: QueueClient,
        message_id: str,
        grace_s: float,
        frames: AsyncGenerator[bytes, None],
        first: bytes | None,
        release: Callable[[], None] | None,
        sub: Subscription | None = None,
        reader: str = "",
    ) -> None:
        self._client = client
        self._sub = sub  # subscribed and counted before the relay began
        self._reader = reader  # its mark in the run's count of readers
        self._message_id = message_id
        self._grace_s = grace_s
        self._frames = frames
        self._first = first
        self._release = release
        self._started = False  # the generator ran: its own `finally` tells the run

    def __aiter__(self) -> Relay:
        return self

    async def __anext__(self) -> bytes:
        first = self._first
        if first is not None:
            self._first = None
            return first
        self._started = True
        try:
            return await self._frames.__anext__()
        except BaseException:
            self._released()
            raise

    async def aclose(self) -> None:
        self._first = None
        try:
            if self._started:
                await self._frames.aclose()
            else:
                self._started = True
                await self._frames.aclose()  # runs nothing: closes it for good
                client = self._client
                counted = self._sub is not None
                if self._sub is not None:
                    client.reader.unsubscribe(self._sub)
                reader = self._reader if counted else None
                client._timers.spawn(left(client, self._message_id, self._grace_s, reader))
        finally:
            self._released()

    def _released(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()


async def left(client: QueueClient, message_id: str, grace_s: float, reader: str | None) -> None:
    """A reader of the run left: counted out (`reader`: its mark in the run's count of
    readers, None when it was never counted), the run is stopped when nobody reads it, at
    once or after `grace_s` if nobody came back by then."""
    readers = client.keys.readers(message_id)
    try:
        remaining = 0
        if reader is not None:
            out = f"{readers}:out:{reader}"
            remaining = int(await count_once(client.redis, readers, out, -1))
        if grace_s > 0:
            await asyncio.sleep(grace_s)
            remaining = int(await client.redis.get(readers) or 0)
        if remaining <= 0:
            await client.abort_runs([message_id])
    except (RedisError, OSError) as exc:
        logger.warning("could not stop run %s after its client left: %s", message_id, exc)
