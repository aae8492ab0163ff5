"""Document stores and their chunks (text, metadata, content hash, embedding)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, func, insert, select, update

from tailwinds.store.db import Database
from tailwinds.store.storable import storable_json
from tailwinds.store.tables import DocumentChunkRow, DocumentStoreRow, utcnow


@dataclass(slots=True, frozen=True)
class DocumentStore:
    id: str
    name: str
    config: dict[str, Any]
    version: int
    created_date: datetime
    updated_date: datetime


@dataclass(slots=True, frozen=True)
class Chunk:
    id: str
    source: str
    position: int
    content: str
    metadata: dict[str, Any]
    content_hash: str
    embedding: bytes


def _store(row: DocumentStoreRow) -> DocumentStore:
    return DocumentStore(
        row.id, row.name, orjson.loads(row.config), row.version, row.created_date, row.updated_date
    )


def _chunk(row: Any) -> Chunk:
    return Chunk(
        row.id,
        row.source,
        row.position,
        row.content,
        orjson.loads(row.metadata_json),
        row.content_hash,
        row.embedding,
    )


class DocumentRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create_store(self, name: str, config: dict[str, Any]) -> DocumentStore:
        now = utcnow()
        row = DocumentStoreRow(
            id=str(uuid.uuid4()),
            name=name,
            config=orjson.dumps(config).decode(),
            version=1,
            created_date=now,
            updated_date=now,
        )
        async with self.db.session() as session, session.begin():
            session.add(row)
        return _store(row)

    async def get_store(self, store_id: str) -> DocumentStore | None:
        async with self.db.session() as session:
            row = await session.get(DocumentStoreRow, store_id)
            return _store(row) if row is not None else None

    async def exists(self, store_id: str) -> bool:
        return await self.get_store(store_id) is not None

    async def list_stores(self) -> list[DocumentStore]:
        async with self.db.session() as session:
            rows = await session.scalars(
                select(DocumentStoreRow).order_by(DocumentStoreRow.created_date)
            )
            return [_store(row) for row in rows]

    async def delete_store(self, store_id: str) -> bool:
        async with self.db.session() as session, session.begin():
            result = await session.execute(
                delete(DocumentStoreRow).where(DocumentStoreRow.id == store_id)
            )
            await session.execute(
                delete(DocumentChunkRow).where(DocumentChunkRow.store_id == store_id)
            )
            return bool(result.rowcount)

    async def chunks(self, store_id: str, sources: Iterable[str] | None = None) -> list[Chunk]:
        query = select(DocumentChunkRow).where(DocumentChunkRow.store_id == store_id)
        if sources is not None:
            query = query.where(DocumentChunkRow.source.in_(list(sources)))
        query = query.order_by(DocumentChunkRow.source, DocumentChunkRow.position)
        async with self.db.session() as session:
            return [_chunk(row) for row in await session.scalars(query)]

    async def embedding_bytes(self, store_id: str) -> int | None:
        """The size of the store's embeddings (all are alike), or None while it is empty."""
        query = (
            select(func.length(DocumentChunkRow.embedding))
            .where(DocumentChunkRow.store_id == store_id)
            .limit(1)
        )
        async with self.db.session() as session:
            return await session.scalar(query)

    async def counts(self, store_id: str) -> dict[str, int]:
        query = (
            select(DocumentChunkRow.source, func.count())
            .where(DocumentChunkRow.store_id == store_id)
            .group_by(DocumentChunkRow.source)
        )
        async with self.db.session() as session:
            return {source: n for source, n in await session.execute(query)}

    async def chunk(self, store_id: str, chunk_id: str) -> Chunk | None:
        query = select(DocumentChunkRow).where(
            DocumentChunkRow.store_id == store_id, DocumentChunkRow.id == chunk_id
        )
        async with self.db.session() as session:
            row = await session.scalar(query)
            return _chunk(row) if row is not None else None

    async def delete_chunk(self, store_id: str, chunk_id: str) -> bool:
        """Drop one chunk and bump the store's version, in one transaction."""
        async with self.db.engine.begin() as conn:
            dropped = await conn.execute(
                delete(DocumentChunkRow.__table__).where(
                    DocumentChunkRow.store_id == store_id, DocumentChunkRow.id == chunk_id
                )
            )
            if not dropped.rowcount:
                return False
            await conn.execute(
                update(DocumentStoreRow.__table__)
                .where(DocumentStoreRow.id == store_id)
                .values(version=DocumentStoreRow.version + 1, updated_date=utcnow())
            )
        return True

    async def replace_sources(self, store_id: str, sources: set[str], chunks: list[Chunk]) -> int:
        """In one transaction: drop every chunk of `sources`, add `chunks`, bump the
        store's version. Returns how many chunks were dropped."""
        async with self.db.engine.begin() as conn:
            dropped = await conn.execute(
                delete(DocumentChunkRow.__table__).where(
                    DocumentChunkRow.store_id == store_id, DocumentChunkRow.source.in_(sources)
                )
            )
            if chunks:
                await conn.execute(
                    insert(DocumentChunkRow.__table__),
                    [
                        {
                            "id": c.id,
                            "store_id": store_id,
                            "source": c.source,
                            "position": c.position,
                            "content": c.content,
                            "metadata_json": storable_json(c.metadata),
                            "content_hash": c.content_hash,
                            "embedding": c.embedding,
                        }
                        for c in chunks
                    ],
                )
            await conn.execute(
                update(DocumentStoreRow.__table__)
                .where(DocumentStoreRow.id == store_id)
                .values(version=DocumentStoreRow.version + 1, updated_date=utcnow())
            )
        return int(dropped.rowcount or 0)
