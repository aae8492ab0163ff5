"""Document stores and their chunks (text, metadata, content hash, embedding)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import orjson
from sqlalchemy import Table, delete, func, insert, select, update

from tailwinds import offload
from tailwinds.store.db import Database, rowcount
from tailwinds.store.storable import storable_json
from tailwinds.store.tables import DocumentChunkRow, DocumentStoreRow, utcnow

# Core statements on the tables themselves (no ORM unit of work for bulk writes); typed as
# the `Table` they are (declarative classes name `__table__` a `FromClause`)
_CHUNKS = cast(Table, DocumentChunkRow.__table__)
_STORES = cast(Table, DocumentStoreRow.__table__)

# rows per INSERT and names per `IN (...)`: PostgreSQL (asyncpg) takes at most 32,767
# parameters per statement and SQLite 32,766, and a statement's parameters are processed
# by SQLAlchemy on the event loop; between batches the loop serves every other stream
BATCH_ROWS = 1_000


def batches(items: list[Any], size: int = BATCH_ROWS) -> list[list[Any]]:
    """`items` in consecutive slices of at most `size`."""
    return [items[start : start + size] for start in range(0, len(items), size)]


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
            return bool(rowcount(result))

    async def chunks(self, store_id: str, sources: Iterable[str] | None = None) -> list[Chunk]:
        """The store's chunks (of `sources` only, when given), by source then position."""
        query = select(DocumentChunkRow).where(DocumentChunkRow.store_id == store_id)
        order = (DocumentChunkRow.source, DocumentChunkRow.position)
        async with self.db.session() as session:
            if sources is None:
                return [_chunk(row) for row in await session.scalars(query.order_by(*order))]
            found: list[Chunk] = []
            # sorted, so the batches' results in turn are in order too
            for names in batches(sorted(set(sources))):
                rows = await session.scalars(
                    query.where(DocumentChunkRow.source.in_(names)).order_by(*order)
                )
                found += [_chunk(row) for row in rows]
            return found

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
                delete(_CHUNKS).where(
                    DocumentChunkRow.store_id == store_id, DocumentChunkRow.id == chunk_id
                )
            )
            if not rowcount(dropped):
                return False
            await conn.execute(
                update(_STORES)
                .where(DocumentStoreRow.id == store_id)
                .values(version=DocumentStoreRow.version + 1, updated_date=utcnow())
            )
        return True

    async def replace_sources(self, store_id: str, sources: set[str], chunks: list[Chunk]) -> int:
        """In one transaction: drop every chunk of `sources`, add `chunks`, bump the
        store's version. Returns how many chunks were dropped. Written `BATCH_ROWS` at a
        time, the rows built on a thread when there are many."""
        if len(chunks) > BATCH_ROWS:
            rows = await offload.lanes().computing.run(_rows, store_id, chunks)
        else:
            rows = _rows(store_id, chunks)
        dropped = 0
        async with self.db.engine.begin() as conn:
            for names in batches(sorted(sources)):
                result = await conn.execute(
                    delete(_CHUNKS).where(
                        DocumentChunkRow.store_id == store_id, DocumentChunkRow.source.in_(names)
                    )
                )
                dropped += rowcount(result)
            for batch in batches(rows):
                await conn.execute(insert(_CHUNKS), batch)
            await conn.execute(
                update(_STORES)
                .where(DocumentStoreRow.id == store_id)
                .values(version=DocumentStoreRow.version + 1, updated_date=utcnow())
            )
        return dropped


def _rows(store_id: str, chunks: list[Chunk]) -> list[dict[str, Any]]:
    """The INSERT parameters of `chunks` (a JSON text per chunk's metadata)."""
    return [
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
    ]
