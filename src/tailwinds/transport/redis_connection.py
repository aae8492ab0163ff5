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
import inspect
from collections.abc import Iterable
from typing import Any

from redis.asyncio.connection import (
    URL_QUERY_ARGUMENT_PARSERS,
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


# what a Redis URL may say: where Redis is, who we are, which database, TLS. Everything
# else (timeouts, retries, pool size, RESP version, decoding) the clients set themselves:
# the token path reads raw RESP2 replies as bytes, and the timeouts are sized for its
# blocking reads.
TAKEN = frozenset({"host", "port", "path", "db", "username", "password", "client_name"})
TAKEN_PREFIX = "ssl_"
# option names redis-py knows, which an error may quote (another name could be anything,
# even a password pasted in the wrong place)
_KNOWN = frozenset(URL_QUERY_ARGUMENT_PARSERS) | frozenset(
    name
    for kind in (AbstractConnection, Connection, SSLConnection, UnixDomainSocketConnection)
    for name in inspect.signature(kind.__init__).parameters
) - {"self", "kwargs"}


class RefusedOption(ValueError):
    """A Redis URL's option that the clients set themselves; the message quotes the
    option's name only when redis-py knows it."""


def url_options(url: str) -> dict[str, Any]:
    """The connection options a `redis://`, `rediss://` or `unix://` URL gives
    (redis-py's `parse_url`), with the cancellable connection class of its kind.

    Raises `RefusedOption` for an option outside `TAKEN` and `ssl_*`, and `ValueError`
    (from redis-py, its text may quote the URL) for a URL it cannot read."""
    options: dict[str, Any] = dict(parse_url(url))
    for name in options:
        if name in TAKEN or name == "connection_class" or name.startswith(TAKEN_PREFIX):
            continue
        quoted = f"the option {name!r}" if name in _KNOWN else "an option redis-py does not know"
        raise RefusedOption(
            f"{quoted} is not taken (the clients set their own timeouts, retries, pool and "
            f"RESP version); a URL may give db, username, password, client_name and ssl_*"
        )
    options["connection_class"] = _cancellable(options.get("connection_class", Connection))
    return options


def connection_class(url: str) -> type[AbstractConnection]:
    """The cancellable connection class for a `redis://`, `rediss://` or `unix://` URL."""
    return _cancellable(parse_url(url).get("connection_class", Connection))


def _cancellable(chosen: type[AbstractConnection]) -> type[AbstractConnection]:
    if issubclass(chosen, SSLConnection):
        return CancellableSSLConnection
    if issubclass(chosen, UnixDomainSocketConnection):
        return CancellableUnixConnection
    return CancellableConnection
