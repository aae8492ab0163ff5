"""Rate limits in Redis, for queue mode: every API node counts against the same windows and
the same running counts. One script call per limited scope, atomic."""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

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
from tailwinds.transport.keys import Keys

logger = logging.getLogger("tailwinds.limits")

# KEYS: the window (a sorted set of request times), the running count.
# ARGV: now ms, window ms, max requests (0: none), max running (0: none), a unique member.
# Returns {0, 0} when admitted, {1, ms to wait} over the window, {2, 0} over the running.
_ADMIT = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local max_requests, max_running = tonumber(ARGV[3]), tonumber(ARGV[4])
if max_requests > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  if redis.call('ZCARD', KEYS[1]) >= max_requests then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {1, tonumber(oldest[2]) + window - now}
  end
end
if max_running > 0 then
  if tonumber(redis.call('GET', KEYS[2]) or '0') >= max_running then
    return {2, 0}
  end
  redis.call('INCR', KEYS[2])
  -- a node that dies holding a slot gives it back within the hour
  redis.call('EXPIRE', KEYS[2], 3600)
end
if max_requests > 0 then
  redis.call('ZADD', KEYS[1], now, ARGV[5])
  redis.call('PEXPIRE', KEYS[1], window)
end
return {0, 0}
"""


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
        releases: list[Callable[[], None]] = []
        try:
            for key, limit in scopes:
                releases.append(await self.admit(key, limit))
        except BaseException:
            for release in releases:
                release()
            raise
        return release_all(releases)

    async def admit(self, key: str, limit: dict[str, Any] | None) -> Callable[[], None]:
        if not limit:
            return nothing
        requests = int(limit.get("requests") or 0)
        concurrent = int(limit.get("concurrent") or 0)
        window_s = float(limit.get("windowS", 60))
        window_key = f"{self.keys.prefix}:limit:{key}:window"
        running_key = f"{self.keys.prefix}:limit:{key}:running"
        pending = self._giving_back.get(running_key)
        if pending:
            await asyncio.wait(list(pending))
        try:
            verdict, wait_ms = await self._script(
                keys=[window_key, running_key],
                args=[
                    int(time.time() * 1000),
                    int(window_s * 1000),
                    requests,
                    concurrent,
                    uuid.uuid4().hex,
                ],
            )
        except (RedisError, OSError) as exc:
            raise TransportLost(f"rate limits (Redis) are not reachable: {exc}") from exc
        if verdict == 1:
            retry = max(1, math.ceil(int(wait_ms) / 1000))
            raise refused_requests(requests, window_s, retry, describe(key))
        if verdict == 2:
            raise refused_concurrent(concurrent, describe(key))
        if not concurrent:
            return nothing
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                task = self._tasks.spawn(self._decrement(running_key))
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

    async def _decrement(self, running_key: str) -> None:
        try:
            await self.redis.decr(running_key)
        except (RedisError, OSError) as exc:
            logger.warning("could not give back a running slot (%s): %s", running_key, exc)
