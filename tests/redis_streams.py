"""A worker's event writer and an API node's reader on the machine's Redis, under a key
prefix of their own that is deleted afterwards (tests of the queue's token path)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from redis.asyncio import Redis

from tailwinds.transport.keys import Keys
from tailwinds.transport.queue import connect
from tailwinds.transport.redis_events import EventReader
from tailwinds.transport.redis_writer import EventWriter


@dataclass
class Streams:
    redis: Redis
    keys: Keys
    writer: EventWriter
    reader: EventReader  # node "node", started
    failures: list[BaseException] = field(default_factory=list)  # the writer's


@asynccontextmanager
async def writer_and_reader(redis_url: str, retention_s: float = 60) -> AsyncIterator[Streams]:
    redis = connect(redis_url)
    keys = Keys(f"twtest-{uuid.uuid4().hex[:8]}")
    failures: list[BaseException] = []
    writer = EventWriter(redis, keys, 1000, retention_s, failures.append)
    reader = EventReader(redis, connect(redis_url, reconnects=0), keys, "node")
    reader.start()
    try:
        yield Streams(redis, keys, writer, reader, failures)
    finally:
        await reader.stop()
        await forget_prefix(redis, keys.prefix)
        await redis.aclose()


async def started(redis: Redis, keys: Keys, *runs: str) -> None:
    """Each run's stream as the API node leaves it when it queues the job: `start` at entry
    0-1 (the writer writes nothing into a run's stream that is gone)."""
    for run in runs:
        await redis.xadd(keys.events(run), {"f": b"start"}, id="0-1")


async def forget_prefix(redis: Redis, prefix: str) -> None:
    """Delete every key under `prefix` (a test's own)."""
    left = [key async for key in redis.scan_iter(f"{prefix}:*")]
    if left:
        await redis.delete(*left)
