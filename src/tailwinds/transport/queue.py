"""Queue mode, API side: enqueue a prediction as a job, relay its event stream to the
client, and send aborts to whichever worker runs it."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncGenerator, Callable

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from tailwinds.background import BackgroundTasks
from tailwinds.config import Settings
from tailwinds.engine.events import StartEvent
from tailwinds.errors import QueueFull, StreamNotFound, TransportLost
from tailwinds.metrics import EVENT_SUBSCRIPTIONS, RATE_LIMITED
from tailwinds.transport.frames import closing_frames, numbered
from tailwinds.transport.jobs import Job
from tailwinds.transport.keys import Keys, entry_id, entry_seq
from tailwinds.transport.redis_connection import connection_class
from tailwinds.transport.redis_events import BLOCK_MS, END_FIELD, EventReader, Subscription
from tailwinds.transport.redis_turns import RedisTurns

logger = logging.getLogger("tailwinds.transport")

# how long the facts of a run may stay when nothing ends it properly
RUN_TTL_S = 24 * 3600
# per process; the blocking reads hold one or two of them for good
MAX_CONNECTIONS = 64
# a command that meets a dead connection is tried again this many times, on fresh ones
# (backoff 0.05 s doubling to 0.5 s: ~1.3 s in all, a restart's usual gap)
RECONNECTS = 4


def connect(url: str, reconnects: int = RECONNECTS) -> Redis:
    """A process's Redis client (API node: relay, limiter, chat leases; worker: jobs,
    events, leases). `reconnects=0`: a failed command is not sent again (the API node's
    blocking reads of run streams, see `EventReader`)."""
    # Blocking reads wait at most BLOCK_MS (5 s), so a read that takes three times that is
    # a dead server (redis-py's default socket timeout, 5 s, would cut every quiet stream
    # at 5 s).
    # A connection that died while idle (Redis restarted) is never a job's failure: one
    # idle for a second is pinged before use, and a command or ping that meets a closed
    # connection is sent again on a fresh one (a pool built by hand gets no retry from
    # redis-py: without one, the first command after a restart failed, and its job waited
    # out a lease). Only connection errors: a timeout may be a command Redis ran.
    # A blocking pool: under a burst of new streams a command waits for a free connection
    # (the default pool refuses past its size with "Too many connections").
    pool = BlockingConnectionPool.from_url(
        url,
        connection_class=connection_class(url),  # cancels are never lost: see its module
        max_connections=MAX_CONNECTIONS,
        timeout=10,
        socket_connect_timeout=2,
        socket_timeout=3 * BLOCK_MS / 1000,
        socket_keepalive=True,
        health_check_interval=1 if reconnects else 0,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), reconnects, (RedisConnectionError,)),
    )
    return Redis(connection_pool=pool)


class QueueClient:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = Keys(settings.redis_prefix)
        self.redis = connect(settings.redis_url)
        self.node_id = uuid.uuid4().hex[:12]
        self.reader = EventReader(
            self.redis, connect(settings.redis_url, reconnects=0), self.keys, self.node_id
        )
        self.turns = RedisTurns(self.redis, self.keys, settings.worker_lease_s, self.abort_runs)
        self._timers = BackgroundTasks()  # grace periods of streams whose client left

    async def open(self) -> None:
        await self.redis.ping()
        self.reader.start()
        EVENT_SUBSCRIPTIONS.set_function(lambda: self.reader.subscriptions)

    async def close(self) -> None:
        self._timers.cancel()
        await self.turns.close()
        await self.reader.stop()
        await self.redis.aclose()

    async def ready(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except (RedisError, OSError):
            return False

    async def depth(self) -> int | None:
        """Jobs waiting or running (acknowledged ones are deleted), or None without Redis."""
        try:
            return int(await self.redis.xlen(self.keys.jobs))
        except (RedisError, OSError):
            return None

    async def enqueue(self, job: Job) -> bytes:
        """Queue the job; returns its `start` frame, already in its stream as `id: 1`."""
        keys = self.keys
        try:
            # one round trip for both limits: counted first, given back when refused
            queued_key = keys.queued(job.chatflow_id)
            pipe = self.redis.pipeline(transaction=False)
            pipe.xlen(keys.jobs)
            pipe.incr(queued_key)
            pipe.expire(queued_key, RUN_TTL_S)  # a count lost with a crash heals in a day
            total, queued, _ = await pipe.execute()
            if total >= self.settings.queue_max:
                await self.redis.decr(queued_key)
                raise self._full(f"the queue holds {total} predictions, its limit")
            if queued > self.settings.queue_max_per_chatflow:
                await self.redis.decr(queued_key)
                raise self._full(
                    f"this chatflow has {queued - 1} predictions queued or running, its limit"
                )
            start = numbered(1, StartEvent(job.chat_id, job.message_id))
            events = keys.events(job.message_id)
            chat = keys.chat(job.chatflow_id, job.chat_id)
            pipe = self.redis.pipeline(transaction=True)
            pipe.hset(
                keys.run(job.message_id),
                mapping={"chatflow": job.chatflow_id, "chat": job.chat_id, "grace": job.grace_s},
            )
            pipe.expire(keys.run(job.message_id), RUN_TTL_S)
            pipe.xadd(events, {b"f": start}, id=entry_id(1))
            pipe.expire(events, RUN_TTL_S)
            pipe.sadd(chat, job.message_id)
            pipe.expire(chat, RUN_TTL_S)
            pipe.xadd(keys.jobs, {b"j": job.dumps()})
            await pipe.execute()
        except (RedisError, OSError) as exc:
            raise TransportLost(f"the job queue (Redis) is not reachable: {exc}") from exc
        return start

    def _full(self, why: str) -> QueueFull:
        RATE_LIMITED.labels("queue").inc()
        return QueueFull(f"{why}; try again shortly", retry_after_s=1)

    async def check_stream(self, chatflow_id: str, message_id: str) -> float:
        """The grace of a run that may be resumed; StreamNotFound when there is none."""
        try:
            facts = await self.redis.hgetall(self.keys.run(message_id))
        except (RedisError, OSError) as exc:
            raise TransportLost(f"the event streams (Redis) are not reachable: {exc}") from exc
        if not facts or facts.get(b"chatflow", b"").decode() != chatflow_id:
            raise StreamNotFound(
                f"no stream {message_id} of chatflow {chatflow_id}: it ended too long ago, "
                "or never was"
            )
        return float(facts.get(b"grace", b"0"))

    async def ended_by(self, message_id: str, after: int) -> bool:
        """Whether the run's last event, `end`, is number `after` or before it."""
        try:
            last = await self.redis.xrevrange(self.keys.events(message_id), count=1)
        except (RedisError, OSError) as exc:
            raise TransportLost(f"the event streams (Redis) are not reachable: {exc}") from exc
        if not last:
            return False
        entry, fields = last[0]
        return (
            entry is not None
            and fields is not None
            and END_FIELD in fields
            and (entry_seq(entry) <= after)
        )

    def relay(
        self,
        message_id: str,
        after: int,
        grace_s: float,
        first: bytes | None = None,
        release: Callable[[], None] | None = None,
    ) -> Relay:
        """The frames of a run after number `after` (`first` before them), live, until
        `end`. When the client leaves first: cancel the run at once, or after `grace_s` if
        nobody reads by then; `release` once the relay is over, however it ends."""
        return Relay(
            self, message_id, grace_s, self._frames(message_id, after, grace_s), first, release
        )

    async def _frames(
        self, message_id: str, after: int, grace_s: float
    ) -> AsyncGenerator[bytes, None]:
        readers = self.keys.readers(message_id)
        sub: Subscription | None = None
        counted = False  # whether this reader is in the run's count of readers
        finished = False
        try:
            try:
                # counted among the run's readers in the same round trip
                sub = await self.reader.subscribe(message_id, after, readers, RUN_TTL_S)
                counted = True
            except (RedisError, OSError) as exc:
                # the stream has begun: it ends with a reason, not a broken connection
                finished = True  # nothing to tell the workers: Redis carries that too
                yield closing_frames("transport_lost", f"Redis, which carries the events: {exc}")
                return
            async for frame in sub.frames():
                yield frame
            finished = True
        finally:
            # also when the client left before the first frame (while subscribing)
            if sub is not None:
                self.reader.unsubscribe(sub)
            if not finished:
                self._timers.spawn(self._left(message_id, grace_s, counted))

    async def _left(self, message_id: str, grace_s: float, counted: bool = True) -> None:
        readers = self.keys.readers(message_id)
        try:
            left = await self.redis.decr(readers) if counted else 0
            if grace_s > 0:
                await asyncio.sleep(grace_s)
                left = int(await self.redis.get(readers) or 0)
            if left <= 0:
                await self.abort_runs([message_id])
        except (RedisError, OSError) as exc:
            logger.warning("could not stop run %s after its client left: %s", message_id, exc)

    async def running_in(self, chatflow_id: str, chat_id: str) -> list[str]:
        """The message ids of the chat's predictions queued or running (the set `enqueue`
        adds to and the worker empties once the turn is stored)."""
        try:
            running = await self.redis.smembers(self.keys.chat(chatflow_id, chat_id))
        except (RedisError, OSError) as exc:
            raise TransportLost(f"the job queue (Redis) is not reachable: {exc}") from exc
        return sorted(m.decode() if isinstance(m, bytes) else m for m in running)

    async def abort_chat(self, chatflow_id: str, chat_id: str) -> int:
        try:
            running = await self.redis.smembers(self.keys.chat(chatflow_id, chat_id))
            ids = [m.decode() for m in running]
            if ids:
                await self.abort_runs(ids)
        except (RedisError, OSError) as exc:
            raise TransportLost(f"the abort could not be sent (Redis): {exc}") from exc
        return len(ids)

    async def abort_runs(self, message_ids: list[str]) -> None:
        await abort_runs(self.redis, self.keys, message_ids)


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
        "_release",
        "_started",
    )

    def __init__(
        self,
        client: QueueClient,
        message_id: str,
        grace_s: float,
        frames: AsyncGenerator[bytes, None],
        first: bytes | None,
        release: Callable[[], None] | None,
    ) -> None:
        self._client = client
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
                client._timers.spawn(client._left(self._message_id, self._grace_s, False))
        finally:
            self._released()

    def _released(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()


async def abort_runs(redis: Redis, keys: Keys, message_ids: list[str]) -> None:
    """Mark the runs aborted (a worker that has not started one yet sees it) and tell every
    worker (the one running it stops it)."""
    pipe = redis.pipeline(transaction=False)
    for message_id in message_ids:
        pipe.set(keys.aborted(message_id), b"1", ex=RUN_TTL_S)
    pipe.xadd(keys.control, {b"abort": " ".join(message_ids)}, maxlen=10_000, approximate=True)
    await pipe.execute()
