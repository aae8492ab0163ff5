"""Commands of many tasks in one pipeline (`PipelineBatch`): each caller gets its own
replies, or its own error, and callers of the same moment share one round trip."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from redis.asyncio.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, ResponseError

from tailwinds.transport.queue import connect
from tailwinds.transport.redis_batch import BatchedScript, PipelineBatch


async def many_callers(redis_url: str) -> tuple[list[Any], int]:
    redis = connect(redis_url)
    prefix = f"test-batch-{uuid.uuid4().hex[:8]}"
    batch = PipelineBatch(redis)
    made = 0
    pipeline = redis.pipeline

    def counted(*args: Any, **kwargs: Any) -> Pipeline:
        nonlocal made
        made += 1
        return pipeline(*args, **kwargs)

    redis.pipeline = counted  # type: ignore[method-assign]
    await redis.set(f"{prefix}:text", "not a number")

    def caller(i: int) -> Any:
        def add(pipe: Pipeline) -> None:
            pipe.incrby(f"{prefix}:n{i}", i)
            # caller 7 asks what Redis refuses, caller 9 fails to queue its commands, caller
            # 11 gives an argument Redis cannot take: their errors are their own
            pipe.incr(f"{prefix}:text" if i == 7 else f"{prefix}:n{i}")
            if i == 9:
                raise ValueError("caller 9's mistake")
            if i == 11:
                pipe.set(f"{prefix}:n{i}", None)  # type: ignore[arg-type]  # not encodable

        return add

    try:
        results = await asyncio.gather(
            *(batch.execute(caller(i)) for i in range(20)), return_exceptions=True
        )
        return results, made
    finally:
        redis.pipeline = pipeline  # type: ignore[method-assign]
        await redis.delete(*await redis.keys(f"{prefix}:*"))
        await redis.aclose()


def test_each_caller_gets_its_replies_in_one_round_trip(redis_url: str) -> None:
    results, pipelines = asyncio.run(many_callers(redis_url))
    assert isinstance(results[7], ResponseError)
    assert isinstance(results[9], ValueError)
    assert isinstance(results[11], DataError)
    mine = [[i, i + 1] for i in range(20) if i not in (7, 9, 11)]
    assert [r for i, r in enumerate(results) if i not in (7, 9, 11)] == mine
    assert pipelines == 1


async def redis_gone() -> None:
    batch = PipelineBatch(connect("redis://127.0.0.1:9/0"))  # nothing listens
    with pytest.raises(RedisConnectionError):
        await asyncio.gather(*(batch.execute(lambda p: p.ping()) for _ in range(3)))


def test_a_pipeline_that_fails_fails_every_caller_of_it() -> None:
    asyncio.run(redis_gone())


async def a_caller_that_left(redis_url: str) -> list[Any]:
    redis = connect(redis_url)
    prefix = f"test-batch-{uuid.uuid4().hex[:8]}"
    batch = PipelineBatch(redis)
    try:
        first = asyncio.ensure_future(batch.execute(lambda p: p.incr(f"{prefix}:a")))
        # its argument cannot be sent, and its client leaves before the pipeline goes
        bad = asyncio.ensure_future(batch.execute(lambda p: p.set(f"{prefix}:b", None)))  # type: ignore[arg-type]
        last = asyncio.ensure_future(batch.execute(lambda p: p.incr(f"{prefix}:a")))
        await asyncio.sleep(0)
        bad.cancel()
        return await asyncio.wait_for(asyncio.gather(first, last), 5)
    finally:
        await redis.delete(*(await redis.keys(f"{prefix}:*")) or ["none"])
        await redis.aclose()


def test_a_caller_that_left_holds_up_nobody(redis_url: str) -> None:
    assert asyncio.run(a_caller_that_left(redis_url)) == [[1], [2]]


async def scripts_of_many_callers(redis_url: str) -> tuple[list[Any], list[Any], list[str]]:
    redis = connect(redis_url)
    sent: list[str] = []
    pipeline = redis.pipeline

    def counted(*args: Any, **kwargs: Any) -> Pipeline:
        pipe = pipeline(*args, **kwargs)
        execute = pipe.execute

        async def recorded(*a: Any, **k: Any) -> Any:
            sent.append(",".join(sorted({str(c[0][0]) for c in pipe.command_stack})))
            return await execute(*a, **k)

        pipe.execute = recorded  # type: ignore[method-assign]
        return pipe

    redis.pipeline = counted  # type: ignore[method-assign]
    # a script Redis has never seen: the first calls meet NOSCRIPT
    script = BatchedScript(
        PipelineBatch(redis), f"-- {uuid.uuid4()}\nreturn {{KEYS[1], ARGV[1] + 1}}"
    )
    try:
        first = await asyncio.gather(*(script([f"k{i}"], [i]) for i in range(10)))
        again = await asyncio.gather(*(script([f"k{i}"], [i]) for i in range(10)))
        return first, again, sent
    finally:
        redis.pipeline = pipeline  # type: ignore[method-assign]
        await redis.aclose()


def test_a_script_of_many_callers_goes_in_one_round_trip_and_loads_itself(
    redis_url: str,
) -> None:
    first, again, sent = asyncio.run(scripts_of_many_callers(redis_url))
    expected = [[f"k{i}".encode(), i + 1] for i in range(10)]
    assert first == expected and again == expected
    # NOSCRIPT to all ten, then EVAL for them in one pipeline; known from then on
    assert sent == ["EVALSHA", "EVAL", "EVALSHA"]
