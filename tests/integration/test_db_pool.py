"""PostgreSQL connections that died while they sat in the pool (a server restart, a
firewall's idle timeout) are found and replaced before a statement is lost to them."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tailwinds.errors import StorageFailed
from tailwinds.store import db as db_module
from tailwinds.store.db import Database
from tailwinds.store.messages import MessageRepository, StoredTurn
from tests.conftest import POSTGRES_ADMIN_URL


async def kill_connections_of(database: str) -> int:
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        return len(
            await admin.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                database,
            )
        )
    finally:
        await admin.close()


async def a_read_after_its_connections_died(postgres_url: str) -> list[int]:
    db = Database(postgres_url, pool_size=3)
    try:
        # three connections in the pool, each given back
        answers = await asyncio.gather(
            *(db.run(lambda c: c.execute(text("SELECT 1")).scalar_one()) for _ in range(3))
        )
        assert answers == [1, 1, 1]
        assert await kill_connections_of(db.url.database or "") >= 1
        await asyncio.sleep(0.2)  # idle longer than IDLE_PING_S (made 0.1 s below)
        reads = [db.run(lambda c: c.execute(text("SELECT 2")).scalar_one()) for _ in range(3)]
        write = db.run(lambda c: c.execute(text("SELECT 3")).scalar_one(), transaction=True)
        answers = await asyncio.gather(*reads, write)
        async with db.session() as session:
            orm = (await session.execute(text("SELECT 4"))).scalar_one()
        return [*answers, orm]
    finally:
        await db.close()


@pytest.mark.parametrize("idle_ping_s", [0.1, 100], ids=["pinged", "not pinged"])
def test_connections_that_died_in_the_pool_are_replaced(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, idle_ping_s: float
) -> None:
    """Idle long enough, a connection is pinged and replaced before use; used moments
    ago, it is not pinged: its statement fails, and `Database.run` runs it again on a
    new one (the ORM session after it gets a new one too)."""
    monkeypatch.setattr(db_module, "IDLE_PING_S", idle_ping_s)
    assert asyncio.run(a_read_after_its_connections_died(postgres_url)) == [2, 2, 2, 3, 4]


async def turns_with_no_connection_free(postgres_url: str) -> tuple[list[object], int]:
    db = Database(postgres_url, pool_size=1)
    await db.engine.dispose()
    db.engine = create_async_engine(db.url, pool_size=1, max_overflow=0, pool_timeout=0.5)
    repo = MessageRepository(db)
    writes = 0
    write = repo._write

    async def counted(rows: list[dict[str, object]]) -> None:
        nonlocal writes
        writes += 1
        await write(rows)

    repo._write = counted  # type: ignore[method-assign]
    try:
        async with db.engine.connect() as held:  # the pool's one connection, held
            await held.execute(text("SELECT 1"))
            results = await asyncio.gather(
                *(repo.add_turn(stored_turn(f"c{i}")) for i in range(5)),
                return_exceptions=True,
            )
        return results, writes
    finally:
        await db.close()


def stored_turn(chat_id: str) -> StoredTurn:
    return StoredTurn(
        "cf",
        chat_id,
        chat_id,
        "q",
        str(uuid.uuid4()),
        "a",
        "complete",
        None,
        None,
        datetime.now(UTC),
    )


def test_a_pool_timeout_fails_the_batch_at_once(postgres_url: str) -> None:
    """No connection came free (the database stalls): the batch's turns fail together,
    not each again alone after another pool timeout."""
    results, writes = asyncio.run(turns_with_no_connection_free(postgres_url))
    assert all(isinstance(r, StorageFailed) for r in results), results
    assert writes == 1
