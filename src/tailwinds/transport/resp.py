"""Redis commands packed and sent by hand, for the two commands on the token path.

redis-py packs each argument of each command in Python and runs each reply through a
callback that rebuilds it as dicts: with an `XREAD` naming hundreds of relayed streams
and a pipeline of an `XADD` per frame, redis-py was about a third of both the API node's
and the worker's CPU in queue mode's profile (bench/RESULTS.md, issue 25). Here
a command is packed by one `b"".join` of parts cached where they repeat, sent on a
connection taken from redis-py's own pool, and its reply read by redis-py's parser
(hiredis when installed) without the callback. Everything else stays redis-py's.

The wire format is RESP2's array of bulk strings (https://redis.io/docs/latest/develop/
reference/protocol-spec/#bulk-strings); `tests/test_resp_conformance.py` holds `pack`
to redis-py's own packer byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import NoScriptError, ResponseError


def bulk(arg: bytes) -> bytes:
    """One argument as a RESP bulk string: `$<length>\\r\\n<bytes>\\r\\n`."""
    return b"$%d\r\n%b\r\n" % (len(arg), arg)


def pack(args: Sequence[bytes]) -> bytes:
    """A command (its name first) as RESP2 bytes."""
    return b"*%d\r\n" % len(args) + b"".join([b"$%d\r\n%b\r\n" % (len(a), a) for a in args])


def pack_bulks(count: int, bulks: Sequence[bytes]) -> bytes:
    """A command of `count` arguments whose bulk strings (`bulk(...)`) are already made."""
    return b"*%d\r\n" % count + b"".join(bulks)


async def execute_packed(redis: Redis, command: bytes, replies: int = 1) -> Any:
    """Send packed commands (`replies` of them, in one write) on a connection of `redis`'s
    pool; the last one's reply as the parser gives it (lists, bytes, ints, maps in RESP3),
    with no response callback. A reply that is an error is raised as redis-py raises it
    (`ResponseError` and its kinds). A connection that fails is sent the command again on
    a fresh one as redis-py's own commands and pipelines are, by the pool's `Retry` (none
    for a client made with `reconnects=0`), then the error raised (`ConnectionError`,
    `TimeoutError`)."""
    pool = redis.connection_pool
    conn = await pool.get_connection()
    try:
        return await _execute_on(conn, command, replies)
    finally:
        await pool.release(conn)


class HeldConnection:
    """One connection of `redis`'s pool, taken at first use and kept, for a user that
    sends one command at a time (the worker's event writer, an API node's reader): the
    pool's checkout and release for each command were ~10 % of an API node's CPU at 200
    paced streams (py-spy, bench/RESULTS.md, issue 25). `execute` is `execute_packed` on
    it, retries included; a connection that failed is reconnected by its next command,
    and the client's `aclose()` closes it with the pool's others. Not for concurrent use:
    two commands in flight would read each other's replies."""

    __slots__ = ("_conn", "redis")

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._conn: AbstractConnection | None = None

    async def execute(self, command: bytes, replies: int = 1) -> Any:
        conn = self._conn
        if conn is None:
            conn = self._conn = await self.redis.connection_pool.get_connection()
        return await _execute_on(conn, command, replies)


async def _execute_on(conn: AbstractConnection, command: bytes, replies: int) -> Any:
    async def once() -> Any:
        await conn.send_packed_command(command)
        for _ in range(replies - 1):
            earlier = await conn.read_response()
            if isinstance(earlier, ResponseError):
                raise earlier
        return await conn.read_response()

    async def dropped(_: BaseException) -> None:
        await conn.disconnect()

    try:
        retry = conn.retry
        reply = await (once() if retry is None else retry.call_with_retry(once, dropped))
    except BaseException:
        # cut in the middle (a cancel, a timeout): its reply may still come, and would be
        # read as the next command's
        await conn.disconnect()
        raise
    if isinstance(reply, ResponseError):
        raise reply
    return reply


class Script:
    """A Lua script run by `EVALSHA`, loaded on first use and again after Redis lost it
    (a restart, `SCRIPT FLUSH`)."""

    __slots__ = ("_evalsha", "source")

    def __init__(self, source: str) -> None:
        import hashlib

        self.source = source
        sha = hashlib.sha1(source.encode()).hexdigest().encode()
        self._evalsha = bulk(b"EVALSHA") + bulk(sha)

    async def run(self, conn: HeldConnection, keys: Sequence[bytes], args: Sequence[bytes]) -> Any:
        """The script's reply; `keys` and `args` as bulk strings (`bulk(...)`)."""
        command = pack_bulks(
            3 + len(keys) + len(args), [self._evalsha, bulk(b"%d" % len(keys)), *keys, *args]
        )
        try:
            return await conn.execute(command)
        except NoScriptError:
            await conn.redis.script_load(self.source)
            return await conn.execute(command)
