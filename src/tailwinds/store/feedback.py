"""Feedback on answers, as Flowise's chat widget sends it: a rating (`THUMBS_UP` or
`THUMBS_DOWN`) and an optional comment, one per answer (a second rating of the same answer
replaces the first, as Flowise's does); and the follow-up prompts stored with an answer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
from sqlalchemy import select, update

from tailwinds.store.db import Database
from tailwinds.store.storable import storable_key
from tailwinds.store.tables import ChatMessageRow, FeedbackRow, utcnow

Rating = Literal["THUMBS_UP", "THUMBS_DOWN"]


@dataclass(slots=True, frozen=True)
class Feedback:
    id: str
    chatflow_id: str
    chat_id: str
    message_id: str
    rating: str
    content: str | None
    created_date: datetime

    def as_json(self) -> dict[str, Any]:
        """Flowise's spelling (`chatflowid`, `messageId`), which its widget reads back."""
        return {
            "id": self.id,
            "chatflowid": self.chatflow_id,
            "chatId": self.chat_id,
            "messageId": self.message_id,
            "rating": self.rating,
            "content": self.content,
            "createdDate": self.created_date.isoformat(),
        }


def _from_row(row: FeedbackRow) -> Feedback:
    return Feedback(
        row.id, row.chatflow_id, row.chat_id, row.message_id, row.rating, row.content,
        row.created_date,
    )  # fmt: skip


class FeedbackRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def answer_exists(self, chatflow_id: str, chat_id: str, message_id: str) -> bool:
        """Whether `message_id` is a stored answer of that chat of that chatflow."""
        query = select(ChatMessageRow.id).where(
            ChatMessageRow.id == message_id,
            ChatMessageRow.chatflow_id == chatflow_id,
            ChatMessageRow.chat_id == storable_key(chat_id),
            ChatMessageRow.role == "apiMessage",
        )
        async with self.db.session() as session:
            return await session.scalar(query) is not None

    async def rate(
        self, chatflow_id: str, chat_id: str, message_id: str, rating: Rating, content: str | None
    ) -> Feedback:
        """The answer's feedback, created or replaced."""
        async with self.db.session() as session, session.begin():
            row = await session.scalar(
                select(FeedbackRow).where(FeedbackRow.message_id == message_id)
            )
            now = utcnow()
            if row is None:
                row = FeedbackRow(
                    id=str(uuid.uuid4()),
                    chatflow_id=chatflow_id,
                    chat_id=storable_key(chat_id),
                    message_id=message_id,
                    created_date=now,
                )
                session.add(row)
            row.rating = rating
            row.content = content
            row.updated_date = now
        return _from_row(row)

    async def get(self, feedback_id: str) -> Feedback | None:
        async with self.db.session() as session:
            row = await session.get(FeedbackRow, feedback_id)
            return _from_row(row) if row is not None else None

    async def update(
        self, feedback_id: str, rating: Rating | None, content: str | None
    ) -> Feedback | None:
        async with self.db.session() as session, session.begin():
            row = await session.get(FeedbackRow, feedback_id, with_for_update=True)
            if row is None:
                return None
            if rating is not None:
                row.rating = rating
            if content is not None:
                row.content = content
            row.updated_date = utcnow()
        return _from_row(row)

    async def store_follow_ups(self, message_id: str, prompts: list[str]) -> None:
        """The answer's follow-up prompts (engine/follow_ups.py), beside its row."""
        async with self.db.session() as session, session.begin():
            await session.execute(
                update(ChatMessageRow)
                .where(ChatMessageRow.id == message_id)
                .values(follow_up_prompts=orjson.dumps(prompts).decode())
            )

    async def list(self, chatflow_id: str, chat_id: str | None = None) -> list[Feedback]:
        query = select(FeedbackRow).where(FeedbackRow.chatflow_id == chatflow_id)
        if chat_id is not None:
            query = query.where(FeedbackRow.chat_id == storable_key(chat_id))
        async with self.db.session() as session:
            rows = await session.scalars(query.order_by(FeedbackRow.created_date))
            return [_from_row(row) for row in rows]
