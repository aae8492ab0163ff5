"""PostgreSQL connections that died while they sat in the pool (a server restart, a
firewall's idle timeout) are found and replaced before a statement is lost to them."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import text

from tailwinds.store import db as db_module
from tailwinds.store.db import Database
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
        async with db.session() as session:
            orm = (await session.execute(text("SELECT 4"))).scalar_one()
        return [*await asyncio.gather(*reads, write), orm]
    finally:
        await db.close()


def test_connections_that_died_idle_are_replaced_before_use(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "IDLE_PING_S", 0.1)
    assert asyncio.run(a_read_after_its_connections_died(postgres_url)) == [2, 2, 2, 3, 4]
