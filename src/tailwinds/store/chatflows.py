"""Chatflows: stored as JSON, with a version bumped on each change (the compile cache key)."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

import orjson
from sqlalchemy import delete, func, select

from tailwinds.store.db import Database, rowcount
from tailwinds.store.tables import ChatflowRow, ChatMessageRow, utcnow

# what a prediction does when its chat (chatflow + session) is answering another turn:
# refuse with 409 `chat_busy`, wait for that turn to end, or abort it and run
ConcurrentTurns = Literal["reject", "queue", "interrupt"]
CONCURRENT_TURNS: tuple[str, ...] = get_args(ConcurrentTurns)


@dataclass(slots=True, frozen=True)
class Chatflow:
    id: str
    name: str
    flow_data: dict[str, Any]
    api_key_id: str | None
    allowed_overrides: list[str]
    allowed_origins: list[str]
    rate_limit: dict[str, Any] | None
    resume_grace_s: float | None
    version: int
    # {"exposed": bool, "name": str | None, "description": str | None}, None: never set
    mcp_tool: dict[str, Any] | None
    created_date: datetime
    updated_date: datetime
    concurrent_turns: ConcurrentTurns = "reject"
    approval_timeout_s: float | None = None
    # the chat widget's settings: {"title", "welcomeMessage", "starterPrompts": [str],
    # "chatFeedback": bool, "followUpPrompts": bool}, None: never set
    chatbot_config: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "flowData": self.flow_data,
            "apiKeyId": self.api_key_id,
            "allowedOverrides": self.allowed_overrides,
            "allowedOrigins": self.allowed_origins,
            "rateLimit": self.rate_limit,
            "resumeGraceSeconds": self.resume_grace_s,
            "concurrentTurns": self.concurrent_turns,
            "mcpTool": self.mcp_tool,
            "approvalTimeoutSeconds": self.approval_timeout_s,
            "chatbotConfig": self.chatbot_config,
            "version": self.version,
            "createdDate": self.created_date.isoformat(),
            "updatedDate": self.updated_date.isoformat(),
        }


def _from_row(row: ChatflowRow) -> Chatflow:
    return Chatflow(
        id=row.id,
        name=row.name,
        flow_data=orjson.loads(row.flow_data),
        api_key_id=row.api_key_id,
        allowed_overrides=orjson.loads(row.allowed_overrides),
        allowed_origins=orjson.loads(row.allowed_origins or "[]"),
        rate_limit=orjson.loads(row.rate_limit) if row.rate_limit else None,
        resume_grace_s=row.resume_grace_s,
        concurrent_turns=row.concurrent_turns or "reject",  # type: ignore[arg-type]
        version=row.version,
        mcp_tool=orjson.loads(row.mcp_tool) if row.mcp_tool else None,
        approval_timeout_s=row.approval_timeout_s,
        chatbot_config=orjson.loads(row.chatbot_config) if row.chatbot_config else None,
        created_date=row.created_date,
        updated_date=row.updated_date,
    )


class ChatflowRepository:
    def __init__(self, db: Database) -> None:
        self.db = db
        # chatflow id -> (read at, chatflow), for `get(max_age_s=…)` on the prediction path
        self._recent: dict[str, tuple[float, Chatflow]] = {}
        self._reading: dict[str, asyncio.Future[Chatflow | None]] = {}

    async def create(
        self,
        name: str,
        flow_data: dict[str, Any],
        api_key_id: str | None = None,
        allowed_overrides: list[str] | None = None,
        allowed_origins: list[str] | None = None,
        rate_limit: dict[str, Any] | None = None,
        resume_grace_s: float | None = None,
        concurrent_turns: ConcurrentTurns | None = None,
        mcp_tool: dict[str, Any] | None = None,
        approval_timeout_s: float | None = None,
        chatbot_config: dict[str, Any] | None = None,
    ) -> Chatflow:
        now = utcnow()
        row = ChatflowRow(
            id=str(uuid.uuid4()),
            name=name,
            flow_data=orjson.dumps(flow_data).decode(),
            api_key_id=api_key_id,
            allowed_overrides=orjson.dumps(allowed_overrides or []).decode(),
            allowed_origins=orjson.dumps(allowed_origins or []).decode(),
            rate_limit=orjson.dumps(rate_limit).decode() if rate_limit else None,
            resume_grace_s=resume_grace_s,
            concurrent_turns=concurrent_turns or "reject",
            mcp_tool=orjson.dumps(mcp_tool).decode() if mcp_tool else None,
            approval_timeout_s=approval_timeout_s,
            chatbot_config=orjson.dumps(chatbot_config).decode() if chatbot_config else None,
            version=1,
            created_date=now,
            updated_date=now,
        )
        async with self.db.session() as session, session.begin():
            session.add(row)
        return _from_row(row)

    async def get(self, chatflow_id: str, max_age_s: float = 0.0) -> Chatflow | None:
        """The chatflow; with `max_age_s`, a copy read that recently will do, and requests
        arriving together share one read. Changes made through this repository are seen at
        once; another process's within `max_age_s`."""
        if max_age_s <= 0:
            return await self._read(chatflow_id)
        recent = self._recent.get(chatflow_id)
        if recent is not None and time.monotonic() - recent[0] < max_age_s:
            return recent[1]
        reading = self._reading.get(chatflow_id)
        if reading is None:
            reading = self._reading[chatflow_id] = asyncio.ensure_future(self._read(chatflow_id))
            reading.add_done_callback(lambda _: self._reading.pop(chatflow_id, None))
        return await asyncio.shield(reading)

    async def _read(self, chatflow_id: str) -> Chatflow | None:
        async with self.db.session() as session:
            row = await session.get(ChatflowRow, chatflow_id)
            chatflow = _from_row(row) if row is not None else None
        if chatflow is not None:
            if len(self._recent) > 10_000:
                self._recent.clear()
            self._recent[chatflow_id] = (time.monotonic(), chatflow)
        return chatflow

    async def list(self) -> list[Chatflow]:
        async with self.db.session() as session:
            rows = await session.scalars(select(ChatflowRow).order_by(ChatflowRow.created_date))
            return [_from_row(row) for row in rows]

    async def count(self) -> int:
        async with self.db.session() as session:
            return await session.scalar(select(func.count()).select_from(ChatflowRow)) or 0

    async def update(self, chatflow_id: str, changes: dict[str, Any]) -> Chatflow | None:
        """`changes` holds only what the caller sent: name, flow_data, api_key_id,
        allowed_overrides, allowed_origins, rate_limit, resume_grace_s, concurrent_turns,
        mcp_tool, approval_timeout_s, chatbot_config."""
        self._recent.pop(chatflow_id, None)
        async with self.db.session() as session, session.begin():
            row = await session.get(ChatflowRow, chatflow_id, with_for_update=True)
            if row is None:
                return None
            if "name" in changes:
                row.name = changes["name"]
            if "flow_data" in changes:
                row.flow_data = orjson.dumps(changes["flow_data"]).decode()
            if "api_key_id" in changes:
                row.api_key_id = changes["api_key_id"]
            if "allowed_overrides" in changes:
                row.allowed_overrides = orjson.dumps(changes["allowed_overrides"]).decode()
            if "allowed_origins" in changes:
                row.allowed_origins = orjson.dumps(changes["allowed_origins"]).decode()
            if "rate_limit" in changes:
                limit = changes["rate_limit"]
                row.rate_limit = orjson.dumps(limit).decode() if limit else None
            if "resume_grace_s" in changes:
                row.resume_grace_s = changes["resume_grace_s"]
            if "concurrent_turns" in changes:
                row.concurrent_turns = changes["concurrent_turns"] or "reject"
            if "approval_timeout_s" in changes:
                row.approval_timeout_s = changes["approval_timeout_s"]
            if "mcp_tool" in changes:
                tool = changes["mcp_tool"]
                row.mcp_tool = orjson.dumps(tool).decode() if tool else None
            if "chatbot_config" in changes:
                config = changes["chatbot_config"]
                row.chatbot_config = orjson.dumps(config).decode() if config else None
            row.version += 1
            row.updated_date = utcnow()
        return _from_row(row)

    async def delete(self, chatflow_id: str) -> bool:
        self._recent.pop(chatflow_id, None)
        async with self.db.session() as session, session.begin():
            result = await session.execute(delete(ChatflowRow).where(ChatflowRow.id == chatflow_id))
            if not rowcount(result):
                return False
            await session.execute(
                delete(ChatMessageRow).where(ChatMessageRow.chatflow_id == chatflow_id)
            )
        return True
