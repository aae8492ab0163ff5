"""Chat leases in Redis, `concurrentTurns: "queue"`: the turns waiting for a chat take it
in the order they asked, whichever node holds them, and one that stops waiting (gave up,
cancelled, its node gone) does not hold up those behind it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator

import pytest
from redis.asyncio import Redis

from tailwinds.errors import ChatBusy
from tailwinds.transport.keys import Keys
from tailwinds.transport.redis_turns import _LINE, PRESENCE_MS, RedisTurns


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    import redis

    name = f"twtest-{uuid.uuid4().hex[:8]}"
    yield name
    with redis.Redis.from_url(redis_url) as client:
        for key in client.scan_iter(f"{name}:*"):
            client.delete(key)


async def no_abort(ids: list[str]) -> None:
    raise AssertionError(f"queue never aborts: {ids}")


def with_nodes(
    redis_url: str, prefix: str, test: Callable[[list[RedisTurns], Keys], Awaitable[None]]
) -> None:
    """Run `test` with two nodes' leases on one Redis."""

    async def go() -> None:
        keys = Keys(prefix)
        nodes = [RedisTurns(Redis.from_url(redis_url), keys, 5.0, no_abort) for _ in range(2)]
        try:
            await asyncio.wait_for(test(nodes, keys), 30)
        finally:
            for node in nodes:
                await node.close()
                await node.redis.aclose()

    asyncio.run(go())


async def line_is(keys: Keys, redis: Redis, waiting: int) -> None:
    """Return once `waiting` turns are in the chat's line."""
    line = keys.turn_line(keys.turn("cf", "chat"))[0]
    while await redis.zcard(line) != waiting:  # noqa: ASYNC110 (state in Redis: no event)
        await asyncio.sleep(0.005)


def test_waiting_turns_take_the_chat_in_the_order_they_asked(redis_url: str, prefix: str) -> None:
    async def test(nodes: list[RedisTurns], keys: Keys) -> None:
        first = await nodes[0].acquire("cf", "chat", "q0", "queue", 10)
        order: list[str] = []

        async def turn(node: RedisTurns, name: str) -> None:
            lease = await node.acquire("cf", "chat", name, "queue", 10)
            order.append(name)
            await lease.release()

        tasks = []
        for i in range(1, 7):
            tasks.append(asyncio.create_task(turn(nodes[i % 2], f"q{i}")))
            await line_is(keys, nodes[0].redis, i)
        await first.release()
        await asyncio.gather(*tasks)
        assert order == [f"q{i}" for i in range(1, 7)]
        assert await nodes[0].redis.zcard(keys.turn_line(keys.turn("cf", "chat"))[0]) == 0

    with_nodes(redis_url, prefix, test)


def test_a_waiter_that_leaves_or_gives_up_gives_its_place_back(redis_url: str, prefix: str) -> None:
    async def test(nodes: list[RedisTurns], keys: Keys) -> None:
        first = await nodes[0].acquire("cf", "chat", "q0", "queue", 10)
        # one gives up after its wait, one's client leaves (its task is cancelled)
        with pytest.raises(ChatBusy):
            await nodes[1].acquire("cf", "chat", "impatient", "queue", 0.1)
        await line_is(keys, nodes[0].redis, 0)
        gone = asyncio.create_task(nodes[1].acquire("cf", "chat", "gone", "queue", 10))
        await line_is(keys, nodes[0].redis, 1)
        last = asyncio.create_task(nodes[0].acquire("cf", "chat", "last", "queue", 10))
        await line_is(keys, nodes[0].redis, 2)
        gone.cancel()
        await line_is(keys, nodes[0].redis, 1)
        await first.release()
        loop = asyncio.get_running_loop()
        freed_at = loop.time()
        lease = await last
        # at once: not after the leaver's presence ran out
        assert loop.time() - freed_at < PRESENCE_MS / 1000 / 2
        assert lease.message_id == "last"

    with_nodes(redis_url, prefix, test)


def test_a_waiter_whose_node_died_loses_its_place(redis_url: str, prefix: str) -> None:
    async def test(nodes: list[RedisTurns], keys: Keys) -> None:
        first = await nodes[0].acquire("cf", "chat", "q0", "queue", 10)
        lease_key = keys.turn("cf", "chat")
        # a node took a ticket, looked once, and was never heard of again
        ahead = await nodes[1].redis.eval(
            _LINE, 4, lease_key, *keys.turn_line(lease_key), "ghost", 5000, PRESENCE_MS, 60000
        )
        assert ahead == 0
        waiting = asyncio.create_task(nodes[0].acquire("cf", "chat", "alive", "queue", 10))
        await line_is(keys, nodes[0].redis, 2)
        await first.release()
        lease = await waiting
        assert lease.message_id == "alive"
        assert await nodes[0].redis.zscore(keys.turn_line(lease_key)[0], "ghost") is None

    with_nodes(redis_url, prefix, test)


@pytest.mark.parametrize("policy", ["reject", "wait", "interrupt", "queue"])
def test_a_lease_held_under_the_turns_own_id_is_its_own(
    redis_url: str, prefix: str, policy: str
) -> None:
    """What a turn finds when its take went through but the reply was lost, and the
    client sent it again on a new connection: the lease under its own id. That is the
    turn's lease (it was ChatBusy, or an interrupt of itself, or a wait in its own line)."""

    async def test(nodes: list[RedisTurns], keys: Keys) -> None:
        key = keys.turn("cf", "chat")
        await nodes[0].redis.set(key, "t1", px=5000)
        lease = await nodes[0].acquire("cf", "chat", "t1", policy, 0.2)
        assert lease.message_id == "t1"
        assert await nodes[0].redis.get(key) == b"t1"
        for part in keys.turn_line(key)[:2]:
            assert await nodes[0].redis.zcard(part) == 0
        # and the chat is still refused to another turn while t1 holds it
        if policy != "interrupt":
            with pytest.raises(ChatBusy):
                await nodes[1].acquire("cf", "chat", "t2", policy, 0.1)
        await lease.release()
        assert await nodes[0].redis.get(key) is None

    with_nodes(redis_url, prefix, test)
