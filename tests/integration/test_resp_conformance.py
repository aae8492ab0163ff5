"""What the token path packs and reads by hand (transport/resp.py, transport/redis_events.py)
held to redis-py, the library it stands in for, against a real Redis."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from tailwinds.transport.keys import Keys
from tailwinds.transport.queue import connect
from tailwinds.transport.redis_writer import EventWriter
from tailwinds.transport.resp import HeldConnection, Script, bulk, execute_packed, pack
from tests.redis_streams import started, writer_and_reader

# a command's name first (redis-py splits a first argument at its spaces: "CONFIG GET")
ARGS = st.tuples(
    st.sampled_from([b"XADD", b"XREAD", b"EVALSHA"]), st.lists(st.binary(max_size=300), max_size=12)
).map(lambda t: [t[0], *t[1]])


@given(ARGS)
@settings(max_examples=300)
def test_pack_is_redis_pys_packing_byte_for_byte(args: list[bytes]) -> None:
    theirs = b"".join(Connection().pack_command(*args))
    assert pack(args) == theirs


def test_a_command_packed_by_hand_runs_as_redis_pys(redis_url: str) -> None:
    async def check() -> None:
        redis = connect(redis_url)
        key = f"twtest-resp-{uuid.uuid4().hex}"
        try:
            frame = b'id: 2\nevent: token\ndata: {"token":"\\r\\n$3\\r\\n"}\n\n'
            assert await execute_packed(redis, pack([b"XADD", key.encode(), b"0-2", b"f", frame]))
            ours = await execute_packed(redis, pack([b"XRANGE", key.encode(), b"-", b"+"]))
            assert ours == [[b"0-2", [b"f", frame]]]
            assert await redis.xrange(key) == [(b"0-2", {b"f": frame})]
            with pytest.raises(ResponseError, match="equal or smaller"):
                await execute_packed(redis, pack([b"XADD", key.encode(), b"0-1", b"f", b"x"]))
            # the connection is whole after an error reply: the next command reads its own
            assert await execute_packed(redis, pack([b"XLEN", key.encode()])) == 1
        finally:
            await redis.delete(key)
            await redis.aclose()

    asyncio.run(check())


def test_a_script_is_loaded_again_after_redis_forgot_it(redis_url: str) -> None:
    async def check() -> None:
        redis = connect(redis_url)
        script = Script(f"return ARGV[1] .. '{uuid.uuid4().hex}'")
        try:
            held = HeldConnection(redis)
            first = await script.run(held, [], [bulk(b"a")])
            await redis.script_flush()
            assert await script.run(held, [], [bulk(b"a")]) == first
        finally:
            await redis.aclose()

    asyncio.run(check())


def test_a_held_connection_outlives_what_happens_to_its_socket(redis_url: str) -> None:
    """The connection a writer or reader keeps: killed by Redis, it is reconnected (by the
    retry of a client that retries; by the next command of one that does not); a command
    cut by a cancel leaves no reply behind for the next one to read."""

    async def check() -> None:
        admin = connect(redis_url)
        retrying, once_only = connect(redis_url), connect(redis_url, reconnects=0)
        try:
            for client in (retrying, once_only):
                held = HeldConnection(client)
                my_id = await held.execute(pack([b"CLIENT", b"ID"]))
                assert await held.execute(pack([b"CLIENT", b"ID"])) == my_id  # the same one
                await admin.client_kill_filter(_id=my_id)
                if client is once_only:
                    with pytest.raises(RedisConnectionError):
                        await held.execute(pack([b"PING"]))
                assert await held.execute(pack([b"ECHO", b"back"])) == b"back"
                assert await held.execute(pack([b"CLIENT", b"ID"])) != my_id
                blocking = pack([b"BLPOP", uuid.uuid4().hex.encode(), b"1"])
                slow = asyncio.ensure_future(held.execute(blocking))
                await asyncio.sleep(0.05)
                slow.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await slow
                assert await held.execute(pack([b"ECHO", b"mine"])) == b"mine"
                # two commands in one write (the reader's XTRIM and XREAD), the first
                # refused: the second's reply must not be left for the next command
                wrong_type = uuid.uuid4().hex.encode()
                await admin.set(wrong_type, b"a string")
                try:
                    trim = pack([b"XTRIM", wrong_type, b"MAXLEN", b"1"])
                    with pytest.raises(ResponseError, match="WRONGTYPE"):
                        await held.execute(trim + pack([b"ECHO", b"stale"]), replies=2)
                    assert await held.execute(pack([b"ECHO", b"fresh"])) == b"fresh"
                finally:
                    await admin.delete(wrong_type)
        finally:
            for client in (admin, retrying, once_only):
                await client.aclose()

    asyncio.run(check())


def test_written_by_the_writer_read_by_the_reader_as_redis_py_reads_them(redis_url: str) -> None:
    """Frames of several runs, appended in one batch and in several, come back whole, in
    order, once each: through the reader's raw `XREAD`, and the same through redis-py's."""

    async def check() -> None:
        runs = [uuid.uuid4().hex for _ in range(3)]
        async with writer_and_reader(redis_url) as streams:
            redis, keys = streams.redis, streams.keys
            writer, reader = streams.writer, streams.reader
            await started(redis, keys, *runs)
            subs = [await reader.subscribe(run, 1) for run in runs]
            sent: dict[str, list[bytes]] = {run: [] for run in runs}
            for seq in range(2, 40):
                for n, run in enumerate(runs):
                    frame = b"id: %d\nevent: token\ndata: %d\r\n\n" % (seq, n)
                    sent[run].append(frame)
                    writer.append(run, seq, frame, end=seq == 39)
                if seq % 7 == 0:
                    await writer.synced()  # some batches of one turn, some of many
            await writer.synced()
            assert not streams.failures
            for run, sub in zip(runs, subs, strict=True):
                got = b"".join([chunk async for chunk in sub.frames()])
                assert got == b"".join(sent[run])
                theirs = (await redis.xrange(keys.events(run)))[1:]  # after `start`
                assert [fields[b"f"] for _, fields in theirs] == sent[run]
                assert b"e" in theirs[-1][1] and all(b"e" not in f for _, f in theirs[:-1])
                assert 0 < await redis.ttl(keys.events(run)) <= 60

    asyncio.run(check())


def test_a_refused_frame_fails_the_batch_as_a_pipeline_did(redis_url: str) -> None:
    async def check() -> None:
        redis: Redis = connect(redis_url)
        keys = Keys(f"twtest-{uuid.uuid4().hex[:8]}")
        failures: list[BaseException] = []
        writer = EventWriter(redis, keys, 1000, 60, failures.append)
        run, other = uuid.uuid4().hex, uuid.uuid4().hex
        try:
            await started(redis, keys, run, other)
            writer.append(run, 5, b"five")
            await writer.synced()
            writer.append(run, 3, b"three")  # behind the stream's last entry
            writer.append(other, 2, b"two")
            with pytest.raises(ResponseError, match="equal or smaller"):
                await writer.synced()
            assert len(failures) == 1
            # the other run's frame of the same batch is written all the same
            written = [f[b"f"] for _, f in await redis.xrange(keys.events(other))]
            assert written == [b"start", b"two"]
        finally:
            await redis.delete(keys.events(run), keys.events(other))
            await redis.aclose()

    asyncio.run(check())


def test_a_relayed_run_comes_on_its_nodes_relay_stream_and_falls_back_on_a_gap(
    redis_url: str,
) -> None:
    """A run the node queued comes whole on the node's relay stream, one entry per batch;
    a reader that finds the relayed frames skip ahead of what it has reads the rest from
    the run's own stream, where nothing is missing; the relay stream is trimmed as read."""

    async def check() -> None:
        whole, gapped = uuid.uuid4().hex, uuid.uuid4().hex
        async with writer_and_reader(redis_url) as streams:
            redis, keys = streams.redis, streams.keys
            writer, reader = streams.writer, streams.reader
            await started(redis, keys, whole, gapped)
            subs = [reader.add(run, 1, relayed=True) for run in (whole, gapped)]
            writer.relay(whole, "node")
            frames = [b"id: %d\nevent: token\ndata: x\n\n" % seq for seq in range(2, 30)]
            # the gapped run's first batch reaches its own stream but not the relay stream
            for seq, frame in enumerate(frames[:5], start=2):
                writer.append(gapped, seq, frame)
            await writer.synced()
            writer.relay(gapped, "node")
            for seq, frame in enumerate(frames, start=2):
                if seq >= 7:
                    writer.append(gapped, seq, frame, end=seq == 29)
                writer.append(whole, seq, frame, end=seq == 29)
                if seq % 5 == 0:
                    await writer.synced()
            await writer.synced()
            assert not streams.failures
            for sub in subs:
                assert b"".join([chunk async for chunk in sub.frames()]) == b"".join(frames)
            assert subs[0].relayed and not subs[1].relayed  # the gapped one moved over
            assert await redis.xlen(keys.relay("node")) > 1
            await asyncio.sleep(1.2)
            reader.add(uuid.uuid4().hex, 1, relayed=True)  # a read after the trim period
            for _ in range(50):
                if await redis.xlen(keys.relay("node")) <= 1:
                    break
                await asyncio.sleep(0.1)
            assert await redis.xlen(keys.relay("node")) <= 1

    asyncio.run(check())
