"""A document store's search index, held in memory per store version: the chunks, their
unit vectors and BM25 counts. Built and searched on a worker thread of the computing lane
(`tailwinds.offload`) when it is large: both are Python over every chunk."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from tailwinds import offload
from tailwinds.retrieval.ranking import KeywordIndex, VectorIndex
from tailwinds.store.documents import Chunk

# indexes up to this many chunks are ranked on the event loop (well under a millisecond)
INLINE_CHUNKS = 2000
T = TypeVar("T")


@dataclass(slots=True)
class StoreIndex:
    version: int
    chunks: list[Chunk]
    vectors: VectorIndex
    keywords: KeywordIndex
    positions: dict[str, int]  # chunk id -> its place in `chunks`


def build_index(version: int, chunks: list[Chunk], in_memory: bool) -> StoreIndex:
    """The store's search index (BM25 counts every word: a thread's work when large)."""
    matrix = (
        np.vstack([np.frombuffer(c.embedding, dtype="<f4") for c in chunks])
        if in_memory
        else np.zeros((0, 0), dtype="<f4")
    )
    return StoreIndex(
        version,
        chunks,
        VectorIndex(matrix),
        KeywordIndex([c.content for c in chunks]),
        {c.id: i for i, c in enumerate(chunks)},
    )


async def ranked(index: StoreIndex, rank: Callable[..., T], *args: Any) -> T:
    """`rank(*args)` over the index: at once for a small one, on a worker thread for one
    large enough to hold the event loop (a BM25 pass is Python over every chunk)."""
    if len(index.chunks) <= INLINE_CHUNKS:
        return rank(*args)
    return await offload.lanes().computing.run(rank, *args)


def allowed_positions(chunks: list[Chunk], wanted: dict[str, Any]) -> set[int]:
    return {i for i, c in enumerate(chunks) if _matches(c.metadata, wanted)}


def _matches(metadata: dict[str, Any], wanted: dict[str, Any]) -> bool:
    for key, value in wanted.items():
        have = metadata.get(key)
        if isinstance(value, list):
            if have not in value:
                return False
        elif have != value:
            return False
    return True
