"""Chat leases in Redis (queue mode): one turn at a time per chat across every API node and
worker (see `engine/turns.py` for what a lease is).

A lease is a key holding the message id of the turn that has the chat, with an expiry of
one worker lease (`TAILWINDS_WORKER_LEASE_S`). Whoever holds it renews it while it lives:
the API node while the job waits in the queue and its stream is relayed, the worker while
the run goes on. A crash stops the renewals and the chat is free one lease later; it is
never stuck. Renewing and freeing compare the holder first, so a late call never touches
a newer turn's lease.

Turns that wait for a chat (`concurrentTurns: "queue"`) take it in the order they asked,
whichever API node holds them: each takes a ticket, and only the lowest ticket still
waiting may take the lease. A waiter that stops looking (it gave up, its client left, its
node died) gives its place back, or loses it `PRESENCE_MS` after its last look.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from tailwinds.background import BackgroundTasks
from tailwinds.engine.turns import chat_busy
from tailwinds.errors import TransportLost
from tailwinds.transport.keys import Keys
from tailwinds.transport.redis_batch import PipelineBatch

logger = logging.getLogger("tailwinds.transport")

# KEYS[1] the lease; ARGV: the holder, ms. Renew only one's own.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
# Take the lease when it is free or already one's own (a worker taking over its job).
_ADOPT = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
# Free only one's own.
_FREE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Wait in line for the lease (KEYS: the lease, the line, its presences, its ticket counter;
# ARGV: the waiter, lease ms, presence ms, the line's idle expiry ms). Returns -1 when the
# lease was taken, else how many wait ahead. Redis's own clock: the nodes' may differ.
_LINE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for _, waiter in ipairs(gone) do
  redis.call('ZREM', KEYS[2], waiter)
  redis.call('ZREM', KEYS[3], waiter)
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  -- taken by this waiter's own earlier call, whose reply was lost (sent again on a new
  -- connection): its own, not the next in line's
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  return -1
end
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[4]), ARGV[1])
end
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[1])
for i = 2, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[4]) end
if redis.call('ZRANGE', KEYS[2], 0, 0)[1] == ARGV[1]
    and redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  return -1
end
return redis.call('ZRANK', KEYS[2], ARGV[1])
"""

# how often a waiting turn looks again, at first and at most (s); in line, the first
# looks most often, each one further back a little less
POLL_S = (0.02, 0.25)
# a waiter that has not looked for this long has left the line (a node that died): many
# times the longest poll, so a busy event loop does not lose its place
PRESENCE_MS = 3000


class RedisLease:
    __slots__ = ("_turns", "key", "message_id", "started")

    def __init__(self, turns: RedisTurns, key: str, message_id: str) -> None:
        self._turns = turns
        self.key = key
        self.message_id = message_id
        self.started = False  # the run is sure to store its turn, and free the chat then

    async def release(self) -> None:
        self.detach()
        await self._turns.free(self.key, self.message_id)

    def release_soon(self) -> None:
        self.detach()
        self._turns.tasks.spawn(self._turns.free(self.key, self.message_id))

    def detach(self) -> None:
        self._turns.held.pop(self.message_id, None)


class RedisTurns:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        lease_s: float,
        abort: Callable[[list[str]], Awaitable[None]],
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.lease_ms = max(int(lease_s * 1000), 100)
        self.abort = abort
        self.held: dict[str, RedisLease] = {}  # kept alive by this process, by message id
        self.tasks = BackgroundTasks()
        # a turn's take (API node), adopt and free (worker) share round trips with other
        # turns' of the same moment
        self.batch = PipelineBatch(redis)
        self._renewer: asyncio.Task[None] | None = None

    async def acquire(
        self, chatflow_id: str, session_id: str, message_id: str, policy: str, wait_s: float
    ) -> RedisLease:
        key = self.keys.turn(chatflow_id, session_id)
        try:
            if policy == "queue":
                return await self._wait_in_line(key, session_id, message_id, wait_s)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait_s
            poll_s = POLL_S[0]
            interrupted: str | None = None
            while True:
                # GET: the holder, read in the same step; the lease is this turn's when it
                # was free or is held under its own id already (an earlier try whose reply
                # was lost, sent again on a new connection by the client's retry)
                (held_by,) = await self.batch.execute(
                    lambda pipe: pipe.set(key, message_id, nx=True, px=self.lease_ms, get=True)
                )
                holder = _text(held_by)
                if holder is None or holder == message_id:
                    return self._hold(key, message_id)
                if policy == "reject":
                    raise chat_busy(session_id, policy, wait_s)
                if policy == "interrupt" and holder != interrupted:
                    interrupted = holder
                    await self.abort([holder])
                if loop.time() + poll_s > deadline:
                    raise chat_busy(session_id, policy, wait_s)
                # polled: a freed lease has no event to wait on that survives a restart
                await asyncio.sleep(poll_s)
                poll_s = min(poll_s * 2, POLL_S[1])
        except (RedisError, OSError) as exc:
            raise TransportLost(f"the chat's lease (Redis) is not reachable: {exc}") from exc

    async def _wait_in_line(
        self, key: str, session_id: str, message_id: str, wait_s: float
    ) -> RedisLease:
        """The lease once every turn that asked before this one had it (`ChatBusy` after
        `wait_s` s). Cancelled (the client left), the place in line is given back."""
        line = self.keys.turn_line(key)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        args = (message_id, self.lease_ms, PRESENCE_MS, 2 * PRESENCE_MS)
        taken = False
        try:
            while True:
                ahead = int(await self.redis.eval(_LINE, 4, key, *line, *args))
                if ahead < 0:
                    taken = True
                    return self._hold(key, message_id)
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise chat_busy(session_id, "queue", wait_s)
                # polled: a freed lease has no event to wait on that survives a restart
                await asyncio.sleep(min(POLL_S[0] * (ahead + 1), POLL_S[1], remaining))
        finally:
            if not taken:
                # also on a cancel: the next in line must not wait for this one's expiry
                self.tasks.spawn(self._leave_line(key, line, message_id))

    async def _leave_line(self, key: str, line: tuple[str, str, str], message_id: str) -> None:
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.zrem(line[0], message_id)
            pipe.zrem(line[1], message_id)
            # a cancel that came while Redis gave it the lease: nobody would free it
            pipe.eval(_FREE, 1, key, message_id)
            await pipe.execute()
        except (RedisError, OSError) as exc:
            logger.warning("turn %s left its chat's line late (it expires): %s", message_id, exc)

    async def adopt(self, chatflow_id: str, session_id: str, message_id: str) -> RedisLease | None:
        """A worker's hold on the lease its API node took for the job; None when the lease
        expired and another turn has it meanwhile (the job runs anyway: it was admitted)."""
        key = self.keys.turn(chatflow_id, session_id)
        (adopted,) = await self.batch.execute(
            lambda pipe: pipe.eval(_ADOPT, 1, key, message_id, self.lease_ms)
        )
        if not adopted:
            logger.warning("run %s: its chat's lease passed to another turn", message_id)
            return None
        return self._hold(key, message_id)

    async def free(self, key: str, message_id: str) -> None:
        try:
            await self.batch.execute(lambda pipe: pipe.eval(_FREE, 1, key, message_id))
        except (RedisError, OSError) as exc:
            logger.warning("could not free the chat of run %s (it expires): %s", message_id, exc)

    async def free_chat(self, chatflow_id: str, session_id: str, message_id: str) -> None:
        """Free the chat if turn `message_id` holds it (a lost worker's job, ended)."""
        self.held.pop(message_id, None)
        await self.free(self.keys.turn(chatflow_id, session_id), message_id)

    def _hold(self, key: str, message_id: str) -> RedisLease:
        lease = self.held[message_id] = RedisLease(self, key, message_id)
        if self._renewer is None or self._renewer.done():
            self._renewer = self.tasks.spawn(self._renew())
        return lease

    async def _renew(self) -> None:
        """Keep the held leases alive: every third of a lease, one pipeline for all."""
        while self.held:
            await asyncio.sleep(self.lease_ms / 3000)
            pipe = self.redis.pipeline(transaction=False)
            for lease in list(self.held.values()):
                pipe.eval(_RENEW, 1, lease.key, lease.message_id, self.lease_ms)
            try:
                await pipe.execute()
            except (RedisError, OSError) as exc:
                logger.warning("renewing chat leases failed: %s", exc)

    async def close(self) -> None:
        self.held.clear()
        self.tasks.cancel()
        await self.tasks.drain()


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
