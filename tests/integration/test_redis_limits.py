"""Rate limits shared in Redis (queue mode): a running slot given back on one API node is
free for the next request on that node, though the give-back is a message to Redis."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from tailwinds.errors import RateLimited, TransportLost
from tailwinds.transport.keys import Keys
from tailwinds.transport.queue import connect
from tailwinds.transport.redis_limits import RedisRateLimiter
from tests.redis_streams import forget_prefix
from tests.reply_dropper import ReplyDropper


async def admit_release_admit(redis_url: str, rounds: int) -> None:
    redis = connect(redis_url)
    keys = Keys(f"test-limits-{uuid.uuid4().hex[:8]}")
    limiter = RedisRateLimiter(redis, keys)
    try:
        for _ in range(rounds):
            release = await limiter.admit("flow:a", {"concurrent": 1})
            with pytest.raises(RateLimited, match="at most 1 predictions at once"):
                await limiter.admit("flow:a", {"concurrent": 1})
            release()
            # at once, with no turn of the loop between: the give-back is still in flight
            release = await limiter.admit("flow:a", {"concurrent": 1})
            release()
            release()  # once only: a second call gives back nothing more
        await asyncio.sleep(0.05)
        running = await redis.get(f"{keys.prefix}:limit:flow:a:running")
        assert int(running or 0) == 0
    finally:
        await redis.delete(f"{keys.prefix}:limit:flow:a:running")
        await redis.aclose()


def test_a_slot_given_back_is_free_for_the_next_request_on_the_node(redis_url: str) -> None:
    asyncio.run(admit_release_admit(redis_url, 20))


async def refused_by_one_scope(redis_url: str) -> None:
    redis = connect(redis_url)
    keys = Keys(f"test-limits-{uuid.uuid4().hex[:8]}")
    limiter = RedisRateLimiter(redis, keys)
    window = {"requests": 2, "windowS": 60}
    scopes = [("chatflow:a", window), ("key:k", {"concurrent": 1})]
    try:
        held = await limiter.admit_all(scopes)  # the key's one place is taken
        for _ in range(3):
            with pytest.raises(RateLimited, match="at most 1 predictions at once"):
                await limiter.admit_all(scopes)
        # the refused ones took no place in the chatflow's window: one more fits, not two
        await limiter.admit("chatflow:a", window)
        with pytest.raises(RateLimited, match="takes 2 predictions per 60 s"):
            await limiter.admit("chatflow:a", window)
        held()
        # over its own window, a prediction takes no running place either
        with pytest.raises(RateLimited, match="takes 2 predictions per 60 s"):
            await limiter.admit_all(scopes)
        await asyncio.sleep(0.05)
        assert int(await redis.get(f"{keys.prefix}:limit:key:k:running") or 0) == 0
    finally:
        await redis.delete(*(await redis.keys(f"{keys.prefix}:*")) or ["none"])
        await redis.aclose()


def test_a_prediction_one_scope_refuses_counts_in_none(redis_url: str) -> None:
    asyncio.run(refused_by_one_scope(redis_url))


async def cancelled_while_counted(redis_url: str) -> int:
    redis = connect(redis_url)
    keys = Keys(f"test-limits-{uuid.uuid4().hex[:8]}")
    limiter = RedisRateLimiter(redis, keys)
    script = limiter._script

    async def slow_reply(**kwargs: Any) -> Any:
        reply = await script(**kwargs)  # counted in Redis by now
        await asyncio.sleep(0.3)  # the reply is on its way
        return reply

    limiter._script = slow_reply  # type: ignore[assignment]
    try:
        admitting = asyncio.ensure_future(limiter.admit("chatflow:x", {"concurrent": 2}))
        await asyncio.sleep(0.1)
        admitting.cancel()  # the client left
        with pytest.raises(asyncio.CancelledError):
            await admitting
        await asyncio.sleep(0.5)
        return int(await redis.get(f"{keys.prefix}:limit:chatflow:x:running") or 0)
    finally:
        await redis.delete(*(await redis.keys(f"{keys.prefix}:*")) or ["none"])
        await redis.aclose()


def test_an_admission_whose_client_left_mid_script_gives_its_place_back(redis_url: str) -> None:
    assert asyncio.run(cancelled_while_counted(redis_url)) == 0


async def a_running_key_of_another_type(redis_url: str) -> str:
    redis = connect(redis_url)
    keys = Keys(f"test-limits-{uuid.uuid4().hex[:8]}")
    limiter = RedisRateLimiter(redis, keys)
    await redis.rpush(f"{keys.prefix}:limit:chatflow:x:running", "not a count")
    try:
        with pytest.raises(TransportLost) as refused:
            await limiter.admit("chatflow:x", {"concurrent": 1})
        return str(refused.value)
    finally:
        await redis.delete(*(await redis.keys(f"{keys.prefix}:*")) or ["none"])
        await redis.aclose()


def test_a_check_redis_refuses_is_not_called_unreachable(redis_url: str) -> None:
    message = asyncio.run(a_running_key_of_another_type(redis_url))
    assert "refused the check" in message and "WRONGTYPE" in message


def test_an_admission_or_a_give_back_whose_reply_was_lost_counts_once(redis_url: str) -> None:
    """The client sends a script again on a new connection when its reply was lost: the
    admission must not hold two running slots (nor refuse itself, its own first count
    filling the window), the give-back must not free two."""

    async def check() -> None:
        dropper = ReplyDropper(redis_url)
        keys = Keys(f"test-limits-{uuid.uuid4().hex[:8]}")
        running = f"{keys.prefix}:limit:flow:b:running"
        window = f"{keys.prefix}:limit:flow:b:window"
        limit = {"concurrent": 1, "requests": 1, "windowS": 60}
        async with dropper as proxied:
            redis = connect(proxied)
            limiter = RedisRateLimiter(redis, keys)
            try:
                (await limiter.admit("flow:warm", {"concurrent": 1}))()  # both scripts known
                while limiter._giving_back:  # noqa: ASYNC110 (the give-back is a task)
                    await asyncio.sleep(0.01)
                dropper.armed = True
                release = await limiter.admit("flow:b", limit)
                assert dropper.dropped == 1
                assert int(await redis.get(running)) == 1
                assert await redis.zcard(window) == 1
                dropper.armed = True
                release()
                for _ in range(100):
                    if dropper.dropped == 2 and not limiter._giving_back:
                        break
                    await asyncio.sleep(0.02)
                assert dropper.dropped == 2
                assert await redis.get(running) is None  # a count down to none is deleted
            finally:
                await forget_prefix(redis, keys.prefix)
                await redis.aclose()

    asyncio.run(check())
