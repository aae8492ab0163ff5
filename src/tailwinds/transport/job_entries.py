"""A worker's bookkeeping of the jobs it takes from the `jobs` stream: whether an entry is
the job's own, whether a claimed job may run again, and its acknowledgement. Each is a
few commands in one round trip, shared with every other job's of the same moment
(`PipelineBatch`)."""

from __future__ import annotations

import uuid
from typing import NamedTuple

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from tailwinds.transport.counts import count_once
from tailwinds.transport.jobs import Job
from tailwinds.transport.keys import RUN_TTL_S, WORKER_GROUP, Keys, entry_seq
from tailwinds.transport.redis_batch import PipelineBatch

# a run's `entry` once an abort withdrew its job (`job_withdrawal`)
WITHDRAWN = "withdrawn"

# how many workers a job may take down before it is ended as lost instead of run again
MAX_ATTEMPTS = 3

# KEYS: per running job, its event stream and its facts. ARGV[1]: their expiry (s). Each
# pair's expiry set again, unless the stream is gone or has ended (its `end` entry has
# the `e` field; its expiry is then the retention the writer set).
_KEEP = """
for i = 1, #KEYS, 2 do
  local last = redis.call('XREVRANGE', KEYS[i], '+', '-', 'COUNT', 1)[1]
  if last and last[2][3] ~= 'e' then
    redis.call('EXPIRE', KEYS[i], ARGV[1])
    redis.call('EXPIRE', KEYS[i + 1], ARGV[1])
  end
end
"""


class Begin(NamedTuple):
    run: bool
    aborted: bool
    withdrawn: bool = False
    own: bool = True  # False: the entry is not the job's own (it was queued twice)
    # its stream is gone: Redis lost its data after the job was read (its client was told
    # `transport_lost`), and it must not run into streams nobody reads
    gone: bool = False
    # claimed, its stream expired: it had ended, or was withdrawn, long before; only
    # acknowledged (a claim never meets lost data: the jobs stream would have gone too)
    expired: bool = False


class JobEntries:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.keys = keys
        self.batch = PipelineBatch(redis)
        self._keep = redis.register_script(_KEEP)  # not batched: it is the heartbeat's

    async def first_entry(self, entry: str, job: Job) -> Begin:
        """Whether this entry is the job's own (`run`), and whether the job was aborted
        meanwhile, or withdrawn (`job_withdrawal`), or its stream is `gone`.
        An enqueue sent again on a fresh connection (the first one's reply lost with it)
        queues the same message twice, and two runs would write one stream and store one
        turn twice. Raises `RedisError`/`OSError` when Redis cannot be reached."""
        run = self.keys.run(job.message_id)

        def add(pipe: Pipeline) -> None:
            pipe.hsetnx(run, "entry", entry)
            pipe.expire(run, RUN_TTL_S, nx=True)  # made again by HSETNX if it had expired
            pipe.hget(run, "entry")
            pipe.exists(self.keys.aborted(job.message_id))  # in the same round trip
            pipe.exists(self.keys.events(job.message_id))  # `start`, written with the job
            pipe.exists(self.keys.withdrawn(job.message_id))

        _, _, owner, aborted, stream, withdrawn = await self.batch.execute(add)
        owner = _text(owner)
        # withdrawn by an abort before any worker began it (its facts may have expired
        # since, its mark stays a day): stored `aborted` already
        if owner == WITHDRAWN or withdrawn:
            return Begin(False, True, withdrawn=True)
        own = owner is None or owner == entry
        if own and not stream:
            return Begin(False, False, gone=True)
        return Begin(own, bool(aborted), own=own)

    async def may_run_again(self, entry: str, job: Job) -> Begin:
        """Whether a claimed job runs again (`run`: the entry is the job's own, its stream
        holds only `start`, so nothing the client saw can be contradicted, and it has not
        already taken down too many workers), and whether it was aborted meanwhile, or
        withdrawn before the worker that died had begun it. A job that had ended (`end` in
        its stream) does not run again: only its acknowledgement was lost; nor one whose
        stream `expired`."""

        run = self.keys.run(job.message_id)

        def add(pipe: Pipeline) -> None:
            # taken as `first_entry` takes it, if the worker that died had not: an abort
            # must not withdraw a job that runs (`job_withdrawal`)
            pipe.hsetnx(run, "entry", entry)
            pipe.expire(run, RUN_TTL_S, nx=True)
            pipe.hget(run, "entry")
            pipe.xrevrange(self.keys.events(job.message_id), count=1)
            # counted once if the pipeline is sent again on a lost reply: a mark per claim
            tries = self.keys.attempts(job.message_id)
            count_once(pipe, tries, f"{tries}:{uuid.uuid4().hex}", 1, RUN_TTL_S)
            pipe.exists(self.keys.aborted(job.message_id))

        _, _, owner, last, attempts, aborted = await self.batch.execute(add)
        owner = _text(owner)
        if owner == WITHDRAWN:
            return Begin(False, True, withdrawn=True)
        own = owner == entry
        if own and not last:  # no stream, not even `start`
            return Begin(False, bool(aborted), expired=True)
        again = own and entry_seq(last[0][0]) <= 1 and attempts <= MAX_ATTEMPTS
        return Begin(again, bool(aborted), own=own)

    async def keep(self, message_ids: list[str]) -> None:
        """Keep the streams and facts of running jobs for `RUN_TTL_S` more: a run may go on
        for longer than they were first given (an approval may wait for days), and a run
        whose stream expired would be taken for one whose Redis lost its data. Raises
        `RedisError`/`OSError` when Redis cannot be reached."""
        names = [n for m in message_ids for n in (self.keys.events(m), self.keys.run(m))]
        if names:
            await self._keep(keys=names, args=[RUN_TTL_S])

    async def done(self, entry: str, job: Job) -> None:
        """The job ended, its last event in Redis: acknowledged and forgotten, its places
        in its chatflow's queue and its chat's running set given back."""

        def add(pipe: Pipeline) -> None:
            pipe.xack(self.keys.jobs, WORKER_GROUP, entry)
            pipe.xdel(self.keys.jobs, entry)
            queued = self.keys.queued(job.chatflow_id)
            count_once(pipe, queued, f"{queued}:done:{entry}", -1)  # once, if sent again
            pipe.srem(self.keys.chat(job.chatflow_id, job.chat_id), job.message_id)

        await self.batch.execute(add)

    async def ack(self, entry: str) -> None:
        """Acknowledge and forget an entry that runs nothing (malformed, or queued twice)."""

        def add(pipe: Pipeline) -> None:
            pipe.xack(self.keys.jobs, WORKER_GROUP, entry)
            pipe.xdel(self.keys.jobs, entry)

        await self.batch.execute(add)


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
