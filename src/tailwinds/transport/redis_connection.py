"""A redis-py connection whose commands can always be cancelled.

redis-py bounds each write of a command with `asyncio.wait_for(..., socket_timeout)`. On
Python 3.11, `wait_for` swallows a cancel that lands while its inner write is finishing
(CPython gh-86296, fixed in 3.12 by rebuilding `wait_for` on `asyncio.timeout`): the
command goes on and returns as if nothing happened. Measured against a real Redis, about
half the cancels of a task looping on `EVAL` were lost that way. For Tailwinds that was
issue 16's late disconnect: the API node cancelled the turn waiting in its chat's line as
soon as its client left, the cancel was lost inside a Redis command, and the turn kept
its place, took the chat when it came free and ran for nobody. Any task cancelled while
in a Redis command (a relay subscribing, a job enqueued) could miss its cancel the same
way.

The write here is bounded by `asyncio.timeout`, which keeps a cancel; everything else is
redis-py's own `send_packed_command`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
    parse_url,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


class CancellableWrites(AbstractConnection):
    """Mixed in ahead of a redis-py connection class (TCP, TLS or Unix socket)."""

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        if not self.is_connected:
            await self.connect_check_health(check_health=False)
        if check_health:
            await self.check_health()
        if isinstance(command, str):
            command = command.encode()
        if isinstance(command, bytes):
            command = [command]
        writer: Any = self._writer
        try:
            async with asyncio.timeout(self.socket_timeout):
                writer.writelines(command)
                await writer.drain()
        except TimeoutError:
            await self.disconnect(nowait=True)
            raise RedisTimeoutError("Timeout writing to socket") from None
        except OSError as exc:
            await self.disconnect(nowait=True)
            raise RedisConnectionError(f"Error while writing to socket: {exc}") from exc
        except BaseException:
            # a write cut half-way leaves the connection unusable (as redis-py does)
            await self.disconnect(nowait=True)
            raise


class CancellableConnection(CancellableWrites, Connection):
    pass


class CancellableSSLConnection(CancellableWrites, SSLConnection):
    pass


class CancellableUnixConnection(CancellableWrites, UnixDomainSocketConnection):
    pass


def connection_class(url: str) -> type[AbstractConnection]:
    """The cancellable connection class for a `redis://`, `rediss://` or `unix://` URL."""
    chosen = parse_url(url).get("connection_class", Connection)
    if issubclass(chosen, SSLConnection):
        return CancellableSSLConnection
    if issubclass(chosen, UnixDomainSocketConnection):
        return CancellableUnixConnection
    return CancellableConnection
