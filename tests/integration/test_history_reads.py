"""Histories read together (PostgreSQL: one statement for those asked in one turn of the
event loop) are each what it would be read alone: its own session's rows, in order, to its
limit; and an asker that leaves, a read that fails or one that is stuck costs the others
nothing more."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from tailwinds.messages import ChatMessage
from tailwinds.store.db import Database
from tailwinds.store.history_reads import BATCH_MAX, HistoryReads
from tailwinds.store.messages import MessageRepository, StoredTurn
from tests.integration.test_store import run

ASKED = datetime(2026, 1, 1, tzinfo=UTC)
# chatflows of this module's own: the PostgreSQL database is the test session's
CF, CF1, CF2 = (f"{name}-{uuid.uuid4().hex[:8]}" for name in ("hr", "hr1", "hr2"))


def turn(chatflow_id: str, session: str, n: int, status: str = "complete") -> StoredTurn:
    return StoredTurn(
        chatflow_id=chatflow_id,
        chat_id=session,
        session_id=session,
        question=f"{session} q{n}",
        message_id=f"{chatflow_id}-{session}-{n}",
        answer=f"{session} a{n}",
        status=status,
        error=None,
        usage=None,
        asked_at=ASKED + timedelta(seconds=n),
    )


def pairs(session: str, *turns: int) -> list[ChatMessage]:
    return [
        ChatMessage(role, f"{session} {letter}{n}")
        for n in turns
        for role, letter in (("user", "q"), ("assistant", "a"))
    ]


def statements(db: Database) -> list[str]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "chat_messages" in statement and statement.lstrip().startswith("SELECT"):
            seen.append(statement)

    # SQLite's prediction path runs on the blocking driver's engine (`Database.run`)
    for engine in (db.engine.sync_engine, db._blocking):
        if engine is not None:
            event.listen(engine, "before_cursor_execute", record)
    return seen


def test_histories_read_together_are_each_their_own(database_url: str) -> None:
    async def scenario(db: Database) -> None:
        messages = MessageRepository(db)
        # sessions of 0..7 turns in two chatflows, one session id in both, an errored turn
        for chatflow_id in (CF1, CF2):
            for s in range(8):
                for n in range(s):
                    status = "error" if (s, n) == (5, 2) else "complete"
                    await messages.add_turn(turn(chatflow_id, f"s{s}", n, status))
        asks = [(cf, f"s{s}", turns) for cf in (CF1, CF2) for s in range(8) for turns in (1, 3)]
        alone = [await messages.history(cf, s, turns) for cf, s, turns in asks]
        seen = statements(db)
        together = await asyncio.gather(*(messages.history(*ask) for ask in asks))
        assert together == alone
        assert alone[asks.index((CF2, "s7", 3))] == pairs("s7", 4, 5, 6)
        assert alone[asks.index((CF1, "s5", 3))] == pairs("s5", 1, 3, 4)  # 2 failed
        assert alone[asks.index((CF1, "s0", 3))] == []
        # the rows themselves, to each asker's limit, as the statement for one reads them
        reads = HistoryReads(db)
        cuts = [(cf, f"s{s}", limit) for cf in (CF1, CF2) for s in (0, 3, 7) for limit in (1, 2, 5)]
        rows_alone = [await reads.rows(*cut) for cut in cuts]
        assert await asyncio.gather(*(reads.rows(*cut) for cut in cuts)) == rows_alone
        assert [len(r) for r in rows_alone[-3:]] == [1, 2, 5]
        assert rows_alone[-1][0] == ("apiMessage", "s7 a6", "complete")
        if db.is_sqlite:
            assert len(seen) == len(asks) + 2 * len(cuts)  # each alone: no socket to share
        else:
            assert len(seen) < len(asks) / 4 + len(cuts) + 4, len(seen)
            assert any("LATERAL" in s for s in seen)

    run(database_url, scenario)


def test_an_asker_that_leaves_and_a_failed_read(postgres_url: str) -> None:
    async def scenario(db: Database) -> None:
        messages = MessageRepository(db)
        for n in range(3):
            await messages.add_turn(turn(CF, "s", n))
        reads = HistoryReads(db)
        first = asyncio.create_task(reads.rows(CF, "s", 2))  # in flight
        await asyncio.sleep(0)
        leaving = asyncio.create_task(reads.rows(CF, "s", 4))
        staying = asyncio.create_task(reads.rows(CF, "s", 6))
        await asyncio.sleep(0)
        leaving.cancel()
        assert [role for role, *_ in await first] == ["apiMessage", "userMessage"]
        assert [content for _, content, _ in await staying] == [
            "s a2",
            "s q2",
            "s a1",
            "s q1",
            "s a0",
            "s q0",
        ]
        with pytest.raises(asyncio.CancelledError):
            await leaving

        # the database gone: every asker of the read hears it, and the next read works
        await db.engine.dispose()
        real_run = db.run

        async def failing(work: Any, **kw: Any) -> Any:
            raise OSError("connection refused")

        db.run = failing  # type: ignore[method-assign]
        asks = [asyncio.create_task(reads.rows(CF, "s", 2)) for _ in range(3)]
        for ask in asks:
            with pytest.raises(OSError):
                await ask
        db.run = real_run  # type: ignore[method-assign]
        assert len(await reads.rows(CF, "s", 2)) == 2

    run(postgres_url, scenario)


def test_a_read_cancelled_leaves_no_asker_waiting(postgres_url: str) -> None:
    async def scenario(db: Database) -> None:
        reads = HistoryReads(db)
        asks = [asyncio.create_task(reads.rows(CF, "nobody", 2)) for _ in range(2)]
        for _ in range(3):  # they ask, their read is started, it is under way
            await asyncio.sleep(0)
        assert reads._reads
        for read in reads._reads:
            read.cancel()
        for ask in asks:
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(ask, 5)
        assert await reads.rows(CF, "nobody", 2) == []  # the next read goes

    run(postgres_url, scenario)


def test_a_stuck_read_holds_up_only_its_own_askers(postgres_url: str) -> None:
    async def scenario(db: Database) -> None:
        reads = HistoryReads(db)
        real_run, stuck = db.run, asyncio.Event()

        async def first_stuck(work: Any, **kw: Any) -> Any:
            if not stuck.is_set():
                stuck.set()
                await asyncio.Event().wait()  # a dead connection: no reply, ever
            return await real_run(work, **kw)

        db.run = first_stuck  # type: ignore[method-assign]
        held = [asyncio.create_task(reads.rows(CF, f"held{n}", 2)) for n in range(2)]
        await stuck.wait()
        later = [reads.rows(CF, f"later{n}", n) for n in (1, 2**31)]  # LIMIT takes a bigint
        assert await asyncio.wait_for(asyncio.gather(*later), 5) == [[], []]
        assert not any(ask.done() for ask in held)
        for ask in held:
            ask.cancel()

    run(postgres_url, scenario)


def test_thousands_at_once_go_a_few_dozen_a_statement(postgres_url: str) -> None:
    async def scenario(db: Database) -> None:
        messages = MessageRepository(db)
        await messages.add_turn(turn(CF, "many", 0))
        seen = statements(db)
        reads = HistoryReads(db)
        found = await asyncio.gather(*(reads.rows(CF, "many", 2) for _ in range(1000)))
        assert all(len(rows) == 2 for rows in found)
        assert len(seen) == -(-1000 // BATCH_MAX)

    run(postgres_url, scenario)
