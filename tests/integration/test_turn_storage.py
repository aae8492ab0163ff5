"""Turns stored on SQLite and PostgreSQL whatever their text holds; one refused turn never
takes the others with it; storing a turn again (a queue job run twice) finishes it."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from tailwinds import metrics
from tailwinds.errors import StorageFailed
from tailwinds.messages import ChatMessage, Usage
from tailwinds.store.db import Database
from tailwinds.store.messages import MessageRepository, StoredTurn
from tailwinds.store.storable import REPLACEMENT

MARK = "refuse-me"  # what the test's trigger refuses, as a database refuses a row
SQLITE_TRIGGER = [
    f"""CREATE TRIGGER refuse_marked BEFORE INSERT ON chat_messages
    WHEN NEW.content LIKE '%{MARK}%' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"""
]
POSTGRES_TRIGGER = [
    f"""CREATE OR REPLACE FUNCTION refuse_marked() RETURNS trigger AS $$ BEGIN
    IF NEW.content LIKE '%{MARK}%' THEN RAISE EXCEPTION 'refused by the test'; END IF;
    RETURN NEW; END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER refuse_marked BEFORE INSERT ON chat_messages
    FOR EACH ROW EXECUTE FUNCTION refuse_marked()""",
]


def run(database_url: str, scenario: Callable[[Database], Awaitable[None]]) -> None:
    async def main() -> None:
        db = Database(database_url)
        try:
            await db.migrate()
            await scenario(db)
        finally:
            await db.close()

    asyncio.run(main())


async def with_refusals(db: Database, scenario: Callable[[], Awaitable[None]]) -> None:
    """Run `scenario` while the database refuses every row whose content holds MARK."""
    statements = SQLITE_TRIGGER if db.is_sqlite else POSTGRES_TRIGGER
    async with db.engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))
    try:
        await scenario()
    finally:
        async with db.engine.begin() as conn:
            await conn.execute(
                text("DROP TRIGGER IF EXISTS refuse_marked ON chat_messages")
                if not db.is_sqlite
                else text("DROP TRIGGER IF EXISTS refuse_marked")
            )


def turn(
    chatflow_id: str,
    chat_id: str,
    question: str = "q",
    answer: str = "a",
    *,
    message_id: str | None = None,
    status: str = "complete",
    error: str | None = None,
    used_tools: list[dict[str, object]] | None = None,
) -> StoredTurn:
    return StoredTurn(
        chatflow_id=chatflow_id,
        chat_id=chat_id,
        session_id=chat_id,
        question=question,
        message_id=message_id or str(uuid.uuid4()),
        answer=answer,
        status=status,
        error=error,
        usage=Usage(1, 2, 3),
        asked_at=datetime.now(UTC),
        used_tools=used_tools,
    )


def flow_id() -> str:
    return str(uuid.uuid4())


def test_text_no_database_takes_is_stored_replaced(database_url: str) -> None:
    async def scenario(db: Database) -> None:
        repo = MessageRepository(db)
        cf = flow_id()
        await repo.add_turn(
            turn(
                cf,
                "c",
                "a question\x00with a NUL",
                "binary\x00tail, U+FFFF \uffff, U+FFFE \ufffe, lone \ud800, split \ud83d\ude00",
                status="error",
                error="the provider said \x00 and \udfff",
                used_tools=[{"tool": "t", "toolInput": {"q": "\ud800"}, "toolOutput": "\x00"}],
            )
        )
        question, answer = await repo.list_chat(cf, "c")
        assert question["content"] == f"a question{REPLACEMENT}with a NUL"
        assert answer["content"] == (
            f"binary{REPLACEMENT}tail, U+FFFF \uffff, U+FFFE \ufffe, lone {REPLACEMENT}, split 😀"
        )
        assert answer["error"] == f"the provider said {REPLACEMENT} and {REPLACEMENT}"
        assert answer["usedTools"] == [
            {"tool": "t", "toolInput": {"q": REPLACEMENT}, "toolOutput": "\x00"}
        ]

    run(database_url, scenario)


def test_ids_longer_than_their_column_or_with_nul_are_stored_and_found(database_url: str) -> None:
    async def scenario(db: Database) -> None:
        repo = MessageRepository(db)
        cf = flow_id()
        long_id = "s" * 300 + ":node_0"  # a chatflowTool's sub-chat of a long chat id
        await repo.add_turn(turn(cf, long_id, "q1", "a1"))
        await repo.add_turn(turn(cf, "a\x00b", "q2", "a2"))
        assert [m["content"] for m in await repo.list_chat(cf, long_id)] == ["q1", "a1"]
        assert await repo.history(cf, long_id, 5) == [
            ChatMessage("user", "q1"),
            ChatMessage("assistant", "a1"),
        ]
        assert [m["content"] for m in await repo.list_chat(cf, "a\x00b")] == ["q2", "a2"]
        assert await repo.list_chat(cf, "s" * 300) == []

    run(database_url, scenario)


def test_one_refused_turn_does_not_lose_the_others_of_its_batch(database_url: str) -> None:
    async def scenario(db: Database) -> None:
        repo = MessageRepository(db)
        cf = flow_id()
        before = metrics.TURNS_NOT_STORED._value.get()

        async def batch() -> None:
            turns = [turn(cf, f"c{i}", f"q{i}", MARK if i == 7 else f"a{i}") for i in range(20)]
            results = await asyncio.gather(
                *(repo.add_turn(t) for t in turns), return_exceptions=True
            )
            assert [i for i, r in enumerate(results) if r is not None] == [7]
            assert isinstance(results[7], StorageFailed)

        await with_refusals(db, batch)
        for i in range(20):
            stored = [m["content"] for m in await repo.list_chat(cf, f"c{i}")]
            assert stored == ([] if i == 7 else [f"q{i}", f"a{i}"]), i
        assert metrics.TURNS_NOT_STORED._value.get() == before + 1

    run(database_url, scenario)


def test_a_turn_stored_again_finishes_its_first_try(database_url: str) -> None:
    async def scenario(db: Database) -> None:
        repo = MessageRepository(db)
        cf, message_id = flow_id(), str(uuid.uuid4())
        # a queue job's first try ended when its worker lost Redis; the job ran again
        await repo.add_turn(turn(cf, "c", "q", "", message_id=message_id, status="aborted"))
        await repo.add_turn(turn(cf, "c", "q", "the whole answer", message_id=message_id))
        listed = await repo.list_chat(cf, "c")
        assert [(m["role"], m["content"], m["status"]) for m in listed] == [
            ("userMessage", "q", "complete"),
            ("apiMessage", "the whole answer", "complete"),
        ]
        assert listed[1]["id"] == message_id
        # a late write of the first try does not undo the answer
        await repo.add_turn(
            turn(cf, "c", "q", "", message_id=message_id, status="error", error="lost")
        )
        listed = await repo.list_chat(cf, "c")
        assert [(m["content"], m["status"]) for m in listed] == [
            ("q", "complete"),
            ("the whole answer", "complete"),
        ]
        assert await repo.history(cf, "c", 5) == [
            ChatMessage("user", "q"),
            ChatMessage("assistant", "the whole answer"),
        ]

    run(database_url, scenario)


def test_the_same_turn_twice_in_one_batch(database_url: str) -> None:
    async def scenario(db: Database) -> None:
        repo = MessageRepository(db)
        cf, message_id = flow_id(), str(uuid.uuid4())
        await asyncio.gather(
            repo.add_turn(turn(cf, "c", "q", "", message_id=message_id, status="aborted")),
            repo.add_turn(turn(cf, "c", "q", "answer", message_id=message_id)),
        )
        listed = await repo.list_chat(cf, "c")
        assert [(m["content"], m["status"]) for m in listed] == [
            ("q", "complete"),
            ("answer", "complete"),
        ]

    run(database_url, scenario)


@pytest.mark.parametrize(
    ("answer", "status"),
    [("", "complete"), ("", "aborted"), (" \n", "complete"), ("half an answ", "error")],
)
def test_memory_leaves_out_empty_and_failed_turns(
    database_url: str, answer: str, status: str
) -> None:
    async def scenario(db: Database) -> None:
        repo = MessageRepository(db)
        cf = flow_id()
        await repo.add_turn(turn(cf, "c", "q1", "a1"))
        await repo.add_turn(turn(cf, "c", "q2", answer, status=status))
        await repo.add_turn(turn(cf, "c", "q3", "stopped part-", status="aborted"))
        await repo.add_turn(turn(cf, "c", "q4", "a4"))
        assert await repo.history(cf, "c", 10) == [
            ChatMessage("user", "q1"),
            ChatMessage("assistant", "a1"),
            ChatMessage("user", "q3"),
            ChatMessage("assistant", "stopped part-"),
            ChatMessage("user", "q4"),
            ChatMessage("assistant", "a4"),
        ]
        # the window counts the turns kept, not those left out
        assert await repo.history(cf, "c", 2) == [
            ChatMessage("user", "q3"),
            ChatMessage("assistant", "stopped part-"),
            ChatMessage("user", "q4"),
            ChatMessage("assistant", "a4"),
        ]

    run(database_url, scenario)


def test_a_database_that_cannot_be_reached_fails_every_turn_at_once() -> None:
    async def scenario() -> None:
        db = Database("postgresql+asyncpg://nobody@127.0.0.1:9/none")  # nothing listens
        try:
            repo = MessageRepository(db)
            before = metrics.TURNS_NOT_STORED._value.get()
            results = await asyncio.gather(
                *(repo.add_turn(turn("cf", f"c{i}")) for i in range(5)), return_exceptions=True
            )
            assert all(isinstance(r, StorageFailed) for r in results), results
            assert metrics.TURNS_NOT_STORED._value.get() == before + 5
        finally:
            await db.close()

    asyncio.run(scenario())


def test_a_write_waiting_for_sqlites_lock_holds_up_no_history_read(tmp_path: Path) -> None:
    """Another writer holds SQLite's lock (a large upsert, say): a turn's write waits for
    it, and meanwhile a chat's history is read all the same (WAL lets reads go on)."""

    async def scenario(db: Database) -> None:
        repo = MessageRepository(db)
        cf = flow_id()
        await repo.add_turn(turn(cf, "c", "q1", "a1"))
        holder = sqlite3.connect(tmp_path / "tailwinds.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # the write lock, held
        try:
            write = asyncio.ensure_future(repo.add_turn(turn(cf, "c", "q2", "a2")))
            await asyncio.sleep(0.3)
            assert not write.done()  # waiting for the lock
            history = await asyncio.wait_for(repo.history(cf, "c", 5), 5)
            assert [m.content for m in history] == ["q1", "a1"]
        finally:
            holder.execute("COMMIT")
            holder.close()
        await asyncio.wait_for(write, 10)
        assert [m.content for m in await repo.history(cf, "c", 5)] == ["q1", "a1", "q2", "a2"]

    run(f"sqlite+aiosqlite:///{tmp_path / 'tailwinds.db'}", scenario)


def test_an_sqlite_path_with_a_tilde_is_the_home_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))

    async def scenario(db: Database) -> None:
        repo = MessageRepository(db)
        await repo.add_turn(turn("cf", "c", "q", "a"))
        assert [m.content for m in await repo.history("cf", "c", 1)] == ["q", "a"]

    run("sqlite+aiosqlite:///~/in home/tailwinds.db", scenario)
    assert (tmp_path / "in home" / "tailwinds.db").is_file()
    assert not Path("~").exists()
