"""A queue-mode relay tells the run its client left however early it leaves: also before
its first frame from Redis, when a bare async generator's `aclose()` would run nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from tailwinds.background import BackgroundTasks
from tailwinds.transport import relay as relay_module
from tailwinds.transport.relay import Relay


class FakeClient:
    """What a relay uses of `QueueClient` itself: the grace timers (`relay.left`, which
    tells Redis, is recorded in `left` instead)."""

    def __init__(self) -> None:
        self._timers = BackgroundTasks()
        self.left: list[tuple[str, float, str | None]] = []


@pytest.fixture(autouse=True)
def recorded_leaving(monkeypatch: pytest.MonkeyPatch) -> None:
    async def left(client: FakeClient, message_id: str, grace_s: float, reader: str | None) -> None:
        client.left.append((message_id, grace_s, reader))

    monkeypatch.setattr(relay_module, "left", left)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def relay_of(client: FakeClient, frames: AsyncGenerator[bytes, None], released: list[int]) -> Relay:
    return Relay(
        client,  # type: ignore[arg-type]
        "m1",
        2.5,
        frames,
        b"start",
        lambda: released.append(1),
    )


async def two_frames(log: list[str]) -> AsyncGenerator[bytes, None]:
    try:
        yield b"a"
        yield b"b"
    finally:
        log.append("generator closed")


@pytest.mark.parametrize("read_first", [False, True])
def test_a_relay_closed_before_its_frames_began_stops_the_run(read_first: bool) -> None:
    async def go() -> tuple[FakeClient, list[int], list[str]]:
        client, released, log = FakeClient(), [], []
        relay = relay_of(client, two_frames(log), released)
        if read_first:
            assert await relay.__anext__() == b"start"  # the API node's own frame
        await relay.aclose()
        await relay.aclose()  # twice: nothing more
        await client._timers.drain()
        return client, released, log

    client, released, log = run(go())
    assert client.left == [("m1", 2.5, None)]  # not counted: it never subscribed
    assert released == [1]
    assert log == []  # the generator never ran: its `finally` could not have told anyone


def test_a_relay_closed_midway_leaves_it_to_the_generator() -> None:
    async def go() -> tuple[FakeClient, list[int], list[str]]:
        client, released, log = FakeClient(), [], []
        relay = relay_of(client, two_frames(log), released)
        assert [await relay.__anext__(), await relay.__anext__()] == [b"start", b"a"]
        await relay.aclose()
        await client._timers.drain()
        return client, released, log

    client, released, log = run(go())
    assert client.left == []  # the generator's own `finally` tells the run (QueueClient)
    assert log == ["generator closed"]
    assert released == [1]


def test_a_relay_released_once_when_it_ends_or_fails() -> None:
    async def failing() -> AsyncGenerator[bytes, None]:
        yield b"a"
        raise asyncio.CancelledError  # the client's task cancelled while it waited

    async def go() -> tuple[list[int], list[int]]:
        ended: list[int] = []
        relay = relay_of(FakeClient(), two_frames([]), ended)
        assert [frame async for frame in relay] == [b"start", b"a", b"b"]
        await relay.aclose()
        failed: list[int] = []
        relay = relay_of(FakeClient(), failing(), failed)
        with pytest.raises(asyncio.CancelledError):
            async for _ in relay:
                pass
        await relay.aclose()
        return ended, failed

    ended, failed = run(go())
    assert ended == [1]
    assert failed == [1]
