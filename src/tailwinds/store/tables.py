"""The database tables. Changing one means adding a migration in `migrations/versions`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Float, Index, Integer, LargeBinary, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from tailwinds.store.storable import storable_text


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every database: SQLite would hand them back naive."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class StorableText(TypeDecorator[str]):
    """Text every database takes: U+0000 and lone surrogates replaced on the way in
    (`store/storable.py`), in values written and in values compared alike."""

    impl: type[String] = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> Any:
        return storable_text(value) if isinstance(value, str) else value


class StorableString(StorableText):
    """`StorableText` of a bounded column: `StorableString(255)`."""

    impl = String
    cache_ok = True


class Base(DeclarativeBase):
    pass


class ChatflowRow(Base):
    __tablename__ = "chatflows"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(StorableString(200))
    flow_data: Mapped[str] = mapped_column(Text)  # JSON
    api_key_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    allowed_overrides: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    allowed_origins: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    rate_limit: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON object
    # streams of this chatflow are resumable for this long unless the request says otherwise
    resume_grace_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    # what a prediction does while another turn of its chat runs: reject | queue | interrupt
    concurrent_turns: Mapped[str] = mapped_column(String(16), default="reject")
    # offered to MCP clients as a tool: {"exposed", "name", "description"} as JSON
    mcp_tool: Mapped[str | None] = mapped_column(Text, nullable=True)
    # how long a tool call waits for a person's approval (None: 600 s; engine/approvals.py)
    approval_timeout_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    # the chat widget's settings (Flowise's `public-chatbotConfig`) as JSON
    chatbot_config: Mapped[str | None] = mapped_column(Text, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_date: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_date: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ChatMessageRow(Base):
    __tablename__ = "chat_messages"
    __table_args__ = (
        Index("ix_chat_messages_session", "chatflow_id", "session_id", "created_date"),
        Index("ix_chat_messages_chat", "chatflow_id", "chat_id", "created_date"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    chatflow_id: Mapped[str] = mapped_column(String(36))
    chat_id: Mapped[str] = mapped_column(StorableString(255))
    session_id: Mapped[str] = mapped_column(StorableString(255))
    role: Mapped[str] = mapped_column(String(16))  # userMessage | apiMessage
    content: Mapped[str] = mapped_column(StorableText)
    status: Mapped[str] = mapped_column(String(16))  # complete | aborted | error
    error: Mapped[str | None] = mapped_column(StorableText, nullable=True)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    completion_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    total_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # the answer's tool calls: [{tool, toolInput, toolOutput, durationMs}] as JSON
    used_tools: Mapped[str | None] = mapped_column(StorableText, nullable=True)
    # the answer's follow-up prompts (engine/follow_ups.py): a JSON list of strings
    follow_up_prompts: Mapped[str | None] = mapped_column(StorableText, nullable=True)
    created_date: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(StorableString(200))
    key_hash: Mapped[str] = mapped_column(String(255))
    created_date: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    rate_limit: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON object


class CredentialRow(Base):
    __tablename__ = "credentials"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(StorableString(200))
    provider: Mapped[str] = mapped_column(StorableString(100))
    data: Mapped[str] = mapped_column(Text)  # Fernet token of the JSON data
    created_date: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DocumentStoreRow(Base):
    __tablename__ = "document_stores"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(StorableString(200))
    config: Mapped[str] = mapped_column(Text)  # JSON: embedding, splitter
    version: Mapped[int] = mapped_column(Integer, default=1)  # bumped by every upsert
    created_date: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_date: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DocumentChunkRow(Base):
    __tablename__ = "document_chunks"
    __table_args__ = (Index("ix_document_chunks_source", "store_id", "source"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    store_id: Mapped[str] = mapped_column(String(36))
    source: Mapped[str] = mapped_column(StorableString(1000))
    position: Mapped[int] = mapped_column(Integer)
    content: Mapped[str] = mapped_column(StorableText)
    metadata_json: Mapped[str] = mapped_column(StorableText)
    content_hash: Mapped[str] = mapped_column(String(64))
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # float32, little-endian


class FeedbackRow(Base):
    """A person's rating of one answer (Flowise's chat message feedback): one per answer."""

    __tablename__ = "message_feedback"
    __table_args__ = (Index("ix_message_feedback_chatflow", "chatflow_id", "chat_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    chatflow_id: Mapped[str] = mapped_column(String(36))
    chat_id: Mapped[str] = mapped_column(StorableString(255))
    message_id: Mapped[str] = mapped_column(String(36), unique=True)
    rating: Mapped[str] = mapped_column(String(16))  # THUMBS_UP | THUMBS_DOWN
    content: Mapped[str | None] = mapped_column(StorableText, nullable=True)
    created_date: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_date: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
