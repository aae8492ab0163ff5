"""A task cancelled while in a Redis command stops (issue 16's late disconnect): on Python
3.11 redis-py's own connection lost about half such cancels inside `asyncio.wait_for`."""

from __future__ import annotations

import asyncio

import pytest

from tailwinds.transport.queue import connect
from tailwinds.transport.redis_connection import (
    CancellableConnection,
    CancellableSSLConnection,
    CancellableUnixConnection,
    connection_class,
)


async def cancels_kept(redis_url: str, trials: int) -> int:
    redis = connect(redis_url)
    kept = 0
    try:
        for trial in range(trials):

            async def poll() -> None:
                while True:  # the shape of a turn waiting in its chat's line
                    await redis.eval("return 1", 0)
                    await asyncio.sleep(0)

            task = asyncio.create_task(poll())
            # land the cancel at varied points of a command: its write, its read, between
            for _ in range(1 + trial % 7):
                await asyncio.sleep(0)
            task.cancel()
            # a lost cancel shows as a task that goes on polling: wait for it to end
            await asyncio.wait((task,), timeout=5)
            if task.cancelled():
                kept += 1
            else:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
    finally:
        await redis.aclose()
    return kept


def test_a_cancel_that_lands_in_a_redis_command_is_never_lost(redis_url: str) -> None:
    assert asyncio.run(cancels_kept(redis_url, 60)) == 60


@pytest.mark.parametrize(
    ("url", "chosen"),
    [
        ("redis://127.0.0.1:6379/0", CancellableConnection),
        ("rediss://cache.example:6380/0", CancellableSSLConnection),
        ("unix:///run/redis.sock", CancellableUnixConnection),
    ],
)
def test_every_kind_of_redis_url_gets_the_cancellable_connection(
    url: str, chosen: type[object]
) -> None:
    assert connection_class(url) is chosen
