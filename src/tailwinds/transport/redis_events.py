"""Run events over Redis Streams: workers append, API nodes read.

Writes are batched across runs: one pipeline per turn of the event loop carries every
frame produced meanwhile, in order. Reads are multiplexed: an API node keeps one blocking
`XREAD` over all the streams it relays, so a thousand streams cost one round trip per
batch, not one per stream and token.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from tailwinds.transport.frames import closing_frames
from tailwinds.transport.keys import Keys, entry_id

logger = logging.getLogger("tailwinds.transport")

END_FIELD = b"e"
FRAME_FIELD = b"f"
BLOCK_MS = 5000


class EventWriter:
    """Appends frames to run streams; one pipeline in flight at a time keeps them in order."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        max_len: int,
        retention_s: float,
        on_failure: Callable[[BaseException], None],
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.max_len = max_len
        self.retention_s = int(max(retention_s, 1))
        self.on_failure = on_failure
        self._pending: list[tuple[str, int, bytes, bool]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._error: BaseException | None = None

    def append(self, message_id: str, seq: int, frame: bytes, end: bool = False) -> None:
        self._pending.append((message_id, seq, frame, end))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def synced(self) -> None:
        """Wait until what was appended so far is in Redis (raises if it cannot be)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)
        if self._error is not None:
            raise self._error

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            pipe = self.redis.pipeline(transaction=False)
            for message_id, seq, frame, end in batch:
                key = self.keys.events(message_id)
                fields: dict[Any, Any] = {FRAME_FIELD: frame}
                if end:
                    fields[END_FIELD] = b"1"
                pipe.xadd(key, fields, id=entry_id(seq), maxlen=self.max_len, approximate=True)
                if end:
                    pipe.expire(key, self.retention_s)
                    pipe.expire(self.keys.run(message_id), self.retention_s)
            try:
                await pipe.execute()
                self._error = None
            except (RedisError, OSError) as exc:
                self._pending.clear()
                self._error = exc
                self.on_failure(exc)
                return


class Subscription:
    __slots__ = ("_queue", "after", "key", "message_id")

    def __init__(self, key: str, message_id: str, after: int) -> None:
        self.key = key
        self.message_id = message_id
        self.after = after
        # chunks of frames, None after the last
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    def push(self, frame: bytes) -> None:
        self._queue.put_nowait(frame)

    def finish(self) -> None:
        self._queue.put_nowait(None)

    async def frames(self) -> AsyncIterator[bytes]:
        while True:
            frame = await self._queue.get()
            if frame is None:
                return
            yield frame


class EventReader:
    """One API node's reader of run streams.

    Its blocking reads have a client of their own that never sends a read again: a read
    cut by Redis going away may have lost entries (a restart without persistence), so the
    streams it carried end with `transport_lost` instead of going on with a gap. Its
    connection is made afresh each time the reader wakes from having nothing to read: one
    that died meanwhile (Redis restarted while no stream was relayed) would otherwise cut
    the first stream after the restart."""

    def __init__(self, redis: Redis, reads: Redis, keys: Keys, node_id: str) -> None:
        self.redis = redis
        self.reads = reads
        self.keys = keys
        self.wake_key = keys.wake(node_id)
        self._subs: dict[str, set[Subscription]] = {}
        self._active = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.connected = True

    @property
    def subscriptions(self) -> int:
        return sum(len(subs) for subs in self._subs.values())

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.end_all("transport_lost", "the server is shutting down")
        await self.reads.aclose()

    async def subscribe(
        self, message_id: str, after: int, counter: str | None = None, counter_ttl_s: int = 0
    ) -> Subscription:
        """A subscription to the run's frames after number `after`; `counter` (a key) is
        incremented in the same round trip (the run's count of readers)."""
        sub = Subscription(self.keys.events(message_id), message_id, after)
        self._subs.setdefault(sub.key, set()).add(sub)
        self._active.set()
        # interrupt the blocking read so that the next one includes this stream
        pipe = self.redis.pipeline(transaction=False)
        pipe.xadd(self.wake_key, {b"w": b""}, maxlen=10, approximate=True)
        pipe.expire(self.wake_key, 3600)  # gone an hour after this node stops using it
        if counter is not None:
            pipe.incr(counter)
            pipe.expire(counter, counter_ttl_s)
        try:
            await pipe.execute()
        except BaseException:
            self.unsubscribe(sub)  # the caller never gets it, to unsubscribe
            raise
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.key)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.key]

    async def _loop(self) -> None:
        # from the start of the node's own wake stream, not "$": a stream subscribed while
        # the first read is on its way would wait out a whole block (5 s) for its frames
        wake_from = b"0-0"
        backoff = 0.1
        while True:
            if not self._subs:
                self._active.clear()
                await self._active.wait()
                await self.reads.connection_pool.disconnect()
            streams: dict[Any, Any] = {self.wake_key: wake_from}
            for key, subs in self._subs.items():
                streams[key] = entry_id(min(sub.after for sub in subs))
            try:
                reply = await self.reads.xread(streams, block=BLOCK_MS)
            except (RedisError, OSError) as exc:
                logger.warning("reading run events from Redis failed: %s", exc)
                self.connected = False
                self.end_all(
                    "transport_lost", "the connection to Redis, which carries the events, was lost"
                )
                await self.reads.connection_pool.disconnect()  # none of them is any good now
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            self.connected = True
            backoff = 0.1
            for raw_key, entries in reply:
                key = raw_key.decode()
                if key == self.wake_key:
                    wake_from = entries[-1][0]
                    continue
                self._dispatch(key, entries)

    def _dispatch(self, key: str, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        for sub in list(self._subs.get(key, ())):
            for raw_id, fields in entries:
                seq = int(raw_id.split(b"-", 1)[1])
                if seq <= sub.after:
                    continue  # a newer reader asked for older entries
                sub.after = seq
                sub.push(fields[FRAME_FIELD])
                if END_FIELD in fields:
                    sub.finish()
                    self.unsubscribe(sub)
                    break

    def end_all(self, code: str, why: str) -> None:
        """End every relayed stream now with `error` {code} and `end` (the runs go on on
        their workers, and a resumable one can be picked up on another node)."""
        frames = closing_frames(code, why)
        for subs in list(self._subs.values()):
            for sub in subs:
                sub.push(frames)
                sub.finish()
        self._subs.clear()
