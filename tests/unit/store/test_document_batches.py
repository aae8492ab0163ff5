"""The chunks of a large upsert are written and looked up in batches: no statement carries
more than `BATCH_ROWS` rows or names (PostgreSQL refuses past 32,767 parameters, SQLite
past 32,766), and the whole is still one transaction, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import numpy as np
from sqlalchemy import event

from tailwinds import offload
from tailwinds.store.db import Database
from tailwinds.store.documents import BATCH_ROWS, Chunk, DocumentRepository

SOURCES = 2 * BATCH_ROWS + 500  # more than two batches


def chunks_of(sources: list[str], word: str) -> list[Chunk]:
    vector = np.ones(4, dtype="<f4").tobytes()
    return [
        Chunk(str(uuid.uuid4()), s, 0, f"{word} {s}", {"source": s}, f"{word}-{s}", vector)
        for s in sources
    ]


def test_a_large_upsert_is_written_in_batches_and_whole(database_url: str) -> None:
    statements: list[tuple[str, int]] = []  # (SQL verb, rows or parameters)

    def seen(_conn: Any, _cursor: Any, sql: str, params: Any, _ctx: Any, many: bool) -> None:
        statements.append((sql.split()[0].upper(), len(params) if params is not None else 0))

    async def main() -> None:
        db = Database(database_url)
        try:
            await db.migrate()
            event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
            repo = DocumentRepository(db)
            store = await repo.create_store(f"big-{uuid.uuid4().hex[:6]}", {})
            sources = [f"doc-{n:05d}" for n in range(SOURCES)]
            assert await repo.replace_sources(store.id, set(sources), chunks_of(sources, "a")) == 0
            found = await repo.chunks(store.id, sources)
            assert [c.source for c in found] == sources  # all of them, in order
            # sent again: every old chunk found and dropped, the new ones all in
            new = chunks_of(sources, "b")
            assert await repo.replace_sources(store.id, set(sources), new) == SOURCES
            again = await repo.chunks(store.id, reversed(sources))
            assert [c.content for c in again] == [c.content for c in new]
            assert sum((await repo.counts(store.id)).values()) == SOURCES
        finally:
            offload.close()
            await db.close()

    asyncio.run(main())
    inserts = [n for verb, n in statements if verb == "INSERT"]
    assert sum(inserts) >= 2 * SOURCES and len(inserts) >= 6
    # a few parameters besides the names of an IN list (the store's id)
    assert max(n for _, n in statements) <= BATCH_ROWS + 5, max(statements, key=lambda s: s[1])
