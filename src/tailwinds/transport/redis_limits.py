"""Rate limits in Redis, for queue mode: every API node counts against the same windows and
the same running counts. One script call for every scope of a prediction, atomic."""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from tailwinds.background import BackgroundTasks
from tailwinds.errors import TransportLost
from tailwinds.limits import (
    Scope,
    describe,
    nothing,
    refused_concurrent,
    refused_requests,
    release_all,
)
from tailwinds.transport.counts import MARK_MS, count_once
from tailwinds.transport.keys import Keys

logger = logging.getLogger("tailwinds.limits")

# Every scope of a prediction in one call, checked before any is counted: a prediction one
# scope refuses takes no place in another's window or running count.
# KEYS: per scope, its window (a sorted set of request times) and its running count; last,
# the admission's own mark. ARGV: now ms, a unique member, then per scope: window ms, max
# requests (0: none), max running (0: none).
# The mark makes the call safe to send again: the client sends it again on a new connection
# when its reply was lost, and an admission counted twice would hold two running slots for
# one prediction (or refuse it, its own first count filling the window).
# Returns {0, 0, 0} when admitted, {1, ms to wait, scope} over a window, {2, 0, scope} over
# a running count (scope: 1-based).
_ADMIT = """
local now, member = tonumber(ARGV[1]), ARGV[2]
if redis.call('EXISTS', KEYS[#KEYS]) == 1 then return {0, 0, 0} end
local scopes = (#KEYS - 1) / 2
for i = 1, scopes do
  local window_key, running_key = KEYS[2 * i - 1], KEYS[2 * i]
  local window = tonumber(ARGV[3 * i])
  local max_requests, max_running = tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2])
  if max_requests > 0 then
    redis.call('ZREMRANGEBYSCORE', window_key, '-inf', now - window)
    if redis.call('ZCARD', window_key) >= max_requests then
      local oldest = redis.call('ZRANGE', window_key, 0, 0, 'WITHSCORES')
      return {1, tonumber(oldest[2]) + window - now, i}
    end
  end
  if max_running > 0 and tonumber(redis.call('GET', running_key) or '0') >= max_running then
    return {2, 0, i}
  end
end
for i = 1, scopes do
  local window_key, running_key = KEYS[2 * i - 1], KEYS[2 * i]
  local window = tonumber(ARGV[3 * i])
  if tonumber(ARGV[3 * i + 2]) > 0 then
    redis.call('INCR', running_key)
    -- a node that dies holding a slot gives it back within the hour
    redis.call('EXPIRE', running_key, 3600)
  end
  if tonumber(ARGV[3 * i + 1]) > 0 then
    redis.call('ZADD', window_key, now, member)
    redis.call('PEXPIRE', window_key, window)
  end
end
redis.call('SET', KEYS[#KEYS], '1', 'PX', MARK_MS)
return {0, 0, 0}
""".replace("MARK_MS", str(MARK_MS))


class RedisRateLimiter:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._script = redis.register_script(_ADMIT)
        self._tasks = BackgroundTasks()
        # slots this node is giving back, by running key: a release is a message to Redis,
        # and this node's next admission of the same key waits for it, so that a slot
        # freed here is free for the request that follows here
        self._giving_back: dict[str, set[asyncio.Task[Any]]] = {}

    async def admit_all(self, scopes: list[Scope]) -> Callable[[], None]:
        """Count one prediction against every scope's limit, or against none if one refuses
        (`RateLimited`); `TransportLost` when Redis cannot be reached. Returns what to call
        when the prediction ends."""
        limited = [(key, limit) for key, limit in scopes if limit]
        if not limited:
            return nothing
        keys: list[str] = []
        member = uuid.uuid4().hex
        args: list[int | str] = [int(time.time() * 1000), member]
        for key, limit in limited:
            running_key = f"{self.keys.prefix}:limit:{key}:running"
            pending = self._giving_back.get(running_key)
            if pending:
                await asyncio.wait(list(pending))
            keys += (f"{self.keys.prefix}:limit:{key}:window", running_key)
            args += (
                int(float(limit.get("windowS", 60)) * 1000),
                int(limit.get("requests") or 0),
                int(limit.get("concurrent") or 0),
            )
        running = [
            f"{self.keys.prefix}:limit:{key}:running"
            for key, limit in limited
            if limit.get("concurrent")
        ]
        keys.append(f"{self.keys.prefix}:limit:admitted:{member}")
        # shielded: a caller cancelled (its client left) while the script was on its way
        # does not know whether it counted, so the script's own end decides
        script = asyncio.ensure_future(self._script(keys=keys, args=args))
        try:
            verdict, wait_ms, scope = await asyncio.shield(script)
        except asyncio.CancelledError:
            script.add_done_callback(lambda done: self._give_back_if_counted(done, running, member))
            raise
        except ResponseError as exc:  # Redis answered, and refused (a key of another type)
            raise TransportLost(f"rate limits (Redis) refused the check: {exc}") from exc
        except (RedisError, OSError) as exc:
            raise TransportLost(f"rate limits (Redis) are not reachable: {exc}") from exc
        if verdict:
            key, limit = limited[int(scope) - 1]
            if verdict == 1:
                retry = max(1, math.ceil(int(wait_ms) / 1000))
                window_s = float(limit.get("windowS", 60))
                raise refused_requests(int(limit["requests"]), window_s, retry, describe(key))
            raise refused_concurrent(int(limit["concurrent"]), describe(key))
        return release_all([self._release(key, member) for key in running])

    def _give_back_if_counted(
        self, script: asyncio.Future[Any], running: list[str], member: str
    ) -> None:
        if script.cancelled() or script.exception() is not None:
            return
        if script.result()[0] == 0:  # admitted, for a client that had left
            release_all([self._release(key, member) for key in running])()

    async def admit(self, key: str, limit: dict[str, Any] | None) -> Callable[[], None]:
        """`admit_all` of one scope."""
        return await self.admit_all([(key, limit)])

    def _release(self, running_key: str, member: str) -> Callable[[], None]:
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                task = self._tasks.spawn(self._decrement(running_key, member))
                pending = self._giving_back.setdefault(running_key, set())
                pending.add(task)
                task.add_done_callback(lambda done: self._given_back(running_key, done))

        return release

    def _given_back(self, running_key: str, task: asyncio.Task[Any]) -> None:
        pending = self._giving_back.get(running_key)
        if pending is not None:
            pending.discard(task)
            if not pending:
                del self._giving_back[running_key]

    async def _decrement(self, running_key: str, member: str) -> None:
        try:
            await count_once(self.redis, running_key, f"{running_key}:released:{member}", -1)
        except (RedisError, OSError) as exc:
            logger.warning("could not give back a running slot (%s): %s", running_key, exc)
