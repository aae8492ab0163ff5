"""A TCP proxy in front of Redis that loses one reply: what a client's retry meets when
Redis ran its command and the connection died before the answer came back."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit


class ReplyDropper:
    """A TCP proxy in front of Redis: once `armed`, the connection whose client sends a
    write holding `command` (by default a script, `EVAL` or `EVALSHA`) is cut as Redis's
    reply comes back. Redis ran it; the client never hears, and its retry sends the same
    again on a new connection."""

    def __init__(self, redis_url: str, command: bytes = b"EVAL", holding: bytes = b"") -> None:
        """`holding`: only a reply holding these bytes is lost (the others pass, armed
        still): a read's reply with a given job, say, not an empty one."""
        self.command = command
        self.holding = holding
        parts = urlsplit(redis_url)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self.db = parts.path or "/0"
        self.armed = False
        self.seen = 0  # writes holding `command` sent while armed
        self.dropped = 0

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}{self.db}"

    async def __aexit__(self, *_: object) -> None:
        self.server.close()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        redis_r, redis_w = await asyncio.open_connection(*self.target)
        script_sent = False

        async def up() -> None:
            nonlocal script_sent
            while data := await client_r.read(65536):
                if self.armed and self.command in data:
                    script_sent, self.seen = True, self.seen + 1
                redis_w.write(data)
                await redis_w.drain()

        async def down() -> None:
            while data := await redis_r.read(65536):
                if script_sent and self.holding in data:
                    self.armed, self.dropped = False, self.dropped + 1
                    return  # the reply goes nowhere
                client_w.write(data)
                await client_w.drain()

        tasks = [asyncio.create_task(up()), asyncio.create_task(down())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        client_w.close()
        redis_w.close()


@contextmanager
def dropper_in_thread(
    redis_url: str, command: bytes, holding: bytes = b""
) -> Iterator[tuple[ReplyDropper, str]]:
    """A `ReplyDropper` on an event loop of its own, for other processes (a worker) to
    connect through: the dropper and its Redis URL."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    dropper = ReplyDropper(redis_url, command, holding)
    url = asyncio.run_coroutine_threadsafe(dropper.__aenter__(), loop).result(10)
    try:
        yield dropper, url
    finally:
        asyncio.run_coroutine_threadsafe(dropper.__aexit__(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
