"""Queue mode, API side: enqueue a prediction as a job, relay its event stream to the
client, and send aborts to whichever worker runs it."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import UnixDomainSocketConnection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from tailwinds.background import BackgroundTasks
from tailwinds.config import Settings
from tailwinds.engine.events import StartEvent
from tailwinds.errors import QueueFull, RunCancelled, StreamNotFound, TransportLost
from tailwinds.metrics import EVENT_SUBSCRIPTIONS, RATE_LIMITED
from tailwinds.store.messages import StoredTurn
from tailwinds.transport.frames import closing_frames, numbered
from tailwinds.transport.job_withdrawal import withdraw
from tailwinds.transport.jobs import Job
from tailwinds.transport.keys import RUN_TTL_S, Keys, entry_seq
from tailwinds.transport.redis_batch import BatchedScript, PipelineBatch
from tailwinds.transport.redis_connection import url_options
from tailwinds.transport.redis_events import BLOCK_MS, END_FIELD, EventReader, Subscription
from tailwinds.transport.redis_turns import RedisTurns
from tailwinds.transport.relay import Relay, left

logger = logging.getLogger("tailwinds.transport")

# per process; the blocking reads and the event writer hold one or two of them for good
MAX_CONNECTIONS = 64
# a command that meets a dead connection is tried again this many times, on fresh ones
# (backoff 0.05 s doubling to 0.5 s: ~1.3 s in all, a restart's usual gap)
RECONNECTS = 4


def connect(
    url: str, reconnects: int = RECONNECTS, timeout_s: float = 3 * BLOCK_MS / 1000
) -> Redis:
    """A process's Redis client (API node: relay, limiter, chat leases; worker: jobs,
    events, leases). `reconnects=0`: a failed command is not sent again (the API node's
    blocking reads of run streams, see `EventReader`). `timeout_s`: how long a command's
    reply may take. A URL redis-py cannot read raises `ValueError` (its text may hold the
    URL's password), one with an option the clients set themselves `RefusedOption`."""
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
    given = url_options(url)  # cancellable connections: cancels are never lost
    options: dict[str, Any] = {
        "max_connections": MAX_CONNECTIONS,
        "timeout": 10,
        "socket_connect_timeout": 2,
        "socket_timeout": timeout_s,
        "health_check_interval": 1 if reconnects else 0,
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), reconnects, (RedisConnectionError,)),
    }
    if not issubclass(given["connection_class"], UnixDomainSocketConnection):
        options["socket_keepalive"] = True  # a TCP option: a Unix socket refuses it
    # RESP2 and bytes: redis-py 8.2 asks for RESP3 by default (HELLO 3), where XREAD's
    # replies are maps, and the token path reads replies without redis-py's callbacks
    # (`resp`), in the shapes they were written and measured against (RESP3 measured no
    # cheaper: bench/RESULTS.md). The URL cannot change either (`url_options`).
    options.update(given, protocol=2)
    pool = BlockingConnectionPool(**options)
    return Redis.from_pool(pool)  # owned: `aclose()` closes its connections


# XAUTOCLAIM (lost workers' jobs) and its third reply, the deleted entries it dropped from
# the pending list (a job withdrawn by its abort): Redis 7.0. On 6.2 such a job stays
# pending for ever and is claimed again every reclaim.
REDIS_MIN_VERSION = (7, 0)


async def check_server(redis: Redis) -> None:
    """Raise `ValueError` naming TAILWINDS_REDIS_URL when the server reports a version
    older than `REDIS_MIN_VERSION` (INFO's `redis_version`; Valkey and other servers of the
    same protocol report the Redis version they match). A server that refuses INFO
    (renamed by its operator) is taken as it is. A server that may evict keys when full
    (INFO's `maxmemory_policy` other than `noeviction`, and a `maxmemory` bound, without
    which no policy applies) is logged as a warning: a queued job, a run's stream or a
    chat's lease could vanish. Redis' own errors pass through
    (`redis.exceptions.ConnectionError` when it does not answer)."""
    try:
        info = await redis.info()  # its default sections: server and memory among them
    except ResponseError as exc:
        logger.warning("Redis refused INFO (%s): its version is not checked", exc)
        return
    # redis-py reads a value that looks like a number as one: "7" comes as 7
    version = str(info.get("redis_version", ""))
    parts = [*version.split("."), "0"]
    try:
        found = (int(parts[0]), int(parts[1]))
    except ValueError:
        logger.warning("Redis reports no version this can read (%r): not checked", version)
        return
    if found < REDIS_MIN_VERSION:
        raise ValueError(
            f"TAILWINDS_REDIS_URL: expected Redis 7.0 or newer for queue mode (XAUTOCLAIM's "
            f"replies of 7.0 recover lost and withdrawn jobs), got Redis {version}"
        )
    policy = str(info.get("maxmemory_policy", "noeviction"))
    if policy != "noeviction" and int(info.get("maxmemory", 0)) > 0:  # 0: no bound
        logger.warning(
            "Redis may evict keys when full (maxmemory-policy %s): a queued job, a run's "
            "stream or a chat's lease could vanish; set maxmemory-policy noeviction",
            policy,
        )


# Both limits checked and the job queued in one round trip, atomically. KEYS: the job
# stream, the chatflow's count of jobs, the run's facts, its event stream, its chat's set
# of runs, and, when this node relays the run, its count of readers. ARGV: the two
# limits, the keys' expiry, the `start` frame, the job, its chatflow, chat, grace,
# message id, session and relaying node ('' when none). Returns {0, entry id}, or {1,
# jobs} when the queue is full, {2, this
# chatflow's jobs} when the chatflow's share is. Sent again after a lost reply (a fresh
# connection), it queues nothing twice.
_ENQUEUE = """
if redis.call('EXISTS', KEYS[3]) == 1 then
  return {0, ''}
end
local total = redis.call('XLEN', KEYS[1])
if total >= tonumber(ARGV[1]) then return {1, total} end
local queued = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])  -- a count lost with a crash heals in a day
if queued > tonumber(ARGV[2]) then
  redis.call('DECR', KEYS[2])
  return {2, queued - 1}
end
redis.call('HSET', KEYS[3], 'chatflow', ARGV[6], 'chat', ARGV[7], 'grace', ARGV[8],
           'session', ARGV[10], 'relay', ARGV[11])
redis.call('EXPIRE', KEYS[3], ARGV[3])
redis.call('XADD', KEYS[4], '0-1', 'f', ARGV[4])
redis.call('EXPIRE', KEYS[4], ARGV[3])
redis.call('SADD', KEYS[5], ARGV[9])
redis.call('EXPIRE', KEYS[5], ARGV[3])
local entry = redis.call('XADD', KEYS[1], '*', 'j', ARGV[5])
redis.call('HSET', KEYS[3], 'queued', entry)  -- where an abort finds it to withdraw it
if KEYS[6] then
  redis.call('INCR', KEYS[6])
  redis.call('EXPIRE', KEYS[6], ARGV[3])
end
return {0, entry}
"""


class QueueClient:
    def __init__(
        self, settings: Settings, store: Callable[[StoredTurn], Awaitable[None]] | None = None
    ) -> None:
        """`store`: where the turn of a job withdrawn by an abort is stored (`aborted`,
        with no answer), as its worker would have stored it."""
        self.settings = settings
        self._store = store
        self.keys = Keys(settings.redis_prefix)
        self.redis = connect(settings.redis_url)
        self.node_id = uuid.uuid4().hex[:12]
        self.reader = EventReader(
            self.redis, connect(settings.redis_url, reconnects=0), self.keys, self.node_id
        )
        self.turns = RedisTurns(self.redis, self.keys, settings.worker_lease_s, self.abort_runs)
        # jobs queued at the same moment go to Redis in one round trip
        self._enqueue = BatchedScript(PipelineBatch(self.redis), _ENQUEUE)
        self._timers = BackgroundTasks()  # grace periods of streams whose client left

    async def open(self) -> None:
        """Connected and checked (`check_server`); closed again when either fails."""
        try:
            await self.redis.ping()
            await check_server(self.redis)
        except BaseException:
            await self.redis.aclose()
            raise
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

    async def enqueue(self, job: Job, sub: Subscription | None = None) -> bytes:
        """Queue the job; returns its `start` frame, already in its stream as `id: 1`.
        `sub` (`EventReader.add(..., relayed=True)`): this node relays the run from its
        relay stream, counted among the run's readers in the same round trip."""
        keys = self.keys
        start = numbered(1, StartEvent(job.chat_id, job.message_id))
        relayed = [keys.readers(job.message_id)] if sub else []
        if sub:
            job.relay = self.node_id  # its frames come on this node's relay stream
        try:
            refused, count = await self._enqueue(
                keys=[
                    keys.jobs,
                    keys.queued(job.chatflow_id),
                    keys.run(job.message_id),
                    keys.events(job.message_id),
                    keys.chat(job.chatflow_id, job.chat_id),
                    *relayed,
                ],
                args=[
                    self.settings.queue_max,
                    self.settings.queue_max_per_chatflow,
                    RUN_TTL_S,
                    start,
                    job.dumps(),
                    job.chatflow_id,
                    job.chat_id,
                    job.grace_s,
                    job.message_id,
                    job.session_id,
                    job.relay or "",
                ],
            )
        except (RedisError, OSError) as exc:
            raise TransportLost(f"the job queue (Redis) is not reachable: {exc}") from exc
        if refused == 1:
            raise self._full(f"the queue holds {count} predictions, its limit")
        if refused == 2:
            raise self._full(f"this chatflow has {count} predictions queued or running, its limit")
        return start

    def _full(self, why: str) -> QueueFull:
        RATE_LIMITED.labels("queue").inc()
        return QueueFull(f"{why}; try again shortly", retry_after_s=1)

    async def check_stream(self, chatflow_id: str, message_id: str) -> float:
        """The grace of a run that may be resumed; StreamNotFound when there is none."""
        try:
            facts = cast(dict[bytes, bytes], await self.redis.hgetall(self.keys.run(message_id)))
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
        sub: Subscription | None = None,
    ) -> Relay:
        """The frames of a run after number `after` (`first` before them), live, until
        `end`. When the client leaves first: cancel the run at once, or after `grace_s` if
        nobody reads by then; `release` once the relay is over, however it ends. `sub`:
        subscribed and counted already (`enqueue`)."""
        reader = uuid.uuid4().hex  # marks its count of readers, in and out, as done once
        frames = self._frames(message_id, after, grace_s, sub, reader)
        return Relay(self, message_id, grace_s, frames, first, release, sub, reader)

    async def _frames(
        self, message_id: str, after: int, grace_s: float, sub: Subscription | None, reader: str
    ) -> AsyncGenerator[bytes, None]:
        readers = self.keys.readers(message_id)
        counted = sub is not None  # whether this reader is in the run's count of readers
        finished = False
        try:
            try:
                if sub is None:
                    # counted among the run's readers in the same round trip
                    sub = await self.reader.subscribe(
                        message_id, after, (readers, f"{readers}:in:{reader}", RUN_TTL_S)
                    )
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
                self._timers.spawn(left(self, message_id, grace_s, reader if counted else None))

    def left_early(self, message_id: str) -> None:
        """The client left while its job was being queued: stop the run if it was."""
        self._timers.spawn(self._abort_quietly(message_id))

    async def _abort_quietly(self, message_id: str) -> None:
        try:
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
            running = cast(
                set[bytes], await self.redis.smembers(self.keys.chat(chatflow_id, chat_id))
            )
            ids = [m.decode() for m in running]
            if ids:
                await self.abort_runs(ids)
        except (RedisError, OSError) as exc:
            raise TransportLost(f"the abort could not be sent (Redis): {exc}") from exc
        return len(ids)

    async def abort_runs(self, message_ids: list[str]) -> None:
        """Stop the runs: those still waiting for a worker are withdrawn at once (their
        streams end, their places are given back, their turns stored `aborted`); the
        others are stopped by their worker. Raises `RedisError`/`OSError`."""
        retention_s = self.settings.events_retention_s
        withdrawn = await withdraw(self.redis, self.keys, message_ids, retention_s)
        # their turns first: no worker will store them, and the mark below may fail
        await asyncio.gather(*(self._store_withdrawn(job) for job in withdrawn))
        await abort_runs(self.redis, self.keys, message_ids)

    async def _store_withdrawn(self, job: Job) -> None:
        if self._store is None:
            return
        turn = StoredTurn(
            chatflow_id=job.chatflow_id,
            chat_id=job.chat_id,
            session_id=job.session_id,
            question=job.question,
            message_id=job.message_id,
            answer="",
            status="aborted",
            error=str(RunCancelled()),
            usage=None,
            asked_at=job.asked(),
        )
        try:
            await self._store(turn)
        except Exception:  # the abort happened; the turn's loss is logged where it failed
            logger.warning("the turn of withdrawn run %s was not stored", job.message_id)


async def abort_runs(redis: Redis, keys: Keys, message_ids: list[str]) -> None:
    """Mark the runs aborted (a worker that has not started one yet sees it) and tell every
    worker (the one running it stops it)."""
    pipe = redis.pipeline(transaction=False)
    for message_id in message_ids:
        pipe.set(keys.aborted(message_id), b"1", ex=RUN_TTL_S)
    pipe.xadd(keys.control, {b"abort": " ".join(message_ids)}, maxlen=10_000, approximate=True)
    await pipe.execute()
