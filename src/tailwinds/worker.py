"""`tailwinds worker`: runs queued predictions (queue mode).

A worker reads jobs from the `jobs` stream as one consumer of the `workers` group, runs
each with the same runner as local mode, and appends its events to the run's own stream.
It acknowledges a job only once its last event is in Redis (at-least-once). Its running
jobs are heartbeated; a job whose worker stopped heartbeating is claimed by another
(`XAUTOCLAIM`): run again when nothing of it was sent but `start`, or else ended with
`error` `{code: "worker_lost"}` and `end`, its partial answer stored as failed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import uuid
from collections import Counter
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from tailwinds import heap, tracing
from tailwinds.composition import Core, open_core, worker_transport
from tailwinds.config import Settings
from tailwinds.engine.events import EndEvent, ErrorEvent, StartEvent
from tailwinds.errors import (
    FlowError,
    RunCancelled,
    ServerShutdown,
    TailwindsError,
    TransportLost,
)
from tailwinds.logs import REQUEST_ID
from tailwinds.lost_runs import end_lost, store_gone
from tailwinds.transport.frames import numbered
from tailwinds.transport.job_entries import JobEntries
from tailwinds.transport.jobs import Job
from tailwinds.transport.keys import WORKER_GROUP, Keys, StreamRead
from tailwinds.transport.queue import abort_runs, check_server, connect
from tailwinds.transport.redis_approvals import RedisApprovals
from tailwinds.transport.redis_turns import RedisTurns
from tailwinds.transport.redis_writer import EventWriter

logger = logging.getLogger("tailwinds.worker")


class Worker:
    def __init__(
        self, settings: Settings, core: Core, concurrency: int, redis: Redis, turns: RedisTurns
    ) -> None:
        """`redis` and `turns`: the ones the core's transport was made with (see
        `run_worker`)."""
        self.settings = settings
        self.state = core
        self.predictions = core.predictions
        self.runs = core.runs
        self.keys = Keys(settings.redis_prefix)
        self.redis = redis
        self.name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.concurrency = concurrency
        self.slots = asyncio.Semaphore(concurrency)
        self.writer = EventWriter(
            self.redis,
            self.keys,
            settings.events_max_len,
            settings.events_retention_s,
            self._transport_failed,
            self._stream_gone,
        )
        self.entries = JobEntries(self.redis, self.keys)
        # a read or claim whose reply was lost gave its jobs to this worker all the same, and
        # one sent again would not return them: never resent; after a failed one, its own
        # pending jobs ("0") are begun as claimed ones (none runs twice: `may_run_again`)
        self._job_reads, self._read_own = connect(settings.redis_url, reconnects=0), False
        self._waiting: set[str] = set()  # job entries read, waiting for a slot
        self.lease_ms = int(settings.worker_lease_s * 1000)
        self.turns = turns
        self._jobs: dict[str, asyncio.Task[None]] = {}  # by job entry id
        # jobs taken, by message id: an abort waits for a run not started yet (`interrupt`)
        self._starting: Counter[str] = Counter()
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        logger.info(
            "worker %s taking jobs (concurrency %d, lease %.0f s)",
            self.name,
            self.concurrency,
            self.settings.worker_lease_s,
        )
        taking = [asyncio.create_task(self._consume()), asyncio.create_task(self._reclaim())]
        # kept while the running jobs finish: heartbeats, or another worker would take them
        # for lost in the shutdown grace, and aborts
        keeping = [asyncio.create_task(self._heartbeat()), asyncio.create_task(self._control())]
        await self._stopping.wait()
        for task in taking:
            task.cancel()
        for entry in self._waiting:  # left pending, unheartbeated: another worker runs them
            self._jobs[entry].cancel()
        await asyncio.gather(*taking, return_exceptions=True)
        await self._job_reads.aclose()
        while self._jobs:
            logger.info("waiting for %d running jobs", len(self._jobs))
            await asyncio.gather(*self._jobs.values(), return_exceptions=True)
        for task in keeping:
            task.cancel()
        await asyncio.gather(*keeping, return_exceptions=True)

    def stop(self) -> None:
        """Take no more jobs; let the running ones finish for the shutdown grace, then end
        them with `server_shutdown`."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        asyncio.get_running_loop().call_later(self.settings.shutdown_grace_s, self._end_grace)

    def _end_grace(self) -> None:
        self.runs.abort_all(ServerShutdown())
        for message_id in self._starting:  # not running yet: ended as soon as it does
            self.runs.interrupt(message_id, ServerShutdown())

    # -- taking jobs ------------------------------------------------------------------

    async def _consume(self) -> None:
        backoff = 0.1
        while True:
            own = False
            try:
                await self._ensure_group()
                while True:
                    await self.slots.acquire()
                    self.slots.release()
                    if self._over_memory():
                        await asyncio.sleep(0.5)
                        continue
                    free = self.concurrency - len(self._jobs)
                    own, self._read_own = self._read_own, False
                    reply = cast(
                        StreamRead | None,
                        await self._job_reads.xreadgroup(
                            WORKER_GROUP,
                            self.name,
                            {self.keys.jobs: "0" if own else ">"},
                            count=None if own else max(free, 1),  # "0": the running ones too
                            block=None if own else 2000,
                        ),
                    )
                    for _, entries in reply or ():
                        for raw_id, fields in entries:
                            if fields:
                                self._start(raw_id.decode(), fields, reclaimed=own)
                            else:  # pending, then withdrawn by its abort: nothing to run
                                self._spawn_ack(raw_id.decode())
                    backoff = 0.1
            except ResponseError as exc:
                # refused, not run (NOGROUP: the stream is gone, made again next; a write
                # refused: NOREPLICAS, MISCONF, READONLY), so no job was given
                logger.warning("reading jobs refused by Redis: %s; retrying", exc)
                self._read_own |= own  # a refused read of its own jobs is made again
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            except (RedisError, OSError) as exc:
                logger.warning("reading jobs from Redis failed: %s; retrying", exc)
                self._read_own = True  # its reply may have been lost with jobs in it
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.keys.jobs, WORKER_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _over_memory(self) -> bool:
        bound = self.settings.worker_max_rss_mb
        if not bound:
            return False
        return heap.rss_mb() > bound

    def _start(self, entry: str, fields: dict[bytes, bytes], reclaimed: bool) -> None:
        if entry in self._jobs:
            return
        try:
            job = Job.loads(fields[b"j"])
        except (KeyError, ValueError, TypeError) as exc:
            logger.error("dropping malformed job %s: %s", entry, exc)
            self._spawn_ack(entry)
            return
        task = asyncio.get_running_loop().create_task(self._job(entry, job, reclaimed))
        self._jobs[entry] = task
        task.add_done_callback(lambda _: self._jobs.pop(entry, None))

    async def _job(self, entry: str, job: Job, reclaimed: bool) -> None:
        REQUEST_ID.set(job.request_id)  # this task's own context: its log lines carry it
        tracing.join(job.trace)  # and its spans join the API node's trace
        self._waiting.add(entry)
        try:
            await self.slots.acquire()
        finally:
            self._waiting.discard(entry)
        try:
            if not self._stopping.is_set():  # else left pending, as `run` leaves the waiting
                await self._begin(entry, job, reclaimed)
        finally:
            self.slots.release()

    async def _begin(self, entry: str, job: Job, reclaimed: bool) -> None:
        self._starting[job.message_id] += 1
        try:
            if reclaimed:
                begin = await self.entries.may_run_again(entry, job)
            else:
                begin = await self.entries.first_entry(entry, job)
            if begin.aborted:
                self.runs.interrupt(job.message_id, RunCancelled())
            if begin.run:
                run = self._execute
            elif begin.withdrawn:
                logger.info("job %s was withdrawn before it began", job.message_id)
                return await self.entries.ack(entry)
            elif begin.expired:
                logger.info("job %s: its stream had expired; acknowledged", job.message_id)
                return await self.entries.ack(entry)
            elif begin.gone:
                run = self._store_gone
            elif reclaimed and begin.own:
                run = self._end_lost
            else:
                logger.warning("job %s was queued twice: it runs once", job.message_id)
                return await self.entries.ack(entry)
            self.writer.relay(job.message_id, job.relay)  # the run's own entry only
            try:
                await run(job)
            finally:
                self.writer.relay(job.message_id, None)
            await self.entries.done(entry, job)
        except (RedisError, OSError) as exc:
            # left unacknowledged: it is claimed again once Redis is back
            logger.warning("job %s lost its connection to Redis: %s", job.message_id, exc)
        except Exception:
            logger.exception("job %s failed", job.message_id)
        finally:
            self._starting[job.message_id] -= 1
            if not self._starting[job.message_id]:
                del self._starting[job.message_id]
                self.runs.forget(job.message_id)

    async def _execute(self, job: Job) -> None:
        seq = 1  # `start` was written by the API node
        message_id = job.message_id
        try:
            admission = await self.predictions.admission_for(job)
            prepared = await self.predictions.start(admission)
        except Exception as exc:
            # (the database down, say): the stream ends saying so, it does not wait a lease
            error = exc if isinstance(exc, TailwindsError) else None
            if error is None:
                logger.exception("run %s could not start", message_id)
                error = FlowError(f"the worker could not start the run: {type(exc).__name__}")
            if job.chat_lease:  # free before `end`: the client may ask again at once
                await self.turns.free_chat(job.chatflow_id, job.session_id, message_id)
            self.writer.append(
                message_id, seq + 1, numbered(seq + 1, ErrorEvent(error.code, str(error)))
            )
            self.writer.append(message_id, seq + 2, numbered(seq + 2, EndEvent()), end=True)
            await self.writer.synced()
            return
        events = self.predictions.events(prepared)
        append = self.writer.append
        async for event in events:
            if type(event) is StartEvent:
                continue  # the API node wrote it
            seq += 1
            append(message_id, seq, numbered(seq, event), type(event) is EndEvent)
        await self.writer.synced()

    async def _end_lost(self, job: Job) -> None:
        messages = self.state.messages
        await end_lost(job, self.redis, self.keys, self.writer, self.turns, messages)

    async def _store_gone(self, job: Job) -> None:
        await store_gone(job, self.turns, self.state.messages)

    def _stream_gone(self, message_id: str) -> None:
        # Redis lost its data (a restart without persistence) and the run's client with it:
        # stopped, stored failed, rather than left to finish for nobody
        error = TransportLost("Redis lost this prediction's stream (it lost its data)")
        self.runs.abort_run(message_id, error)

    def _spawn_ack(self, entry: str) -> None:
        task = asyncio.get_running_loop().create_task(self.entries.ack(entry))
        self._jobs[entry] = task
        task.add_done_callback(lambda _: self._jobs.pop(entry, None))

    def _transport_failed(self, error: BaseException) -> None:
        lost = TransportLost(f"the worker lost Redis, which carries the events: {error}")
        self.runs.abort_all(lost)

    # -- leases and lost workers --------------------------------------------------------

    async def _heartbeat(self) -> None:
        """Touch the running jobs so that no other worker takes them for lost."""
        while True:
            await asyncio.sleep(self.settings.worker_lease_s / 3)
            ids: list[Any] = list(self._jobs)
            if not ids:
                continue
            try:
                await self.redis.xclaim(
                    self.keys.jobs, WORKER_GROUP, self.name, 0, ids, justid=True
                )
                await self.entries.keep(list(self._starting))
            except (RedisError, OSError) as exc:
                logger.warning("heartbeat failed: %s", exc)

    async def _reclaim(self) -> None:
        while True:
            await asyncio.sleep(self.settings.worker_lease_s / 2)
            free = self.concurrency - len(self._jobs)
            if free <= 0 or self._over_memory():
                continue
            try:
                # [next id, [(id, fields or None for a deleted entry)], deleted ids]
                reply = cast(
                    list[Any],
                    await self._job_reads.xautoclaim(
                        self.keys.jobs, WORKER_GROUP, self.name, self.lease_ms, count=free
                    ),
                )
            except (RedisError, OSError) as exc:
                logger.debug("claiming lost jobs failed: %s", exc)
                self._read_own = True  # its reply may have been lost with jobs in it
                continue
            for raw_id, fields in reply[1]:
                if fields is None:
                    continue
                logger.warning("claimed job %s from a worker that stopped", raw_id.decode())
                self._start(raw_id.decode(), fields, reclaimed=True)

    # -- aborts ---------------------------------------------------------------------------

    async def _control(self) -> None:
        # after a failed read, on from the last abort seen, not "$": an abort sent
        # meanwhile would be lost for a run already going (a new job checks its own key)
        last = b"$"
        while True:
            try:
                reply = cast(
                    StreamRead | None,
                    await self.redis.xread({self.keys.control: last}, block=5000),
                )
            except (RedisError, OSError) as exc:
                logger.debug("reading aborts failed: %s", exc)
                await asyncio.sleep(1)
                continue
            for _, entries in reply or ():
                for raw_id, fields in entries:
                    last = raw_id
                    for message_id in fields.get(b"abort", b"").decode().split():
                        if message_id in self._starting:
                            self.runs.interrupt(message_id, RunCancelled())
                        else:
                            self.runs.abort_run(message_id)


async def run_worker(settings: Settings, concurrency: int) -> None:
    settings.check_queue_mode()
    keys = Keys(settings.redis_prefix)
    redis: Redis = connect(settings.redis_url)
    try:
        await check_server(redis)
        turns = RedisTurns(
            redis,
            keys,
            settings.worker_lease_s,
            lambda message_ids: abort_runs(redis, keys, message_ids),
        )
        # the decisions on this worker's tool calls, posted to any API node
        approvals = RedisApprovals(redis, keys)
        try:
            async with open_core(settings, worker_transport(settings, turns, approvals)) as core:
                worker = Worker(settings, core, concurrency, redis, turns)
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(sig, worker.stop)
                heap.settle()
                await worker.run()
        finally:
            # after the core's close, whose draining runs may still free their chats
            await turns.close()
    finally:
        await redis.aclose()
