"""Ranking chunks for a query: cosine similarity over embeddings, BM25 over words, and
reciprocal rank fusion of the two."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

WORD = re.compile(r"\w+", re.UNICODE)
RRF_K = 60


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


@dataclass(slots=True)
class Hit:
    index: int
    score: float


class VectorIndex:
    def __init__(self, vectors: np.ndarray) -> None:
        norms = np.linalg.norm(vectors, axis=1, keepdims=True) if len(vectors) else vectors
        self.unit = vectors / np.where(norms == 0, 1, norms) if len(vectors) else vectors

    def search(self, query: np.ndarray, top_k: int) -> list[Hit]:
        if not len(self.unit):
            return []
        norm = np.linalg.norm(query)
        scores = self.unit @ (query / (norm or 1))
        best = np.argsort(-scores)[:top_k]
        return [Hit(int(i), float(scores[i])) for i in best]


class KeywordIndex:
    """Okapi BM25 (k1 = 1.5, b = 0.75)."""

    def __init__(self, texts: list[str], k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.docs = [Counter(words(t)) for t in texts]
        self.lengths = [sum(d.values()) for d in self.docs]
        self.avg = sum(self.lengths) / len(self.lengths) if self.lengths else 0.0
        frequency: Counter[str] = Counter()
        for doc in self.docs:
            frequency.update(doc.keys())
        n = len(self.docs)
        self.idf = {w: math.log(1 + (n - f + 0.5) / (f + 0.5)) for w, f in frequency.items()}

    def search(self, query: str, top_k: int) -> list[Hit]:
        terms = [t for t in set(words(query)) if t in self.idf]
        if not terms:
            return []
        hits = []
        for i, doc in enumerate(self.docs):
            score = 0.0
            for term in terms:
                tf = doc.get(term, 0)
                if tf:
                    norm = tf + self.k1 * (1 - self.b + self.b * self.lengths[i] / (self.avg or 1))
                    score += self.idf[term] * tf * (self.k1 + 1) / norm
            if score > 0:
                hits.append(Hit(i, score))
        hits.sort(key=lambda h: -h.score)
        return hits[:top_k]


def fuse(rankings: list[list[Hit]], top_k: int) -> list[Hit]:
    """Reciprocal rank fusion: each list gives 1 / (60 + rank) to what it ranks."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking):
            scores[hit.index] = scores.get(hit.index, 0.0) + 1 / (RRF_K + rank + 1)
    best = sorted(scores.items(), key=lambda kv: -kv[1])[:top_k]
    return [Hit(i, s) for i, s in best]
