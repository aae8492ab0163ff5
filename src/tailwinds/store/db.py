"""The database connection, and migrations applied at start."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, CursorResult, Result, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.sql.base import Executable

MIGRATIONS = Path(__file__).parent / "migrations"

T = TypeVar("T")


class Database:
    def __init__(self, url: str, pool_size: int = 30) -> None:
        """`pool_size`: PostgreSQL connections opened at most, and kept open (a statement
        beyond waits for one: connections opened per burst and closed after it cost a
        handshake each); SQLite's pool is SQLAlchemy's own."""
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        options: dict[str, Any] = {}
        if self.is_sqlite:
            if self.url.database and self.url.database != ":memory:":
                # `~` as a shell would read it: SQLite itself would open a folder named `~`
                try:
                    path = Path(self.url.database).expanduser()
                except RuntimeError:  # `~someone` who is no user here
                    raise ArgumentError(
                        f"the SQLite path {self.url.database!r} names no home folder here"
                    ) from None
                self.url = self.url.set(database=str(path))
                path.parent.mkdir(parents=True, exist_ok=True)
            options["connect_args"] = {"timeout": 30}
        else:
            options.update(pool_size=pool_size, max_overflow=0)
        self.engine = create_async_engine(self.url, **options)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            _ping_when_idle(self.engine.sync_engine)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite's statements of the prediction path (a chat's history, its turns): the
        # blocking driver on threads of its own, one hop per statement; aiosqlite hops
        # to its thread five times for one (cursor, execute, fetch, close, reset), which
        # cost ten times the query's CPU under load (bench: the fixed cost, issue 25).
        # Reads and writes each have a thread: a write waiting for SQLite's lock (a large
        # upsert holding it) never holds up a read, which WAL lets go on
        self._blocking: Engine | None = None
        self._threads: dict[bool, ThreadPoolExecutor] = {}
        if self.is_sqlite and self.url.database and self.url.database != ":memory:":
            self._blocking = create_engine(
                self.url.set(drivername="sqlite"),
                connect_args={"timeout": 30, "check_same_thread": False},
            )
            event.listen(self._blocking, "connect", _sqlite_pragmas)
            self._threads = {
                writes: ThreadPoolExecutor(1, thread_name_prefix=f"tailwinds-sqlite-{name}")
                for writes, name in ((False, "reads"), (True, "writes"))
            }

    def session(self) -> AsyncSession:
        return self.sessions()

    async def run(self, work: Callable[[Connection], T], *, transaction: bool = False) -> T:
        """`work(connection)`, blocking code, run where it does not block the event loop:
        SQLite's on a thread of its own (one for reads, one for writes), PostgreSQL's
        through the async driver (greenlets, no thread). `transaction`: committed when
        `work` returns, rolled back when it raises; without it, for reads, each statement
        stands alone (autocommit). On PostgreSQL, `work` runs a second time when its
        connection turns out to have died (it must be safe to repeat: a read, an upsert).
        Raises what `work` and the driver raise (SQLAlchemy's `DBAPIError`s, its
        `TimeoutError` when no connection came free in 30 s)."""
        if self._blocking is None:
            try:
                return await self._run_async(work, transaction)
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
                # the connection had died since it was last used (a restart, a failover):
                # the pool has let go of every connection as old, the next one is new
                return await self._run_async(work, transaction)
        engine = self._blocking

        def hop() -> T:
            with engine.begin() if transaction else engine.connect() as conn:
                return work(conn)

        return await asyncio.get_running_loop().run_in_executor(self._threads[transaction], hop)

    async def write_rows(self, statement: Executable, rows: list[dict[str, Any]]) -> None:
        """`statement` (an INSERT, an upsert) run once for each of `rows`, all of them or
        none. Raises as `run` does."""

        def write(conn: Connection) -> None:
            conn.execute(statement, rows)

        if self._blocking is not None:
            await self.run(write, transaction=True)
        else:
            # asyncpg sends every execution of one statement before a single Sync, which
            # PostgreSQL runs as one implicit transaction ("executemany() is now an atomic
            # operation", asyncpg 0.22): BEGIN and COMMIT would be two round trips more
            await self.run(write)

    async def _run_async(self, work: Callable[[Connection], T], transaction: bool) -> T:
        if transaction:
            async with self.engine.begin() as conn:
                return await conn.run_sync(work)
        # a read alone needs no BEGIN and ROLLBACK: two round trips fewer
        async with self.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            return await conn.run_sync(work)

    async def migrate(self) -> None:
        async with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # API nodes and workers starting together migrate one after the other: the
                # lock is held until this transaction (the migrations') commits
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATE_LOCK}
                )
            await conn.run_sync(_upgrade)

    async def close(self) -> None:
        if self._blocking is not None:
            loop = asyncio.get_running_loop()
            for thread in self._threads.values():
                await loop.run_in_executor(thread, lambda: None)  # what was asked is done
            await loop.run_in_executor(self._threads[True], self._blocking.dispose)
            for thread in self._threads.values():
                thread.shutdown()
        await self.engine.dispose()


MIGRATE_LOCK = 0x7A11_3D5  # any constant of ours; one lock per database

# a pooled connection idle this long (s) is pinged before it is used again
IDLE_PING_S = 5.0


def _ping_when_idle(engine: Engine) -> None:
    """Pessimistic disconnect handling, as SQLAlchemy's `pool_pre_ping` does it, for
    connections that sat idle: a server restarted or a firewall's idle timeout meanwhile
    is found before a statement is lost to it. A connection given back moments ago is
    used as it is: on asyncpg the ping is three round trips (BEGIN, a query, ROLLBACK),
    most of a chat history read's cost. A dead connection found by the ping is replaced
    (the pool retries the checkout); one that dies while busy fails its statement and
    makes the pool replace every connection older than it, and `Database.run` runs its
    work again on a new one."""

    def stamp(_dbapi: Any, record: Any, *_: Any) -> None:
        record.info["given_back_at"] = time.monotonic()

    def checkout(dbapi: Any, record: Any, _proxy: Any) -> None:
        given_back_at = record.info.get("given_back_at")
        if given_back_at is None or time.monotonic() - given_back_at < IDLE_PING_S:
            return
        try:
            engine.dialect.do_ping(dbapi)
        except engine.dialect.loaded_dbapi.Error as exc:
            if engine.dialect.is_disconnect(exc, dbapi, None):
                raise DisconnectionError(str(exc)) from exc
            raise

    event.listen(engine, "connect", stamp)
    event.listen(engine, "checkin", stamp)
    event.listen(engine, "checkout", checkout)


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers go on while an answer is written; the busy timeout queues writers
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE matched. (A statement without rows returns a
    `CursorResult`, which SQLAlchemy's `execute` is typed as the wider `Result`.)"""
    return int(cast("CursorResult[Any]", result).rowcount or 0)
