"""`before_disconnect`: work that may wait long before anything is sent (a turn waiting
for its chat) is cancelled when its client leaves, and only then."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from tailwinds.server.disconnect import before_disconnect


class Client:
    """An ASGI `receive` whose client leaves when told (the body was read already)."""

    def __init__(self) -> None:
        self.gone = asyncio.Event()
        self.watched = asyncio.Event()  # someone waits on `receive`
        self.waiting = 0  # calls of `receive` still waiting

    async def receive(self) -> dict[str, Any]:
        self.waiting += 1
        self.watched.set()
        try:
            await self.gone.wait()
        finally:
            self.waiting -= 1
        return {"type": "http.disconnect"}


def test_a_client_that_leaves_cancels_the_wait() -> None:
    async def go() -> tuple[tuple[bool, Any], list[str]]:
        client, log = Client(), []

        async def wait_for_chat() -> str:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                log.append("place given back")
                raise
            return "admitted"

        task = asyncio.create_task(before_disconnect(client.receive, wait_for_chat()))
        await client.watched.wait()
        client.gone.set()
        return await task, log

    result, log = asyncio.run(go())
    assert result == (False, None)
    assert log == ["place given back"]


def test_work_done_first_is_returned_and_the_watch_ends() -> None:
    async def go() -> tuple[tuple[bool, Any], int]:
        client = Client()

        async def admit() -> str:
            await asyncio.sleep(0)
            return "admitted"

        result = await before_disconnect(client.receive, admit())
        await asyncio.sleep(0)  # the watcher's cancel lands
        return result, client.waiting

    result, waiting = asyncio.run(go())
    assert result == (True, "admitted")
    assert waiting == 0


def test_the_work_s_error_is_raised() -> None:
    async def refused() -> None:
        raise LookupError("no such chatflow")

    with pytest.raises(LookupError):
        asyncio.run(before_disconnect(Client().receive, refused()))


def test_work_that_loses_its_cancel_is_undone_not_used() -> None:
    # the shape of a library that swallows a cancel (Python 3.11's `wait_for`): the work
    # goes on and returns as if nothing happened
    async def go() -> tuple[tuple[bool, Any], list[str]]:
        client, undone = Client(), []
        leave = asyncio.Event()

        async def admit_swallowing_the_cancel() -> str:
            with contextlib.suppress(asyncio.CancelledError):  # lost here
                await leave.wait()
            return "admitted"

        async def cancel_lands() -> None:
            await client.watched.wait()
            client.gone.set()

        asyncio.get_running_loop().create_task(cancel_lands())
        result = await before_disconnect(
            client.receive, admit_swallowing_the_cancel(), undo=undone.append
        )
        return result, undone

    result, undone = asyncio.run(go())
    assert result == (False, None)
    assert undone == ["admitted"]
