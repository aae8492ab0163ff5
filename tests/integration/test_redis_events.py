"""The queue's event writer and reader where Redis misbehaves or nobody reads: a dropped
connection, a relay stream with no reader (transport/redis_writer.py, redis_events.py)."""

from __future__ import annotations

import asyncio
import time
import uuid
from types import SimpleNamespace

import pytest
from redis.exceptions import ResponseError

from tailwinds.engine.approvals import Action, Decision
from tailwinds.errors import ActionClosed
from tailwinds.transport import redis_events
from tailwinds.transport.job_entries import JobEntries
from tailwinds.transport.jobs import Job
from tailwinds.transport.keys import Keys
from tailwinds.transport.queue import connect
from tailwinds.transport.redis_approvals import RedisApprovals
from tailwinds.transport.redis_events import EventReader
from tailwinds.transport.redis_writer import EventWriter
from tailwinds.transport.relay import left
from tests.redis_streams import forget_prefix, started, writer_and_reader
from tests.reply_dropper import ReplyDropper


async def _kill_clients(admin, name: str) -> None:
    for client in await admin.client_list():
        if client.get("name") == name:
            await admin.client_kill_filter(_id=client["id"])


def test_a_batch_written_on_a_connection_redis_dropped_is_sent_again(redis_url: str) -> None:
    """redis-py's pipeline (the writer before) sent a batch again on a fresh connection
    when its pooled one had died (Redis restarted, the connection killed); one running
    worker's every run must not end `transport_lost` for a connection that can be made
    again."""

    async def check() -> None:
        redis = connect(redis_url)
        admin = connect(redis_url)
        keys = Keys(f"twtest-{uuid.uuid4().hex[:8]}")
        failures: list[BaseException] = []
        writer = EventWriter(redis, keys, 1000, 60, failures.append)
        run = uuid.uuid4().hex
        name = f"writer-{uuid.uuid4().hex[:6]}"
        try:
            await redis.client_setname(name)  # the pool's one connection
            await started(admin, keys, run)
            writer.append(run, 2, b"two")
            await writer.synced()
            await _kill_clients(admin, name)  # within the health check's second
            writer.append(run, 3, b"three")
            try:
                await writer.synced()
            except Exception as exc:
                raise AssertionError(f"the batch failed: {exc!r}") from exc
            assert not failures
            written = [f[b"f"] for _, f in await admin.xrange(keys.events(run))]
            assert written == [b"start", b"two", b"three"]
        finally:
            await admin.delete(keys.events(run))
            await redis.aclose()
            await admin.aclose()

    asyncio.run(check())


def test_a_batch_whose_reply_was_lost_is_written_once_when_sent_again(redis_url: str) -> None:
    """Redis ran the writer's script, the connection died before its reply came: the
    client's retry sends the same batch again. Its frames are in the stream already (their
    entry ids are fixed): the retry must be a success that writes nothing twice, not an
    error that ends every run of the worker with `transport_lost`."""

    async def check() -> None:
        dropper = ReplyDropper(redis_url)
        async with dropper as proxied, writer_and_reader(redis_url) as streams:
            keys = streams.keys
            failures: list[BaseException] = []
            redis = connect(proxied)
            writer = EventWriter(redis, keys, 1000, 60, failures.append)
            run = uuid.uuid4().hex
            await started(streams.redis, keys, run)
            sub = streams.reader.add(run, 1, relayed=True)
            writer.relay(run, "node")
            try:
                writer.append(run, 2, b"two")
                await writer.synced()  # the script known to Redis: the next is EVALSHA's
                dropper.armed = True
                writer.append(run, 3, b"three")
                writer.append(run, 4, b"four", end=True)
                try:
                    await writer.synced()
                except Exception as exc:
                    raise AssertionError(f"the batch failed: {exc!r}") from exc
                assert dropper.dropped == 1
                assert not failures
                written = await streams.redis.xrange(keys.events(run))
                assert [f[b"f"] for _, f in written] == [b"start", b"two", b"three", b"four"]
                # the relay stream has the batch twice; its reader passes it on once
                assert b"".join([chunk async for chunk in sub.frames()]) == b"twothreefour"
            finally:
                await redis.aclose()

    asyncio.run(check())


def test_the_relay_stream_is_trimmed_while_the_node_relays_nothing(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run whose client left (its grace running) or that resumed on another node goes on
    writing to the node's relay stream; the node's reader sleeps while it has no
    subscription, so nothing trims it."""

    monkeypatch.setattr(redis_events, "IDLE_TRIM_S", 0.5)

    async def check() -> None:
        run = uuid.uuid4().hex
        async with writer_and_reader(redis_url) as streams:
            redis, keys = streams.redis, streams.keys
            writer, reader = streams.writer, streams.reader
            await started(redis, keys, run)
            sub = reader.add(run, 1, relayed=True)
            writer.relay(run, "node")
            writer.append(run, 2, b"two")
            await writer.synced()
            chunks = sub.frames()
            assert await anext(chunks) == b"two"
            reader.unsubscribe(sub)  # the client left; the run goes on
            for seq in range(3, 3003):
                writer.append(run, seq, b"x" * 100)
                if seq % 50 == 0:
                    await writer.synced()
            await writer.synced()
            await asyncio.sleep(3)
            assert await redis.xlen(keys.relay("node")) <= 10

    asyncio.run(check())


def test_another_frame_at_a_written_entry_id_is_still_refused(redis_url: str) -> None:
    """What a batch sent again may find is its own frames; different bytes at the same
    entry id are a real conflict (two writers of one run) and fail as before."""

    async def check() -> None:
        async with writer_and_reader(redis_url) as streams:
            run = uuid.uuid4().hex
            await started(streams.redis, streams.keys, run)
            streams.writer.append(run, 2, b"two")
            await streams.writer.synced()
            streams.writer.append(run, 2, b"two")  # the same again: written already
            await streams.writer.synced()
            streams.writer.append(run, 2, b"not two")
            with pytest.raises(ResponseError, match="equal or smaller"):
                await streams.writer.synced()
            assert len(streams.failures) == 1
            written = await streams.redis.xrange(streams.keys.events(run))
            assert [f[b"f"] for _, f in written] == [b"start", b"two"]

    asyncio.run(check())


def test_a_reader_counted_in_or_out_on_a_lost_reply_counts_once(redis_url: str) -> None:
    """A run's count of readers decides whether a client that left stops the run: counted
    in twice, a run would go on for nobody; counted out twice, a run another client still
    reads would be stopped."""

    async def check() -> None:
        dropper = ReplyDropper(redis_url)
        keys = Keys(f"twtest-{uuid.uuid4().hex[:8]}")
        run = uuid.uuid4().hex
        readers = keys.readers(run)
        async with dropper as proxied:
            redis = connect(proxied)
            reader = EventReader(redis, connect(redis_url, reconnects=0), keys, "node")
            aborted: list[list[str]] = []

            async def abort_runs(ids: list[str]) -> None:
                aborted.append(ids)

            client = SimpleNamespace(keys=keys, redis=redis, abort_runs=abort_runs)
            try:
                await redis.eval("return 1", 0)  # a connection made before the cut
                for name in ("r1", "r2"):
                    dropper.armed = True
                    await reader.subscribe(run, 1, (readers, f"{readers}:in:{name}", 60))
                assert dropper.dropped == 2
                assert int(await redis.get(readers)) == 2
                dropper.armed = True
                await left(client, run, 0, "r1")  # type: ignore[arg-type]
                assert dropper.dropped == 3
                assert int(await redis.get(readers)) == 1
                assert aborted == []  # r2 still reads
                await left(client, run, 0, "r2")  # type: ignore[arg-type]
                assert aborted == [[run]]
            finally:
                await forget_prefix(redis, keys.prefix)
                await reader.stop()
                await redis.aclose()

    asyncio.run(check())


def test_a_job_done_on_a_lost_reply_gives_its_chatflows_place_back_once(redis_url: str) -> None:
    """A job's end gives back its place in its chatflow's queue (`queueMaxPerChatflow`):
    sent again after a lost reply, it must not give back two (the cap would be one over
    for a day)."""

    async def check() -> None:
        dropper = ReplyDropper(redis_url)
        keys = Keys(f"twtest-{uuid.uuid4().hex[:8]}")
        job = Job("cf", uuid.uuid4().hex, "chat", "chat", "go", None)
        async with dropper as proxied:
            redis = connect(proxied)
            try:
                await redis.set(keys.queued("cf"), 2)
                dropper.armed = True
                await JobEntries(redis, keys).done("1-0", job)
                assert dropper.dropped == 1
                assert int(await redis.get(keys.queued("cf"))) == 1
            finally:
                await forget_prefix(redis, keys.prefix)
                await redis.aclose()

    asyncio.run(check())


def test_a_decision_whose_reply_was_lost_is_the_deciders_and_wakes_the_run(
    redis_url: str,
) -> None:
    """An approval decided on an API node whose `SET NX` reply was lost: sent again, it
    finds its own decision. It was a 409 for the person's own decision, and the worker,
    never told, waited out the action's timeout."""

    async def check() -> None:
        dropper = ReplyDropper(redis_url, command=b"\r\nSET\r\n")
        keys = Keys(f"twtest-{uuid.uuid4().hex[:8]}")
        action = Action("a1", "cf", "run1", "calculator", {}, time.time() + 60)
        async with dropper as proxied:
            worker_redis, node_redis = connect(redis_url), connect(proxied)
            worker = RedisApprovals(worker_redis, keys)
            try:
                assert await worker.open(action, 10)
                dropper.armed = True
                decision = Decision("approve", None, None)
                node = RedisApprovals(node_redis, keys)
                assert await node.decide("cf", "a1", decision) == "run1"
                assert dropper.dropped == 1
                # woken by the control stream, not by the action's expiry a minute away
                decided = await asyncio.wait_for(worker.wait(action), 20)
                assert decided.outcome == "approve"
                # and another decision after it is still refused
                with pytest.raises(ActionClosed):
                    await node.decide("cf", "a1", Decision("reject", None, "no"))
            finally:
                await forget_prefix(worker_redis, keys.prefix)
                await worker_redis.aclose()
                await node_redis.aclose()

    asyncio.run(check())


def test_a_run_whose_stream_redis_lost_is_written_nothing_and_named(redis_url: str) -> None:
    """Redis lost its data under a running run (a restart without persistence): its next
    frames must not make a new stream nobody reads; the writer names the run (its worker
    stops it, stored failed) and the other runs of the same batch are written."""

    async def check() -> None:
        async with writer_and_reader(redis_url) as streams:
            redis, keys = streams.redis, streams.keys
            gone: list[str] = []
            writer = EventWriter(redis, keys, 1000, 60, streams.failures.append, gone.append)
            lost, kept, new = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex
            await started(redis, keys, lost, kept)
            writer.append(lost, 2, b"two")
            await writer.synced()
            await redis.delete(keys.events(lost))
            writer.append(lost, 3, b"three")
            writer.append(kept, 2, b"two")
            writer.append(new, 1, b"start")  # a run's first frame makes its stream
            await writer.synced()
            assert gone == [lost] and not streams.failures
            assert not await redis.exists(keys.events(lost))
            assert await redis.xlen(keys.events(kept)) == 2
            assert await redis.xlen(keys.events(new)) == 1

    asyncio.run(check())
