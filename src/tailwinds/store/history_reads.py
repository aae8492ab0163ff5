"""Chat histories read together: on PostgreSQL, the histories asked in one turn of the
event loop (the jobs a worker took at once) are one statement.

A read alone was a fifth of a queue worker's CPU in a prediction with a chat id (py-spy,
bench: the fixed cost of a prediction, issue 25), half of it asyncpg's send of one query.
Each session's rows are still found through its index and cut at its limit (a `LATERAL`
subquery per session, https://www.postgresql.org/docs/current/queries-table-expressions.html#QUERIES-LATERAL),
so a long chat costs what it did alone. SQLite reads each alone: no socket, no gain.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import Connection, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import BigInteger, Integer, String

from tailwinds.store.db import Database
from tailwinds.store.tables import ChatMessageRow

BATCH_MAX = 64  # sessions a statement

Rows = list[tuple[str, str, str]]  # (role, content, status), newest first

# one session's rows, newest first, questions before answers of the same turn
_ONE = (
    select(ChatMessageRow.role, ChatMessageRow.content, ChatMessageRow.status)
    .where(
        ChatMessageRow.chatflow_id == bindparam("chatflow_id"),
        ChatMessageRow.session_id == bindparam("session_id"),
    )
    .order_by(ChatMessageRow.created_date.desc(), ChatMessageRow.role.asc())
    .limit(bindparam("limit"))
)

# many sessions' rows: `k.i` is the asker's place in the batch
_MANY = text(
    """
SELECT k.i, m.role, m.content, m.status
FROM unnest(:places, :chatflow_ids, :session_ids, :limits) AS k(i, chatflow_id, session_id, n)
CROSS JOIN LATERAL (
  SELECT role, content, status, created_date FROM chat_messages
  WHERE chatflow_id = k.chatflow_id AND session_id = k.session_id
  ORDER BY created_date DESC, role ASC
  LIMIT k.n
) AS m
ORDER BY k.i, m.created_date DESC, m.role ASC
"""
).bindparams(
    bindparam("places", type_=ARRAY(Integer)),
    bindparam("chatflow_ids", type_=ARRAY(String)),
    bindparam("session_ids", type_=ARRAY(String)),
    bindparam("limits", type_=ARRAY(BigInteger)),  # LIMIT takes a bigint, as `_ONE` does
)


class HistoryReads:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._pending: list[tuple[str, str, int, asyncio.Future[Rows]]] = []
        self._reads: set[asyncio.Task[None]] = set()

    async def rows(self, chatflow_id: str, session_key: str, limit: int) -> Rows:
        """The last `limit` rows of a session (`session_key`: its stored key), newest
        first. Raises what `Database.run` raises (every asker of a failed read gets it)."""
        if self.db.is_sqlite:
            return await self._one(chatflow_id, session_key, limit)
        loop = asyncio.get_running_loop()
        asked: asyncio.Future[Rows] = loop.create_future()
        if not self._pending:
            # the askers of this turn of the event loop (the jobs a worker took at once
            # reach here together) go in one read; reads are not queued behind each other,
            # so a read stuck on a dead connection holds up only its own askers
            loop.call_soon(self._start_read)
        self._pending.append((chatflow_id, session_key, limit, asked))
        return await asked

    def _start_read(self) -> None:
        batch = [item for item in self._pending if not item[3].done()]  # askers gone
        self._pending = []
        # a few dozen a statement: the rows of thousands at once, gathered on the event
        # loop as any read's are, would hold it up for a tenth of a second and more
        for start in range(0, len(batch), BATCH_MAX):
            task = asyncio.get_running_loop().create_task(
                self._read(batch[start : start + BATCH_MAX])
            )
            self._reads.add(task)
            task.add_done_callback(self._reads.discard)

    async def _one(self, chatflow_id: str, session_key: str, limit: int) -> Rows:
        params = {"chatflow_id": chatflow_id, "session_id": session_key, "limit": limit}

        def read(conn: Connection) -> Rows:
            return [tuple(row) for row in conn.execute(_ONE, params)]  # type: ignore[misc]

        return await self.db.run(read)

    async def _read(self, batch: list[tuple[str, str, int, asyncio.Future[Rows]]]) -> None:
        try:
            if len(batch) == 1:
                chatflow_id, session_key, limit, _ = batch[0]
                found = [await self._one(chatflow_id, session_key, limit)]
            else:
                found = await self._many(batch)
        except asyncio.CancelledError:
            for *_, asked in batch:  # (the loop closing): none of its askers left waiting
                asked.cancel()
            raise
        except Exception as exc:
            for *_, asked in batch:
                if not asked.done():
                    asked.set_exception(exc)
            return
        for (*_, asked), rows in zip(batch, found, strict=True):
            if not asked.done():
                asked.set_result(rows)

    async def _many(self, batch: list[tuple[str, str, int, Any]]) -> list[Rows]:
        params = {
            "places": list(range(len(batch))),
            "chatflow_ids": [chatflow_id for chatflow_id, *_ in batch],
            "session_ids": [session_key for _, session_key, *_ in batch],
            "limits": [limit for _, _, limit, _ in batch],
        }

        def read(conn: Connection) -> list[Rows]:
            found: list[Rows] = [[] for _ in batch]
            for place, role, content, status in conn.execute(_MANY, params):
                found[place].append((role, content, status))
            return found

        return await self.db.run(read)
