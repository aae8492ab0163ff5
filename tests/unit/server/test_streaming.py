"""The SSE response against a stand-in for uvicorn's request cycle: keep-alives within one
period of the last write, a client that takes no write for the write bound dropped (run
closed, connection reset), and the non-streaming answer's disconnect watch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
import uvloop

from tailwinds.engine.events import KEEPALIVE
from tailwinds.server.disconnect import unless_disconnected
from tailwinds.server.streaming import RAW_SEND, SSEResponse


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    return uvloop.run if request.param == "uvloop" else asyncio.run


class Transport:
    def __init__(self, cycle: Cycle) -> None:
        self.cycle = cycle
        self.aborted = False

    def abort(self) -> None:
        # as an asyncio transport: the protocol hears of the loss in a callback
        self.aborted = True
        asyncio.get_running_loop().call_soon(self.cycle.connection_lost)


class Cycle:
    """What the SSE response sees of uvicorn's RequestResponseCycle: `send` waits while
    the transport is paused, and returns at once once the connection is lost; `receive`
    says `http.disconnect` then."""

    def __init__(self) -> None:
        self.transport = Transport(self)
        self.writable = asyncio.Event()
        self.writable.set()
        self.lost = asyncio.Event()
        self.disconnected = False
        self.bodies: list[tuple[float, bytes, bool]] = []  # (loop time, body, more_body)
        self.pinged_twice = asyncio.Event()

    def pause(self) -> None:
        self.writable.clear()

    def connection_lost(self) -> None:
        self.disconnected = True
        self.lost.set()
        self.writable.set()

    async def send(self, message: dict[str, Any]) -> None:
        if not self.writable.is_set() and not self.disconnected:
            await self.writable.wait()
        if self.disconnected:
            return
        if message["type"] == "http.response.body":
            now = asyncio.get_running_loop().time()
            self.bodies.append((now, message["body"], message["more_body"]))
            if sum(body == KEEPALIVE for _, body, _ in self.bodies) == 2:
                self.pinged_twice.set()

    async def receive(self) -> dict[str, Any]:
        await self.lost.wait()
        return {"type": "http.disconnect"}


async def serve(response: SSEResponse, cycle: Cycle, raw_send: Any = None) -> None:
    scope = {"type": "http", RAW_SEND: raw_send or cycle.send}
    await response(scope, cycle.receive, cycle.send)


def test_the_first_keepalive_comes_within_one_period_of_the_last_write(
    run: Callable[..., Any],
) -> None:
    keepalive_s = 0.2

    async def main() -> tuple[list[float], Cycle]:
        cycle = Cycle()

        async def frames() -> AsyncIterator[bytes]:
            yield b"event: token\n\n"
            await cycle.pinged_twice.wait()  # silent until then
            yield b"event: end\n\n"

        await asyncio.wait_for(serve(SSEResponse(frames(), keepalive_s, 5.0), cycle), 5)
        times = [t for t, body, _ in cycle.bodies if body]
        return times, cycle

    times, cycle = run(main())
    bodies = [body for _, body, _ in cycle.bodies if body]
    assert bodies == [b"event: token\n\n", KEEPALIVE, KEEPALIVE, b"event: end\n\n"]
    first_gap, second_gap = times[1] - times[0], times[2] - times[1]
    # one period (not up to two) into the silence, and one period between pings
    assert 0 < first_gap < 1.5 * keepalive_s, first_gap
    assert 0.5 * keepalive_s < second_gap < 1.5 * keepalive_s, second_gap
    assert cycle.bodies[-1][1:] == (b"", False)


def frames_then_forever(cycle: Cycle, closed: list[bool], count: int = 3) -> AsyncIterator[bytes]:
    async def frames() -> AsyncIterator[bytes]:
        cycle.pause()  # the client reads nothing from the first event on
        try:
            for i in range(count):
                yield b"event: token\ndata: %d\n\n" % i
            await asyncio.Event().wait()  # a run still going
            yield b"never"
        finally:
            closed.append(True)

    return frames()


def test_a_client_that_takes_no_write_is_dropped_and_its_run_closed(
    run: Callable[..., Any],
) -> None:
    async def main() -> tuple[Cycle, SSEResponse, list[bool]]:
        cycle = Cycle()
        closed: list[bool] = []
        response = SSEResponse(frames_then_forever(cycle, closed), 0.1, 0.4)
        await asyncio.wait_for(serve(response, cycle), 5)
        return cycle, response, closed

    cycle, response, closed = run(main())
    assert response.disconnected
    assert closed == [True]  # the run's events were closed: the runner stores it aborted
    assert cycle.transport.aborted  # a reset: close() would wait for the client forever
    assert cycle.bodies == []  # nothing was taken, not even the end of the body


def test_a_slow_client_that_keeps_taking_writes_is_not_dropped(
    run: Callable[..., Any],
) -> None:
    async def main() -> Cycle:
        cycle = Cycle()

        async def frames() -> AsyncIterator[bytes]:
            for i in range(12):
                cycle.pause()
                # the client takes a write every 0.1 s: well within the 0.4 s bound
                asyncio.get_running_loop().call_later(0.1, cycle.writable.set)
                yield b"event: token\ndata: %d\n\n" % i

        await asyncio.wait_for(serve(SSEResponse(frames(), 0.1, 0.4), cycle), 5)
        return cycle

    cycle = run(main())
    assert not cycle.transport.aborted
    tokens = [body for _, body, _ in cycle.bodies if body.startswith(b"event: token")]
    assert len(tokens) == 12
    assert cycle.bodies[-1][1:] == (b"", False)


def test_the_last_chunk_is_bounded_too(run: Callable[..., Any]) -> None:
    async def main() -> Cycle:
        cycle = Cycle()

        async def frames() -> AsyncIterator[bytes]:
            yield b"event: end\n\n"
            cycle.pause()  # the client stops reading after the last event

        await asyncio.wait_for(serve(SSEResponse(frames(), 0.1, 0.3), cycle), 5)
        return cycle

    cycle = run(main())
    assert cycle.transport.aborted
    assert [body for _, body, _ in cycle.bodies] == [b"event: end\n\n"]


def test_without_a_transport_to_reset_the_run_is_still_stopped(
    run: Callable[..., Any],
) -> None:
    async def main() -> tuple[SSEResponse, list[bool]]:
        cycle = Cycle()
        closed: list[bool] = []

        async def plain_send(message: dict[str, Any]) -> None:  # a server's send, opaque
            await cycle.send(message)

        response = SSEResponse(frames_then_forever(cycle, closed), 0, 0.3)  # no keep-alives either
        await asyncio.wait_for(serve(response, cycle, plain_send), 5)
        return response, closed

    response, closed = run(main())
    assert response.disconnected and closed == [True]


def test_a_disconnect_cancels_a_non_streaming_answer(run: Callable[..., Any]) -> None:
    async def main() -> tuple[tuple[bool, Any], list[str], tuple[bool, Any]]:
        cycle = Cycle()
        seen: list[str] = []

        async def answer() -> str:
            try:
                asyncio.get_running_loop().call_later(0.05, cycle.connection_lost)
                await asyncio.Event().wait()  # the model, still answering
                return "never"
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise

        left = await asyncio.wait_for(unless_disconnected(cycle.receive, answer()), 5)
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0
        await asyncio.sleep(0)  # nothing of the watch is left to cancel us later

        async def quick() -> str:
            return "the answer"

        stayed = await unless_disconnected(Cycle().receive, quick())
        return left, seen, stayed

    left, seen, stayed = run(main())
    assert left == (False, None)
    assert seen == ["cancelled"]
    assert stayed == (True, "the answer")
