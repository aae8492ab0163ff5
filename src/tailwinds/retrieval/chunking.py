"""An upsert's documents into chunks: checked, split, hashed, then given their embeddings.
Run on a worker thread of the computing lane (`tailwinds.offload`): linear in the body,
which may be as large as the upload cap."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tailwinds.engine.validation import describe_validation_error
from tailwinds.errors import InvalidRequest
from tailwinds.messages import MAX_INPUT_DEPTH, nested_deeper_than
from tailwinds.retrieval.splitter import MARKDOWN_SEPARATORS, SEPARATORS, split_text
from tailwinds.store.documents import Chunk


class Splitter(Protocol):
    """How a store splits (its `splitter` settings): `type` recursive or markdown."""

    type: str
    chunk_size: int
    chunk_overlap: int


class DocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    page_content: str = Field(alias="pageContent", min_length=1)
    metadata: dict[str, Any] = Field(default_factory=dict)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _split(documents: list[DocumentIn], splitter: Splitter) -> list[Chunk]:
    separators = MARKDOWN_SEPARATORS if splitter.type == "markdown" else SEPARATORS
    chunks: list[Chunk] = []
    positions: dict[str, int] = {}
    for i, doc in enumerate(documents):
        source = str(doc.metadata.get("source") or f"document-{i}")
        texts = split_text(
            doc.page_content, splitter.chunk_size, splitter.chunk_overlap, separators
        )
        for text in texts:
            position = positions.get(source, 0)
            positions[source] = position + 1
            metadata = {**doc.metadata, "source": source, "chunk": position}
            chunks.append(
                Chunk(str(uuid.uuid4()), source, position, text, metadata, _hash(text), b"")
            )
    return chunks


def plan_chunks(documents: list[Any], splitter: Splitter) -> list[Chunk]:
    """The upsert's documents, checked and split into chunks. Raises `InvalidRequest`
    naming the first document that is not `{pageContent, metadata}`."""
    parsed = []
    # one document a call, not the list in one: the GIL is let go between two, so the
    # loop keeps its turns through a large upsert
    for i, document in enumerate(documents):
        try:
            parsed.append(DocumentIn.model_validate(document))
        except ValidationError as exc:
            raise InvalidRequest(describe_validation_error(exc, prefix=f"documents.{i}")) from exc
        # the `sourceDocuments` event and the stored turn wrap a chunk's metadata a few
        # levels more: past the JSON encoder's 254 levels, a stream broke off mid-way
        if nested_deeper_than(parsed[-1].metadata, MAX_INPUT_DEPTH):
            raise InvalidRequest(
                f"expected a value nested at most {MAX_INPUT_DEPTH} levels deep",
                field=f"documents.{i}.metadata",
            )
    if not parsed:
        raise InvalidRequest("expected at least one document", field="documents")
    return _split(parsed, splitter)


def with_embeddings(
    planned: list[Chunk], known: dict[str, bytes], texts: list[str], vectors: list[list[float]]
) -> list[Chunk]:
    """The planned chunks with their embeddings: `known` (content hash -> little-endian
    float32 bytes) and the new `vectors` of `texts`."""
    for text, vector in zip(texts, vectors, strict=True):
        known[_hash(text)] = np.asarray(vector, dtype="<f4").tobytes()
    return [_with_embedding(c, known[c.content_hash]) for c in planned]


def _with_embedding(chunk: Chunk, embedding: bytes) -> Chunk:
    return Chunk(
        chunk.id,
        chunk.source,
        chunk.position,
        chunk.content,
        chunk.metadata,
        chunk.content_hash,
        embedding,
    )
