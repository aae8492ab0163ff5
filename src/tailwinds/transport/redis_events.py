"""Run events over Redis Streams, API side: an API node's reader of the runs it relays
(the workers' side is `redis_writer.py`).

Reads are multiplexed: an API node keeps one blocking `XREAD`, over its relay stream (the
runs it queued) and the other run streams it relays, so a thousand streams cost one round
trip per batch, not one per stream and token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from tailwinds.transport.counts import count_once
from tailwinds.transport.frames import closing_frames
from tailwinds.transport.keys import Keys
from tailwinds.transport.resp import HeldConnection, bulk, pack, pack_bulks

logger = logging.getLogger("tailwinds.transport")

END_FIELD = b"e"
FRAME_FIELD = b"f"
BLOCK_MS = 5000
# how often a reader trims what it read from its relay stream (s)
TRIM_EVERY_S = 1.0
# how often a reader with nothing to relay still reads (and so trims) its relay stream (s):
# the runs whose clients left go on writing there
IDLE_TRIM_S = 10.0
_XREAD_BLOCK = bulk(b"XREAD") + bulk(b"BLOCK") + bulk(b"%d" % BLOCK_MS) + bulk(b"STREAMS")


class Subscription:
    """One relayed stream's frames, handed over in chunks: whatever came since the
    reader last took them, joined (one write to the client per chunk, not per frame)."""

    __slots__ = ("_chunks", "_done", "_waiter", "after", "key", "message_id", "relayed")

    def __init__(self, key: str, message_id: str, after: int, relayed: bool) -> None:
        self.key = key
        self.message_id = message_id
        self.after = after
        self.relayed = relayed  # read from the node's relay stream, not the run's own
        self._chunks: list[bytes] = []
        self._done = False  # nothing comes after the chunks held
        self._waiter: asyncio.Future[None] | None = None

    def push(self, frames: bytes) -> None:
        self._chunks.append(frames)
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

    The runs this node queued come on its own relay stream (`Keys.relay`): the worker
    writes each batch of a run's frames there too, as one entry, so one blocking `XREAD`
    of one stream carries them all, however many there are. Other runs it relays (a resume
    of another node's run, a stream that fell behind its relay stream) are read from their
    own streams, named in the same `XREAD`. A run's frames from the relay stream must
    follow on from what its reader had; a gap (never seen so far) moves that reader to the
    run's own stream, where nothing is missing. The reader trims its relay stream to what
    it has read, about every second.

    Its blocking reads have a client of their own that never sends a read again: a read
    cut by Redis going away may have lost entries (a restart without persistence), so the
    streams it carried end with `transport_lost` instead of going on with a gap. Its
    connection is made afresh each time the reader wakes from having nothing to read: one
    that died meanwhile (Redis restarted while no stream was relayed) would otherwise cut
    the first stream after the restart."""

    def __init__(self, redis: Redis, reads: Redis, keys: Keys, node_id: str) -> None:
        self.redis = redis
        self.reads = reads
        self._reading = HeldConnection(reads)  # the loop's one read at a time
        self.keys = keys
        self.node_id = node_id
        self.wake_key = keys.wake(node_id)
        self.relay_key = keys.relay(node_id)
        self._wake_bulk = bulk(self.wake_key.encode())
        self._relay_bulk = bulk(self.relay_key.encode())
        self._subs: dict[str, set[Subscription]] = {}  # read from their own streams
        self._relayed: dict[str, set[Subscription]] = {}  # by message id
        self._active = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.connected = True

    @property
    def subscriptions(self) -> int:
        return sum(len(s) for s in self._subs.values()) + sum(
            len(s) for s in self._relayed.values()
        )

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.end_all("transport_lost", "the server is shutting down")
        await self.reads.aclose()

    def add(self, message_id: str, after: int, relayed: bool = False) -> Subscription:
        """A subscription to the run's frames after number `after`. `relayed`: they come
        on this node's relay stream (a job queued with `Job.relay` = `node_id`); else they
        are read from the run's stream once this node's wake stream (`wake_key`) is
        written, by `subscribe` or by the caller."""
        sub = Subscription(self.keys.events(message_id), message_id, after, relayed)
        if relayed:
            self._relayed.setdefault(message_id, set()).add(sub)
        else:
            self._subs.setdefault(sub.key, set()).add(sub)
        self._active.set()
        return sub

    async def subscribe(
        self, message_id: str, after: int, counter: tuple[str, str, int] | None = None
    ) -> Subscription:
        """A subscription to the run's own stream after number `after`; `counter`: a count
        (the run's readers), its change's mark and its expiry (s), counted up once in the
        same round trip (`counts.count_once`)."""
        sub = self.add(message_id, after)
        # interrupt the blocking read so that the next one includes this stream
        pipe = self.redis.pipeline(transaction=False)
        pipe.xadd(self.wake_key, {b"w": b""}, maxlen=10, approximate=True)
        pipe.expire(self.wake_key, 3600)  # gone an hour after this node stops using it
        if counter is not None:
            key, mark, expire_s = counter
            count_once(pipe, key, mark, 1, expire_s)
        try:
            await pipe.execute()
        except BaseException:
            self.unsubscribe(sub)  # the caller never gets it, to unsubscribe
            raise
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        by, key = (self._relayed, sub.message_id) if sub.relayed else (self._subs, sub.key)
        subs = by.get(key)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del by[key]

    async def _loop(self) -> None:
        # from the start of the node's own wake and relay streams, not "$": a stream
        # subscribed while the first read is on its way would wait out a whole block (5 s)
        wake_from = relay_from = b"0-0"
        trimmed_to, trimmed_at = relay_from, 0.0
        backoff = 0.1
        loop = asyncio.get_running_loop()
        while True:
            if not self._subs and not self._relayed:
                # nothing to relay; still read now and then: the runs whose clients left
                # (a grace, a resume elsewhere) go on writing to the relay stream, which
                # only this reader trims
                self._active.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._active.wait(), IDLE_TRIM_S)
                await self.reads.connection_pool.disconnect()
            # packed by hand: redis-py's packing of hundreds of streams and its parsing of
            # every entry into a dict was most of the relay's cost (transport/resp.py)
            keys = [self._wake_bulk, self._relay_bulk]
            ids = [bulk(wake_from), bulk(relay_from)]
            for key, subs in self._subs.items():
                keys.append(bulk(key.encode()))
                after = min(sub.after for sub in subs) if len(subs) > 1 else next(iter(subs)).after
                ids.append(b"$%d\r\n0-%d\r\n" % (len(b"0-%d" % after), after))
            command = pack_bulks(4 + 2 * len(keys), [_XREAD_BLOCK, *keys, *ids])
            replies = 1
            if relay_from != trimmed_to and loop.time() - trimmed_at > TRIM_EVERY_S:
                # what was read goes, in the same write as the next read
                command = pack([b"XTRIM", self.relay_key.encode(), b"MINID", relay_from]) + command
                trimmed_to, trimmed_at, replies = relay_from, loop.time(), 2
            try:
                reply = await self._reading.execute(command, replies)
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
                if key == self.relay_key:
                    relay_from = entries[-1][0]
                    self._dispatch_relayed(entries)
                elif key == self.wake_key:
                    wake_from = entries[-1][0]
                else:
                    self._dispatch(key, entries)

    def _dispatch(self, key: str, entries: list[list[Any]]) -> None:
        """`entries`: XREAD's raw reply for one run's stream, `[[id, [field, value, ...]],
        ...]` (RESP arrays; an entry trimmed away meanwhile has no fields)."""
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

    def _dispatch_relayed(self, entries: list[list[Any]]) -> None:
        """`entries` of the relay stream: `[id, [b"m", message id, b"a", first entry id,
        b"z", last entry id, b"f", frames(, b"e", b"1")]]` (see the writer's script)."""
        relayed = self._relayed
        for _, fields in entries:
            subs = relayed.get(fields[1].decode()) if fields else None
            if not subs:
                continue  # its client left, or it reads the run's own stream now
            first, last = int(fields[3][2:]), int(fields[5][2:])
            for sub in list(subs):
                if last <= sub.after:
                    continue
                if first != sub.after + 1:
                    # not what follows what it has: the run's own stream has it all
                    logger.warning("run %s: relayed frames skipped ahead", sub.message_id)
                    self.unsubscribe(sub)
                    sub.relayed = False
                    self._subs.setdefault(sub.key, set()).add(sub)
                    continue
                sub.after = last
                sub.push(fields[7])
                if len(fields) > 8:  # ended
                    sub.finish()
                    self.unsubscribe(sub)

    def end_all(self, code: str, why: str) -> None:
        """End every relayed stream now with `error` {code} and `end` (the runs go on on
        their workers, and a resumable one can be picked up on another node)."""
        frames = closing_frames(code, why)
        for by in (self._subs, self._relayed):
            for subs in list(by.values()):
                for sub in subs:
                    sub.push(frames)
                    sub.finish()
            by.clear()
