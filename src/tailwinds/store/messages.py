"""Chat messages: a row for each question and each answer, written once per answer."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import insert, select

from tailwinds.engine.messages import ChatMessage, Usage
from tailwinds.store.db import Database
from tailwinds.store.tables import ChatMessageRow

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
        self._pending: list[tuple[StoredTurn, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def add_turn(self, turn: StoredTurn) -> None:
        """Store a question and its answer. Turns that finish while a write is under way
        go together in the next transaction (a group commit): one write per answer at
        most, far fewer under load."""
        done = asyncio.get_running_loop().create_future()
        self._pending.append((turn, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await done

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                # Core, not the ORM's unit of work: a third of the CPU for the same rows
                async with self.db.engine.begin() as conn:
                    await conn.execute(
                        insert(ChatMessageRow.__table__),
                        [row for turn, _ in batch for row in _rows(turn)],
                    )
            except Exception as exc:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)

    async def history(self, chatflow_id: str, session_id: str, turns: int) -> list[ChatMessage]:
        """The last `turns` questions and answers of a session, oldest first. Failed answers
        are left out, and so is the question they failed on."""
        if turns <= 0:
            return []
        query = (
            select(ChatMessageRow.role, ChatMessageRow.content, ChatMessageRow.status)
            .where(
                ChatMessageRow.chatflow_id == chatflow_id,
                ChatMessageRow.session_id == session_id,
            )
            .order_by(ChatMessageRow.created_date.desc(), ChatMessageRow.role.asc())
            .limit(turns * 2)
        )
        async with self.db.session() as session:
            rows = list(await session.execute(query))
        rows.reverse()
        history: list[ChatMessage] = []
        for role, content, status in rows:
            if status == "error":
                if history and history[-1].role == "user":
                    history.pop()
                continue
            history.append(ChatMessage(ROLE_TO_CHAT[role], content))  # type: ignore[arg-type]
        return history

    async def list_chat(self, chatflow_id: str, chat_id: str) -> list[dict[str, Any]]:
        query = (
            select(ChatMessageRow)
            .where(ChatMessageRow.chatflow_id == chatflow_id, ChatMessageRow.chat_id == chat_id)
            .order_by(ChatMessageRow.created_date, ChatMessageRow.role.desc())
        )
        async with self.db.session() as session:
            rows = await session.scalars(query)
            return [_message_json(row) for row in rows]


def _rows(turn: StoredTurn) -> list[dict[str, Any]]:
    usage = turn.usage or Usage()
    common = {
        "chatflow_id": turn.chatflow_id,
        "chat_id": turn.chat_id,
        "session_id": turn.session_id,
        "error": None,
        "prompt_tokens": None,
        "completion_tokens": None,
        "total_tokens": None,
        "used_tools": None,
    }
    return [
        {
            **common,
            "id": str(uuid.uuid4()),
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
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "used_tools": orjson.dumps(turn.used_tools).decode() if turn.used_tools else None,
            # the turn's time, not the answer's end: a chat's history is ordered by turn
            # (question first on a tie, see `history`), never by which answer ended first
            "created_date": turn.asked_at,
        },
    ]


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
        "createdDate": row.created_date.isoformat(),
    }
