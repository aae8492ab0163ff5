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
from redis.exceptions import RedisError, ResponseError

from tailwinds.transport.frames import closing_frames
from tailwinds.transport.keys import Keys
from tailwinds.transport.resp import Script, bulk, execute_packed, pack_bulks

logger = logging.getLogger("tailwinds.transport")

END_FIELD = b"e"
FRAME_FIELD = b"f"
BLOCK_MS = 5000
_XREAD_BLOCK = bulk(b"XREAD") + bulk(b"BLOCK") + bulk(b"%d" % BLOCK_MS) + bulk(b"STREAMS")


# KEYS: per run, its event stream then its facts; ARGV[1] the streams' bound (approximate
# MAXLEN), ARGV[2] their retention once ended (s), then per run: how many frames, whether
# the last is `end`, and each frame's entry id and bytes. Each XADD on its own, as in a
# pipeline: the errors come back in a list, the other frames are written.
_APPEND = Script(
    """
local maxlen, ttl, a, failed = ARGV[1], ARGV[2], 3, {}
for k = 1, #KEYS, 2 do
  local n, ended = tonumber(ARGV[a]), ARGV[a + 1] == '1'
  a = a + 2
  for j = 1, n do
    local r
    if ended and j == n then
      r = redis.pcall('XADD', KEYS[k], 'MAXLEN', '~', maxlen, ARGV[a], 'f', ARGV[a + 1], 'e', '1')
    else
      r = redis.pcall('XADD', KEYS[k], 'MAXLEN', '~', maxlen, ARGV[a], 'f', ARGV[a + 1])
    end
    if type(r) == 'table' and r.err then failed[#failed + 1] = r.err end
    a = a + 2
  end
  if ended then
    redis.call('EXPIRE', KEYS[k], ttl)
    redis.call('EXPIRE', KEYS[k + 1], ttl)
  end
end
return failed
"""
)
_ENDED = (bulk(b"0"), bulk(b"1"))


class EventWriter:
    """Appends frames to run streams: the frames of one turn of the event loop, of every
    run, go in one `EVALSHA`; one in flight at a time keeps them in order."""

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
        self._bounds = (bulk(b"%d" % max_len), bulk(b"%d" % int(max(retention_s, 1))))
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
            runs: dict[str, list[bytes]] = {}
            ended: set[str] = set()
            for message_id, seq, frame, end in batch:
                frames = runs.get(message_id)
                if frames is None:
                    frames = runs[message_id] = []
                frames += (b"$%d\r\n0-%d\r\n" % (len(b"0-%d" % seq), seq), bulk(frame))
                if end:
                    ended.add(message_id)
            keys: list[bytes] = []
            args: list[bytes] = [*self._bounds]
            for message_id, frames in runs.items():
                keys += (
                    bulk(self.keys.events(message_id).encode()),
                    bulk(self.keys.run(message_id).encode()),
                )
                args += (bulk(b"%d" % (len(frames) // 2)), _ENDED[message_id in ended], *frames)
            try:
                failed = await _APPEND.run(self.redis, keys, args)
                if failed:
                    raise ResponseError(_text(failed[0]))
                self._error = None
            except (RedisError, OSError) as exc:
                self._pending.clear()
                self._error = exc
                self.on_failure(exc)
                return


class Subscription:
    """One relayed stream's frames, handed over in chunks: whatever came since the
    reader last took them, joined (one write to the client per chunk, not per frame)."""

    __slots__ = ("_chunks", "_done", "_waiter", "after", "key", "message_id")

    def __init__(self, key: str, message_id: str, after: int) -> None:
        self.key = key
        self.message_id = message_id
        self.after = after
        self._chunks: list[bytes] = []
        self._done = False  # nothing comes after the chunks held
        self._waiter: asyncio.Future[None] | None = None

    def push(self, frame: bytes) -> None:
        self._chunks.append(frame)
        self._wake()

    def finish(self) -> None:
        self._done = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def frames(self) -> AsyncIterator[bytes]:
        while True:
            chunks = self._chunks
            if chunks:
                self._chunks = []
                yield chunks[0] if len(chunks) == 1 else b"".join(chunks)
            elif self._done:
                return
            else:
                self._waiter = asyncio.get_running_loop().create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None


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
        self._wake_bulk = bulk(self.wake_key.encode())
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

    def add(self, message_id: str, after: int) -> Subscription:
        """A subscription to the run's frames after number `after`, read once this node's
        wake stream (`wake_key`) is written: by `subscribe`, or by the caller."""
        sub = Subscription(self.keys.events(message_id), message_id, after)
        self._subs.setdefault(sub.key, set()).add(sub)
        self._active.set()
        return sub

    async def subscribe(
        self, message_id: str, after: int, counter: str | None = None, counter_ttl_s: int = 0
    ) -> Subscription:
        """A subscription to the run's frames after number `after`; `counter` (a key) is
        incremented in the same round trip (the run's count of readers)."""
        sub = self.add(message_id, after)
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
            # packed by hand: redis-py's packing of hundreds of streams and its parsing of
            # every entry into a dict was most of the relay's cost (transport/resp.py)
            keys = [self._wake_bulk]
            ids = [bulk(wake_from)]
            for key, subs in self._subs.items():
                keys.append(bulk(key.encode()))
                after = min(sub.after for sub in subs) if len(subs) > 1 else next(iter(subs)).after
                ids.append(b"$%d\r\n0-%d\r\n" % (len(b"0-%d" % after), after))
            command = pack_bulks(4 + 2 * len(keys), [_XREAD_BLOCK, *keys, *ids])
            try:
                reply = await execute_packed(self.reads, command)
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
            # a map in RESP3 (redis-py 8's default), pairs in RESP2
            for raw_key, entries in reply.items() if type(reply) is dict else reply or ():
                key = raw_key.decode()
                if key == self.wake_key:
                    wake_from = entries[-1][0]
                    continue
                self._dispatch(key, entries)

    def _dispatch(self, key: str, entries: list[list[Any]]) -> None:
        """`entries`: XREAD's raw reply for one stream, `[[id, [field, value, ...]], ...]`
        (RESP2 arrays; an entry trimmed away meanwhile has no fields)."""
        for sub in list(self._subs.get(key, ())):
            for raw_id, fields in entries:
                seq = int(raw_id[2:])  # our entry ids are `0-<seq>`
                if seq <= sub.after:
                    continue  # a newer reader asked for older entries
                sub.after = seq
                if not fields:
                    continue
                sub.push(fields[1])  # FRAME_FIELD's value: written first
                if len(fields) > 2:  # END_FIELD
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


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value
