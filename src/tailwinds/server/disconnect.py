"""Noticing a client that has left while its answer is still being made.

Once the request body is read, the only message ASGI `receive` can still give is
`http.disconnect` (uvicorn sends it when the connection is lost), so one task waiting on
`receive` learns it the moment it happens, at no cost per token. What to do then is the
caller's: cancel the task that drives the run, which closes the model's request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from starlette.types import Receive

T = TypeVar("T")


async def watch_disconnect(receive: Receive, on_disconnect: Callable[[], None]) -> None:
    """Call `on_disconnect` when `receive` says `http.disconnect`; run it as a task and
    cancel it when the answer is done."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            on_disconnect()
            return


async def unless_disconnected(receive: Receive, work: Awaitable[T]) -> tuple[bool, T | None]:
    """Await `work` in this task; when the client disconnects first, cancel it there.

    Returns `(True, result)`, or `(False, None)` when the client left (the cancel has been
    absorbed: the caller goes on and sends nothing that matters). Any other cancel of this
    task propagates as usual."""
    task = asyncio.current_task()
    assert task is not None
    gone = False

    def left() -> None:
        nonlocal gone
        gone = True
        task.cancel()

    watcher = asyncio.create_task(watch_disconnect(receive, left))
    try:
        return True, await work
    except asyncio.CancelledError:
        if not gone:
            raise
        task.uncancel()
        return False, None
    finally:
        # synchronous, before this task's next await: a disconnect seen from now on can
        # no longer cancel anything
        watcher.cancel()


async def before_disconnect(
    receive: Receive,
    work: Coroutine[Any, Any, T],
    undo: Callable[[T], object] | None = None,
) -> tuple[bool, T | None]:
    """Run `work` (which may wait long with nothing to send: a turn waiting for its chat)
    in a task of its own while watching the client; when the client leaves first, cancel
    it, so that it gives back what it held or waited for.

    Returns `(True, result)` (also when `work` ended anyway after the client left: what
    comes next sees the disconnect), or `(False, None)` when the client left and `work`
    was cancelled. Raises what `work` raises. A task rather than a cancel of the caller's
    own: a cancel that comes just as `work` returns would hit the caller's next await.

    `work` that returns after it was cancelled lost the cancel somewhere inside (Python
    3.11's `asyncio.wait_for` swallows one that lands as its inner await finishes): with
    `undo`, what it returned is given to `undo` and `(False, None)` returned, so nothing
    runs for a client that is gone."""
    job = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait((job, gone), return_when=asyncio.FIRST_COMPLETED)
        if not job.done():
            job.cancel()
            await asyncio.wait((job,))
            if job.cancelled():
                return False, None
            if undo is not None and job.exception() is None:
                undo(job.result())
                return False, None
    except BaseException:
        job.cancel()
        raise
    finally:
        gone.cancel()
    return True, job.result()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
