"""New requests start a few per turn of the event loop, in order, on both loops the server
runs on; a request that leaves while waiting is skipped; an idle server starts one at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from tailwinds.server.pacing import RequestPacing


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    return uvloop.run if request.param == "uvloop" else asyncio.run


def test_one_request_starts_per_turn_in_order(run: Callable[..., Any]) -> None:
    async def main() -> tuple[list[tuple[int, int]], int]:
        turns = 0
        stop = False

        def count_turns() -> None:
            # a call_soon callback scheduled during a turn runs in the next one
            nonlocal turns
            turns += 1
            if not stop:
                asyncio.get_running_loop().call_soon(count_turns)

        asyncio.get_running_loop().call_soon(count_turns)
        await asyncio.sleep(0)
        pacing = RequestPacing(per_turn=2)
        started: list[tuple[int, int]] = []

        async def request(number: int) -> None:
            await pacing.turn()
            started.append((number, turns))

        tasks = [asyncio.create_task(request(n)) for n in range(8)]
        leaving = tasks[3]
        await asyncio.sleep(0)
        leaving.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0.01)
        before = turns
        await request(99)  # nothing waiting: starts in this very turn
        stop = True
        return started, before

    started, before = run(main())
    assert started[-1][1] == before
    assert [number for number, _ in started] == [0, 1, 2, 4, 5, 6, 7, 99]
    in_turn = [turn for _, turn in started[:7]]
    assert in_turn == sorted(in_turn)
    # two a turn: 0 and 1, then 2 and 4 (3 left), then 5 and 6, then 7
    assert [in_turn.count(turn) for turn in sorted(set(in_turn))] == [2, 2, 2, 1]
