"""Document stores: upsert (split, embed what changed, replace atomically) and search
(vector, keyword or hybrid), with the store's index kept in memory per version."""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import Awaitable
from typing import Any

import numpy as np
from pydantic import ValidationError

from tailwinds import offload
from tailwinds.engine.validation import describe_validation_error
from tailwinds.errors import FlowError, InvalidRequest, NotFound
from tailwinds.providers.base import ProviderLimits
from tailwinds.providers.chroma import ChromaCollection
from tailwinds.providers.local_embeddings import LocalEmbeddings
from tailwinds.providers.ollama_embeddings import OllamaEmbeddings
from tailwinds.providers.openai_embeddings import OpenAIEmbeddings
from tailwinds.retrieval.chunking import plan_chunks, with_embeddings
from tailwinds.retrieval.cloud_embeddings import CLOUD_EMBEDDINGS, cloud_embeddings
from tailwinds.retrieval.connections import Connections
from tailwinds.retrieval.index import (
    INLINE_CHUNKS,
    StoreIndex,
    allowed_positions,
    build_index,
    ranked,
)
from tailwinds.retrieval.index_cache import IndexCache
from tailwinds.retrieval.ingest_jobs import IngestJobs, Progress
from tailwinds.retrieval.ranking import Hit, fuse
from tailwinds.retrieval.store_config import EmbeddingConfig, StoreConfig
from tailwinds.retrieval.upsert_caps import check_chunks, check_documents
from tailwinds.store.credentials import CredentialRepository
from tailwinds.store.documents import Chunk, DocumentRepository, DocumentStore

logger = logging.getLogger("tailwinds.documents")

SEARCH_MODES = ("vector", "keyword", "hybrid")


def _float_lists(chunks: list[Chunk]) -> list[list[float]]:
    return [np.frombuffer(c.embedding, dtype="<f4").tolist() for c in chunks]


def public_store(store: DocumentStore, counts: dict[str, int] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": store.id,
        "name": store.name,
        **store.config,
        "createdDate": store.created_date.isoformat(),
        "updatedDate": store.updated_date.isoformat(),
    }
    if counts is not None:
        data["sources"] = counts
        data["chunks"] = sum(counts.values())
    return data


def _chroma_of(store: DocumentStore, connections: Connections) -> ChromaCollection | None:
    config = StoreConfig.model_validate(store.config).vector_store
    if config.type != "chroma" or config.url is None:
        return None
    return ChromaCollection(connections.http, config.url, f"tailwinds-{store.id}")


async def _quietly(call: Awaitable[None]) -> None:
    """A clean-up on the vector server that may fail without harm (search ignores vectors
    the database does not hold); said in the log."""
    try:
        await call
    except FlowError as exc:
        logger.warning("vector store clean-up failed: %s", exc)


class DocumentService:
    def __init__(
        self,
        documents: DocumentRepository,
        credentials: CredentialRepository,
        connections: Connections,
    ) -> None:
        self.jobs = IngestJobs()
        self.documents = documents
        self.credentials = credentials
        self.connections = connections
        # the stores searched last, their index in memory (TAILWINDS_INDEX_CACHE_SIZE)
        self._indexes = IndexCache(connections.settings.index_cache_size)
        self._building: dict[tuple[str, int], asyncio.Future[StoreIndex]] = {}

    # --- management -------------------------------------------------------------------

    async def create(self, name: str, config: dict[str, Any]) -> dict[str, Any]:
        try:
            parsed = StoreConfig.model_validate(config)
        except ValidationError as exc:
            raise InvalidRequest(describe_validation_error(exc)) from exc
        splitter = parsed.splitter
        if splitter.chunk_overlap >= splitter.chunk_size:
            raise InvalidRequest("must be smaller than chunkSize", field="splitter.chunkOverlap")
        credential = parsed.embedding.credential
        if credential and not await self.credentials.exists(credential):
            raise InvalidRequest("no credential with this id", field="embedding.credential")
        store = await self.documents.create_store(
            name, parsed.model_dump(by_alias=True, exclude_none=True)
        )
        return public_store(store, {})

    async def list(self) -> list[dict[str, Any]]:
        return [public_store(store) for store in await self.documents.list_stores()]

    async def get(self, store_id: str) -> dict[str, Any]:
        store = await self._store(store_id)
        return public_store(store, await self.documents.counts(store_id))

    async def delete(self, store_id: str) -> None:
        store = await self.documents.get_store(store_id)
        if store is None or not await self.documents.delete_store(store_id):
            raise NotFound(f"document store {store_id!r} not found")
        self._indexes.pop(store_id, None)
        chroma = _chroma_of(store, self.connections)
        if chroma is not None:
            await _quietly(chroma.drop())

    async def list_chunks(self, store_id: str, source: str | None) -> builtins.list[dict[str, Any]]:
        await self._store(store_id)
        chunks = await self.documents.chunks(store_id, [source] if source else None)
        return [{"id": c.id, "pageContent": c.content, "metadata": c.metadata} for c in chunks]

    async def get_chunk(self, store_id: str, chunk_id: str) -> dict[str, Any]:
        await self._store(store_id)
        chunk = await self.documents.chunk(store_id, chunk_id)
        if chunk is None:
            raise NotFound(f"no chunk {chunk_id!r} in document store {store_id!r}")
        return {"id": chunk.id, "pageContent": chunk.content, "metadata": chunk.metadata}

    async def delete_chunk(self, store_id: str, chunk_id: str) -> None:
        store = await self._store(store_id)
        if not await self.documents.delete_chunk(store_id, chunk_id):
            raise NotFound(f"no chunk {chunk_id!r} in document store {store_id!r}")
        chroma = _chroma_of(store, self.connections)
        if chroma is not None:
            await _quietly(chroma.delete([chunk_id]))

    async def delete_source(self, store_id: str, source: str) -> int:
        store = await self._store(store_id)
        chroma = _chroma_of(store, self.connections)
        old_ids = [c.id for c in await self.documents.chunks(store_id, [source])]
        dropped = await self.documents.replace_sources(store_id, {source}, [])
        if chroma is not None:
            await _quietly(chroma.delete(old_ids))
        return dropped

    async def upsert(
        self, store_id: str, documents: builtins.list[Any], progress: Progress | None = None
    ) -> dict[str, Any]:
        """Split, embed only the chunks whose text is new, and replace every source named
        in one transaction: on any failure the store is as it was. `progress(done, total)`
        hears of each batch embedded. Raises `PayloadTooLarge` past the upsert's caps, of
        documents before splitting, of chunks before embedding."""
        settings = self.connections.settings
        check_documents(len(documents), settings)
        store = await self._store(store_id)
        config = StoreConfig.model_validate(store.config)
        planned = await offload.lanes().computing.run(plan_chunks, documents, config.splitter)
        check_chunks(len(planned), settings)
        sources = {c.source for c in planned}
        existing = await self.documents.chunks(store_id, sources)
        known = {c.content_hash: c.embedding for c in existing}
        new_texts = sorted({c.content for c in planned if c.content_hash not in known})
        vectors: builtins.list[builtins.list[float]] = []
        if new_texts:
            embedder = _Embedder(self.credentials, self.connections, config.embedding)
            if progress is None:
                vectors = await embedder.embed(new_texts)
            else:
                vectors = []
                step = config.embedding.batch_size
                progress(0, len(new_texts))
                for start in range(0, len(new_texts), step):
                    vectors += await embedder.embed(new_texts[start : start + step])
                    progress(len(vectors), len(new_texts))
                if len({len(v) for v in vectors}) > 1:
                    raise FlowError("the embedding model changed its number of dimensions")
            size = await self.documents.embedding_bytes(store_id)
            if size is not None and size != 4 * len(vectors[0]):
                raise FlowError(
                    f"the embedding model gave {len(vectors[0])} dimensions where this store "
                    f"holds {size // 4}: make a new store for a new model"
                )
        # a conversion and a copy per chunk: a thread's work for a large upsert
        chunks = await offload.lanes().computing.run(
            with_embeddings, planned, known, new_texts, vectors if new_texts else []
        )
        chroma = _chroma_of(store, self.connections)
        if chroma is None:
            replaced = await self.documents.replace_sources(store_id, sources, chunks)
        else:
            replaced = await self._replace_with_chroma(
                chroma, store_id, sources, chunks, [c.id for c in existing]
            )
        return {
            "sources": sorted(sources),
            "chunks": len(chunks),
            "embedded": len(new_texts),
            "replaced": replaced,
        }

    async def _replace_with_chroma(
        self,
        chroma: ChromaCollection,
        store_id: str,
        sources: set[str],
        chunks: builtins.list[Chunk],
        old_ids: builtins.list[str],
    ) -> int:
        """New vectors on the server first, then the one database transaction, then the
        old vectors away: whatever fails, search never sees a chunk the database lacks."""
        # a list of floats per chunk: a thread's work for a large upsert
        vectors = await offload.lanes().computing.run(_float_lists, chunks)
        await chroma.upsert(
            [c.id for c in chunks],
            vectors,
            [c.content for c in chunks],
            [{**c.metadata, "source": c.source} for c in chunks],
        )
        try:
            replaced = await self.documents.replace_sources(store_id, sources, chunks)
        except BaseException:
            await _quietly(chroma.delete([c.id for c in chunks]))
            raise
        await _quietly(chroma.delete(old_ids))
        return replaced

    async def _store(self, store_id: str) -> DocumentStore:
        store = await self.documents.get_store(store_id)
        if store is None:
            raise NotFound(f"document store {store_id!r} not found")
        return store

    # --- search, for the retriever node (engine.context.DocumentSource) --------------

    async def exists(self, store_id: str) -> bool:
        return await self.documents.get_store(store_id) is not None

    async def search(
        self,
        store_id: str,
        query: str,
        top_k: int,
        mode: str,
        min_score: float | None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> builtins.list[dict[str, Any]]:
        """The best chunks for `query`; with `metadata_filter`, only chunks whose metadata
        has each key at that value (or at one of the values, for a list)."""
        store = await self.documents.get_store(store_id)
        if store is None:
            raise FlowError(f"document store {store_id!r} no longer exists")
        index = await self._index(store)
        if not index.chunks:
            return []
        hits: builtins.list[Hit]
        wide = max(top_k * 4, 20)
        allowed = None
        if metadata_filter:
            allowed = await ranked(index, allowed_positions, index.chunks, metadata_filter)
            if not allowed:
                return []
            # rank everything, then keep the allowed: exact, and cheap at this store's scale
            wide = len(index.chunks)
        vector_hits: builtins.list[Hit] = []
        if mode in ("vector", "hybrid"):
            embedding = StoreConfig.model_validate(store.config).embedding
            embedder = _Embedder(self.credentials, self.connections, embedding)
            (vector,) = await embedder.embed([query])
            chroma = _chroma_of(store, self.connections)
            if chroma is None:
                query_vector = np.asarray(vector, dtype="<f4")
                vector_hits = await ranked(index, index.vectors.search, query_vector, wide)
            else:
                found = await chroma.query(vector, min(wide, len(index.chunks)), metadata_filter)
                vector_hits = [
                    Hit(index.positions[chunk_id], score)
                    for chunk_id, score in found
                    if chunk_id in index.positions  # not yet, or no longer, in the database
                ]
            if min_score is not None:
                vector_hits = [h for h in vector_hits if h.score >= min_score]
        keyword_hits = (
            await ranked(
                index,
                index.keywords.search,
                query,
                wide if allowed is not None or mode == "hybrid" else top_k,
            )
            if mode in ("keyword", "hybrid")
            else []
        )
        if allowed is not None:
            vector_hits = [h for h in vector_hits if h.index in allowed]
            keyword_hits = [h for h in keyword_hits if h.index in allowed]
        if mode == "vector":
            hits = vector_hits[:top_k]
        elif mode == "keyword":
            hits = keyword_hits[:top_k]
        else:
            hits = fuse([vector_hits, keyword_hits], top_k)
        return [
            {
                "pageContent": index.chunks[h.index].content,
                "metadata": {**index.chunks[h.index].metadata, "score": round(h.score, 4)},
            }
            for h in hits
        ]

    async def _index(self, store: DocumentStore) -> StoreIndex:
        index = self._indexes.get(store.id)
        if index is not None and index.version == store.version:
            return index
        # one build per store version, shared by the searches that arrive meanwhile
        key = (store.id, store.version)
        building = self._building.get(key)
        if building is None:
            building = asyncio.ensure_future(self._build(store))
            self._building[key] = building
            building.add_done_callback(offload.outcome_seen)
            building.add_done_callback(lambda _: self._building.pop(key, None))
        return await asyncio.shield(building)

    async def _build(self, store: DocumentStore) -> StoreIndex:
        chunks = await self.documents.chunks(store.id)
        # a Chroma store's vectors are searched on its server, not held here
        in_memory = bool(chunks) and _chroma_of(store, self.connections) is None
        if len(chunks) <= INLINE_CHUNKS:  # a few ms at most: not worth a thread
            index = build_index(store.version, chunks, in_memory)
        else:
            index = await offload.lanes().computing.run(
                build_index, store.version, chunks, in_memory
            )
        self._indexes.put(store.id, index)
        return index


class _Embedder:
    """Resolves the store's credential when it embeds, so a rotated key takes effect."""

    def __init__(
        self, credentials: CredentialRepository, connections: Connections, config: EmbeddingConfig
    ) -> None:
        self.credentials = credentials
        self.resources = connections
        self.config = config

    async def embed(self, texts: list[str]) -> list[list[float]]:
        api_key = None
        if self.config.credential:
            data = await self.credentials.secret(self.config.credential)
            if data is None:
                raise FlowError(f"credential {self.config.credential!r} no longer exists")
            api_key = data.get("apiKey")
        c = self.config
        if c.type == "localEmbeddings":
            return await LocalEmbeddings(self.resources.local_embeddings, c.batch_size).embed(texts)
        limits = ProviderLimits.from_settings(self.resources.settings)
        if c.type == "ollamaEmbeddings":
            return await OllamaEmbeddings(
                self.resources.wire, c.url, c.model, limits, c.batch_size
            ).embed(texts)
        if c.type in CLOUD_EMBEDDINGS:
            return await cloud_embeddings(c, self.resources.wire, api_key, limits).embed(texts)
        return await OpenAIEmbeddings(
            self.resources.wire, c.url, api_key, c.model, limits, c.batch_size
        ).embed(texts)
