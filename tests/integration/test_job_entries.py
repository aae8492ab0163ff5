"""A worker's bookkeeping of job entries on a real Redis (transport/job_entries.py): which
entry may begin a job, and when a job pending under a worker (claimed from a lost one, or
read again by its own worker after a failed read) runs again."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from tailwinds.transport.job_entries import MAX_ATTEMPTS, Begin, JobEntries
from tailwinds.transport.jobs import Job
from tailwinds.transport.keys import Keys
from tailwinds.transport.queue import connect
from tests.redis_streams import forget_prefix
from tests.reply_dropper import ReplyDropper


def _with_entries(
    redis_url: str, check: Callable[[Redis, Keys, JobEntries, Job], Awaitable[None]]
) -> None:
    async def run() -> None:
        redis = connect(redis_url)
        keys = Keys(f"twtest-{uuid.uuid4().hex[:8]}")
        job = Job("cf", uuid.uuid4().hex, "chat", "chat", "go", None)
        try:
            await redis.xadd(keys.events(job.message_id), {"f": b"start"}, id="0-1")
            await check(redis, keys, JobEntries(redis, keys), job)
        finally:
            await forget_prefix(redis, keys.prefix)
            await redis.aclose()

    asyncio.run(run())


def test_a_job_whose_stream_is_gone_does_not_run(redis_url: str) -> None:
    """Redis lost its data after the job was read (`start`, written with the job, is gone
    with its stream): its first entry does not run it into streams nobody reads, and the
    run's facts made again by it expire. A claim never meets lost data (the jobs stream
    goes with it): a claimed job whose stream is gone had expired, long ended or
    withdrawn, and is only acknowledged, its stored turn left as it is."""

    async def check(redis: Redis, keys: Keys, entries: JobEntries, job: Job) -> None:
        await redis.delete(keys.events(job.message_id), keys.run(job.message_id))
        assert await entries.first_entry("5-0", job) == Begin(False, False, gone=True)
        assert await redis.ttl(keys.run(job.message_id)) > 0
        assert await entries.may_run_again("5-0", job) == Begin(False, False, expired=True)
        assert await entries.may_run_again("6-0", job) == Begin(False, False, own=False)


def test_a_job_withdrawn_whose_facts_expired_before_it_began_stays_withdrawn(
    redis_url: str,
) -> None:
    """A busy worker began, after the retention, a job its client had stopped while it
    waited for a slot: its facts (`entry: withdrawn`) and stream expired, the abort's mark
    did not. It is withdrawn, not taken for one whose Redis lost its data (its stored
    `aborted` turn overwritten as failed)."""

    async def check(redis: Redis, keys: Keys, entries: JobEntries, job: Job) -> None:
        await redis.delete(keys.events(job.message_id), keys.run(job.message_id))
        await redis.set(keys.withdrawn(job.message_id), "1")
        assert await entries.first_entry("5-0", job) == Begin(False, True, withdrawn=True)


def test_an_abort_after_redis_lost_a_jobs_data_does_not_make_it_withdrawn(
    redis_url: str,
) -> None:
    """The job's client left while it waited for a slot, and its abort came after Redis
    lost its data: nothing was withdrawn (no facts), only the abort's mark set. Begun, it
    is a job whose stream is gone (stored failed), not a withdrawn one (stored nowhere)."""

    async def check(redis: Redis, keys: Keys, entries: JobEntries, job: Job) -> None:
        await redis.delete(keys.events(job.message_id), keys.run(job.message_id))
        await redis.set(keys.aborted(job.message_id), "1")
        assert await entries.first_entry("5-0", job) == Begin(False, False, gone=True)

    _with_entries(redis_url, check)


def test_a_job_nothing_of_which_was_sent_but_start_runs_again(redis_url: str) -> None:
    async def check(redis: Redis, keys: Keys, entries: JobEntries, job: Job) -> None:
        assert await entries.may_run_again("5-0", job) == Begin(True, False)
        # taken by that entry: a second claim of it runs it again too, up to the attempts
        assert (await entries.may_run_again("5-0", job)).run

    _with_entries(redis_url, check)


def test_a_job_that_had_ended_does_not_run_again(redis_url: str) -> None:
    """Read again after its worker had acknowledged it (the read's reply raced the
    acknowledgement): `end` is in its stream, and it is only ended (a no-op) again."""

    async def check(redis: Redis, keys: Keys, entries: JobEntries, job: Job) -> None:
        assert (await entries.first_entry("5-0", job)).run
        await redis.xadd(keys.events(job.message_id), {"f": b"token"}, id="0-2")
        await redis.xadd(keys.events(job.message_id), {"f": b"end", "e": b"1"}, id="0-3")
        assert await entries.may_run_again("5-0", job) == Begin(False, False, own=True)

    _with_entries(redis_url, check)


def test_an_entry_of_a_job_queued_twice_neither_runs_nor_ends_the_job(redis_url: str) -> None:
    """A second entry of one job, claimed or read again, is not the job's own: it must not
    run the job twice, nor end as lost a job that another worker is running."""

    async def check(redis: Redis, keys: Keys, entries: JobEntries, job: Job) -> None:
        assert (await entries.first_entry("5-0", job)).run
        assert await entries.may_run_again("6-0", job) == Begin(False, False, own=False)
        assert await entries.first_entry("6-0", job) == Begin(False, False, own=False)

    _with_entries(redis_url, check)


def test_a_job_aborted_meanwhile_says_so(redis_url: str) -> None:
    async def check(redis: Redis, keys: Keys, entries: JobEntries, job: Job) -> None:
        await redis.set(keys.aborted(job.message_id), 1)
        assert await entries.may_run_again("5-0", job) == Begin(True, True)

    _with_entries(redis_url, check)


def test_a_claim_whose_reply_was_lost_counts_one_attempt(redis_url: str) -> None:
    """A job that takes down its workers is ended as lost after `MAX_ATTEMPTS` claims; a
    claim's pipeline sent again after a lost reply must not count two."""

    async def check() -> None:
        keys = Keys(f"twtest-{uuid.uuid4().hex[:8]}")
        job = Job("cf", uuid.uuid4().hex, "chat", "chat", "go", None)
        dropper = ReplyDropper(redis_url)  # the count's `EVAL` is in the claim's pipeline
        async with dropper as proxied:
            redis = connect(proxied)
            try:
                await redis.xadd(keys.events(job.message_id), {"f": b"start"}, id="0-1")
                entries = JobEntries(redis, keys)
                dropper.armed = True
                assert (await entries.may_run_again("5-0", job)).run
                assert dropper.dropped == 1
                assert int(await redis.get(keys.attempts(job.message_id))) == 1
                for _ in range(MAX_ATTEMPTS - 1):
                    assert (await entries.may_run_again("5-0", job)).run
                assert not (await entries.may_run_again("5-0", job)).run
            finally:
                await forget_prefix(redis, keys.prefix)
                await redis.aclose()

    asyncio.run(check())


def test_a_job_done_after_redis_lost_its_queues_count_leaves_no_debt(redis_url: str) -> None:
    """Redis restarted without its data while jobs ran: each one's end gives its place in
    its chatflow's queue back to a count that is gone. It must not go below none (at -3 the
    chatflow's cap would be three over, and the count would never expire)."""

    async def check(redis: Redis, keys: Keys, entries: JobEntries, job: Job) -> None:
        await entries.done("5-0", job)
        await entries.done("6-0", job)
        assert await redis.get(keys.queued(job.chatflow_id)) is None

    _with_entries(redis_url, check)


def test_a_running_jobs_stream_is_kept_for_as_long_as_it_runs(redis_url: str) -> None:
    """A run may outlast the day its stream and facts were given at the enqueue (an
    approval may wait for a week): the heartbeat keeps them, or the run would be taken for
    one whose Redis lost its data. An ended run's keep its retention; a gone one stays gone."""

    async def check(redis: Redis, keys: Keys, entries: JobEntries, job: Job) -> None:
        ended, gone = uuid.uuid4().hex, uuid.uuid4().hex
        await redis.hset(keys.run(job.message_id), "entry", "5-0")
        await redis.expire(keys.events(job.message_id), 5)
        await redis.expire(keys.run(job.message_id), 5)
        await redis.xadd(keys.events(ended), {"f": b"end", "e": b"1"}, id="0-2")
        await redis.expire(keys.events(ended), 60)
        await entries.keep([job.message_id, ended, gone])
        assert await redis.ttl(keys.events(job.message_id)) > 3600
        assert await redis.ttl(keys.run(job.message_id)) > 3600
        assert 0 < await redis.ttl(keys.events(ended)) <= 60
        assert not await redis.exists(keys.events(gone), keys.run(gone))

    _with_entries(redis_url, check)
