"""The repositories against real databases: SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import text

from tailwinds.messages import ChatMessage, Usage
from tailwinds.store.apikeys import ApiKeyRepository, check_key, hash_key
from tailwinds.store.chatflows import ChatflowRepository
from tailwinds.store.db import MIGRATIONS, Database
from tailwinds.store.messages import MessageRepository, StoredTurn


def run(database_url: str, scenario) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        db = Database(database_url)
        try:
            await db.migrate()
            await db.migrate()  # applying twice is a no-op
            await scenario(db)
        finally:
            await db.close()

    asyncio.run(main())


def head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def test_migrations_create_the_tables(database_url: str) -> None:
    async def scenario(db: Database) -> None:
        async with db.engine.connect() as conn:
            version = (await conn.execute(text("select version_num from alembic_version"))).scalar()
            assert version == head_revision()
            for table in ("chatflows", "chat_messages", "api_keys", "credentials"):
                await conn.execute(text(f"select count(*) from {table}"))

    run(database_url, scenario)


def test_chatflow_repository(database_url: str) -> None:
    async def scenario(db: Database) -> None:
        repo = ChatflowRepository(db)
        created = await repo.create("a", {"nodes": [{"id": "x"}]}, allowed_overrides=["vars"])
        fetched = await repo.get(created.id)
        assert fetched == created
        updated = await repo.update(created.id, {"name": "b", "flow_data": {"nodes": []}})
        assert updated is not None
        assert (updated.name, updated.flow_data, updated.version) == ("b", {"nodes": []}, 2)
        assert updated.allowed_overrides == ["vars"]
        assert created.id in {c.id for c in await repo.list()}
        assert await repo.count() >= 1
        assert await repo.delete(created.id)
        assert await repo.get(created.id) is None
        assert not await repo.delete(created.id)
        assert await repo.update(created.id, {"name": "c"}) is None

    run(database_url, scenario)


def test_history_window_skips_failed_turns(database_url: str) -> None:
    async def scenario(db: Database) -> None:
        repo = MessageRepository(db)
        start = datetime.now(UTC)

        def turn(i: int, status: str = "complete") -> StoredTurn:
            return StoredTurn(
                chatflow_id="cf",
                chat_id="chat",
                session_id="s",
                question=f"q{i}",
                message_id=f"{database_url[-8:]}-m{i}-{start.timestamp()}",
                answer=f"a{i}",
                status=status,
                error="boom" if status == "error" else None,
                usage=Usage(1, 2, 3) if i == 0 else None,
                asked_at=datetime.now(UTC),
            )

        for i in range(4):
            await repo.add_turn(turn(i, "error" if i == 2 else "complete"))
        history = await repo.history("cf", "s", 10)
        assert history == [
            ChatMessage("user", "q0"),
            ChatMessage("assistant", "a0"),
            ChatMessage("user", "q1"),
            ChatMessage("assistant", "a1"),
            ChatMessage("user", "q3"),
            ChatMessage("assistant", "a3"),
        ]
        assert await repo.history("cf", "s", 1) == [
            ChatMessage("user", "q3"),
            ChatMessage("assistant", "a3"),
        ]
        assert await repo.history("cf", "other", 5) == []
        listed = await repo.list_chat("cf", "chat")
        assert [m["content"] for m in listed] == ["q0", "a0", "q1", "a1", "q2", "a2", "q3", "a3"]
        assert listed[1]["usage"] == {"promptTokens": 1, "completionTokens": 2, "totalTokens": 3}
        assert listed[5]["status"] == "error"

    run(database_url, scenario)


def test_api_keys_are_hashed_and_checked(database_url: str) -> None:
    async def scenario(db: Database) -> None:
        repo = ApiKeyRepository(db)
        api_key, key = await repo.create("ci")
        async with db.engine.connect() as conn:
            stored = (
                await conn.execute(
                    text("select key_hash from api_keys where id = :id"), {"id": api_key.id}
                )
            ).scalar()
        assert key not in stored
        assert stored.startswith("scrypt$")
        assert await repo.verify(api_key.id, key)
        assert await repo.verify(api_key.id, key)  # the cached path
        assert not await repo.verify(api_key.id, key + "x")
        assert not await repo.verify("other-id", key)
        assert await repo.delete(api_key.id)
        assert not await repo.verify(api_key.id, key)

    run(database_url, scenario)


def test_hash_format() -> None:
    stored = hash_key("tw_abc")
    assert check_key("tw_abc", stored)
    assert not check_key("tw_abd", stored)
    assert not check_key("tw_abc", "garbage")
