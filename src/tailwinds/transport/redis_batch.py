"""Commands of many tasks in one Redis pipeline: what each job does at its start and at its
end (a few commands, one round trip) goes out with every other job's of the same moment,
as a turn's rows go to the database by group commit (`store/messages.py`)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError


class PipelineBatch:
    """`execute(add)`: `add(pipeline)` queues a caller's commands; their replies come back
    as a list, in order. Callers that ask while a pipeline is in flight go together in the
    next one: one round trip for all of them, never more than one in flight."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._pending: list[tuple[Callable[[Pipeline], object], asyncio.Future[list[Any]]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def execute(self, add: Callable[[Pipeline], object]) -> list[Any]:
        """The replies to the commands `add` queued. Raises the first error among them
        (a `ResponseError`), or what the pipeline met (`RedisError`, `OSError`): the
        commands of a pipeline that failed may or may not have run, as with any."""
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._pending.append((add, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            pipe = self.redis.pipeline(transaction=False)
            encoder = self.redis.connection_pool.get_encoder()
            spans = []
            for add, future in batch:
                start = len(pipe)
                if future.done():  # its caller left before its commands went out
                    spans.append((start, start))
                    continue
                try:
                    add(pipe)
                    # an argument Redis cannot take fails its own caller here, not the
                    # whole pipeline when it is packed
                    for args, _ in pipe.command_stack[start:]:
                        for arg in args:
                            encoder.encode(arg)
                except Exception as exc:  # its caller's mistake, not the others'
                    del pipe.command_stack[start:]
                    future.set_exception(exc)
                spans.append((start, len(pipe)))
            try:
                replies = await pipe.execute(raise_on_error=False)
            except asyncio.CancelledError:
                # nobody would send what waits for the next pipeline either
                for _, future in (*batch, *self._pending):
                    future.cancel()
                self._pending = []
                raise
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), (start, end) in zip(batch, spans, strict=True):
                if future.done():
                    continue  # its caller left, or its commands could not be queued
                mine = replies[start:end]
                error = next((r for r in mine if isinstance(r, Exception)), None)
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(mine)


class BatchedScript:
    """A Lua script whose calls share a `PipelineBatch`'s round trips: EVALSHA, and EVAL
    when Redis does not know the script (first use, a restart, SCRIPT FLUSH). redis-py's
    own scripts in a pipeline ask SCRIPT EXISTS before every pipeline: a round trip more.
    """

    def __init__(self, batch: PipelineBatch, source: str) -> None:
        self.batch = batch
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """The script's reply. Raises what `PipelineBatch.execute` raises."""
        try:
            (reply,) = await self.batch.execute(
                lambda pipe: pipe.evalsha(self.sha, len(keys), *keys, *args)
            )
        except NoScriptError:
            (reply,) = await self.batch.execute(
                lambda pipe: pipe.eval(self.source, len(keys), *keys, *args)
            )
        return reply
