"""Chat messages: a row for each question and each answer, written once per answer."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import orjson
from sqlalchemy import Insert, Table, insert, select
from sqlalchemy import exc as sqlalchemy_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from tailwinds import metrics
from tailwinds.errors import StorageFailed
from tailwinds.messages import ChatMessage, Usage
from tailwinds.store.db import Database
from tailwinds.store.history_reads import HistoryReads
from tailwinds.store.storable import storable_json, storable_key
from tailwinds.store.tables import ChatMessageRow

logger = logging.getLogger("tailwinds.store")

ROLE_TO_CHAT = {"userMessage": "user", "apiMessage": "assistant"}


@dataclass(slots=True, frozen=True)
class StoredTurn:
    """What a finished run leaves behind."""

    chatflow_id: str
    chat_id: str
    session_id: str
    question: str
    message_id: str
    answer: str
    status: str
    error: str | None
    usage: Usage | None
    asked_at: datetime
    used_tools: list[dict[str, Any]] | None = None


class MessageRepository:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._histories = HistoryReads(db)
        self._pending: list[tuple[StoredTurn, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def add_turn(self, turn: StoredTurn) -> None:
        """Store a question and its answer. Turns that finish while a write is under way
        go together in the next transaction (a group commit): one write per answer at
        most, far fewer under load. A turn is keyed by its `message_id`: storing it again
        (a queue job run a second time) finishes the row the first try left, except that
        an answer stored `complete` is never replaced by one that is not.

        Raises `StorageFailed` when the turn cannot be stored even alone; a turn that
        shared a failed batch with it is stored all the same."""
        done = asyncio.get_running_loop().create_future()
        self._pending.append((turn, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await done

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self._write([row for turn, _ in batch for row in _rows(turn)])
            except Exception as exc:
                # one refused row must not lose the others: each turn on its own, unless
                # the database cannot be reached at all (a timeout per turn helps nobody)
                for turn, done in batch:
                    if _unreachable(exc):
                        self._not_stored(turn, done, exc)
                    else:
                        await self._write_alone(turn, done)
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)

    async def _write_alone(self, turn: StoredTurn, done: asyncio.Future[None]) -> None:
        try:
            await self._write(_rows(turn))
        except Exception as exc:
            self._not_stored(turn, done, exc)
        else:
            if not done.done():
                done.set_result(None)

    @staticmethod
    def _not_stored(turn: StoredTurn, done: asyncio.Future[None], exc: Exception) -> None:
        # the database's message, not the row: the text may be anything a user wrote
        logger.error(
            "storing turn %s of chatflow %s failed: %s: %s",
            turn.message_id,
            turn.chatflow_id,
            type(exc).__name__,
            str(getattr(exc, "orig", None) or exc).split("\n", 1)[0][:300],
        )
        metrics.TURNS_NOT_STORED.inc()
        if not done.done():
            done.set_exception(StorageFailed())

    async def _write(self, rows: list[dict[str, Any]]) -> None:
        # Core, not the ORM's unit of work: a third of the CPU for the same rows
        await self.db.write_rows(_upsert(self.db.url.get_backend_name()), rows)

    async def history(self, chatflow_id: str, session_id: str, turns: int) -> list[ChatMessage]:
        """The last `turns` questions and answers of a session, oldest first, as pairs of
        a user and an assistant message. A turn whose answer failed or is empty (the model
        said nothing, or Stop came before its first token) is left out, question and
        answer together; an answer stopped part-way is kept as far as it went."""
        if turns <= 0:
            return []
        # room for turns that are left out, so they do not shrink the window
        rows = await self._histories.rows(chatflow_id, storable_key(session_id), turns * 4)
        rows.reverse()
        history: list[ChatMessage] = []
        question: str | None = None
        for role, content, status in rows:
            if role == "userMessage":
                question = content  # an earlier question with no answer is left out
            elif question is not None:
                if status != "error" and content.strip() and question.strip():
                    history += (ChatMessage("user", question), ChatMessage("assistant", content))
                question = None
        return history[-2 * turns :]

    async def list_chat(self, chatflow_id: str, chat_id: str) -> list[dict[str, Any]]:
        query = (
            select(ChatMessageRow)
            .where(
                ChatMessageRow.chatflow_id == chatflow_id,
                ChatMessageRow.chat_id == storable_key(chat_id),
            )
            .order_by(ChatMessageRow.created_date, ChatMessageRow.role.desc())
        )
        async with self.db.session() as session:
            rows = await session.scalars(query)
            return [_message_json(row) for row in rows]


# a question's row id comes from its answer's (the message id): a turn stored twice is
# the same two rows
_QUESTION_IDS = uuid.uuid5(uuid.NAMESPACE_URL, "https://tailwinds.dev/ns/question")


def question_id(message_id: str) -> str:
    """The row id of the question that `message_id` answers."""
    return str(uuid.uuid5(_QUESTION_IDS, message_id))


def _rows(turn: StoredTurn) -> list[dict[str, Any]]:
    """The question's row and the answer's. Their text columns make what they are given
    storable (`tables.StorableText`); ids are kept to their column here, as they are
    where they are looked up."""
    usage = turn.usage or Usage()
    common = {
        "chatflow_id": turn.chatflow_id,
        "chat_id": storable_key(turn.chat_id),
        "session_id": storable_key(turn.session_id),
        "error": None,
        "prompt_tokens": None,
        "completion_tokens": None,
        "total_tokens": None,
        "used_tools": None,
    }
    return [
        {
            **common,
            "id": question_id(turn.message_id),
            "role": "userMessage",
            "content": turn.question,
            "status": "complete",
            "created_date": turn.asked_at,
        },
        {
            **common,
            "id": turn.message_id,
            "role": "apiMessage",
            "content": turn.answer,
            "status": turn.status,
            "error": turn.error,
            "prompt_tokens": _token_count(usage.prompt_tokens),
            "completion_tokens": _token_count(usage.completion_tokens),
            "total_tokens": _token_count(usage.total_tokens),
            "used_tools": storable_json(turn.used_tools) if turn.used_tools else None,
            # the turn's time, not the answer's end: a chat's history is ordered by turn
            # (question first on a tie, see `history`), never by which answer ended first
            "created_date": turn.asked_at,
        },
    ]


# the largest count an `integer` column holds (PostgreSQL's is 32 bits)
_MAX_TOKEN_COUNT = 2**31 - 1


def _token_count(value: object) -> int | None:
    """A usage count fit for its column, else None: usage is optional, and a count that
    is not an int in 0..2**31-1 (a provider's "12", 1.5, 10**20) must not make the turn
    unstorable (the providers check it too; this is the last line)."""
    return value if type(value) is int and 0 <= value <= _MAX_TOKEN_COUNT else None


# what a second write of the same row changes: not its place in the chat (created_date)
_UPDATED = (
    "content",
    "status",
    "error",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "used_tools",
)
_UPSERTS: dict[str, Insert] = {}


def _upsert(dialect: str) -> Insert:
    """INSERT … ON CONFLICT (id) DO UPDATE, which SQLite (3.24+) and PostgreSQL both have;
    a `complete` answer is kept when the second write is not (a late write of a first try
    that was given up on)."""
    statement = _UPSERTS.get(dialect)
    if statement is not None:
        return statement
    table = cast(Table, ChatMessageRow.__table__)
    if dialect in ("postgresql", "sqlite"):
        make = postgresql.insert if dialect == "postgresql" else sqlite.insert
        new = make(table)
        statement = new.on_conflict_do_update(
            index_elements=[table.c.id],
            set_={name: new.excluded[name] for name in _UPDATED},
            where=(table.c.status != "complete") | (new.excluded.status == "complete"),
        )
    else:
        statement = insert(table)
    _UPSERTS[dialect] = statement
    return statement


def _unreachable(exc: Exception) -> bool:
    """The database itself is gone (not one row refused)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    # SQLAlchemy's pool timeout is its own TimeoutError, not the builtin one
    return isinstance(exc, OSError | TimeoutError | sqlalchemy_exc.TimeoutError)


def _message_json(row: ChatMessageRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "role": row.role,
        "content": row.content,
        "chatflowId": row.chatflow_id,
        "chatId": row.chat_id,
        "sessionId": row.session_id,
        "status": row.status,
        "error": row.error,
        "usage": {
            "promptTokens": row.prompt_tokens,
            "completionTokens": row.completion_tokens,
            "totalTokens": row.total_tokens,
        },
        "usedTools": orjson.loads(row.used_tools) if row.used_tools else [],
        "followUpPrompts": orjson.loads(row.follow_up_prompts) if row.follow_up_prompts else [],
        "createdDate": row.created_date.isoformat(),
    }
