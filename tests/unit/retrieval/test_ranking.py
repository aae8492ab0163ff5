"""Ranking: cosine similarity, Okapi BM25 against scores worked by hand, and reciprocal
rank fusion."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tailwinds.retrieval.ranking import RRF_K, Hit, KeywordIndex, VectorIndex, fuse, words


def test_cosine_ranks_by_angle_not_length() -> None:
    vectors = np.array([[1.0, 0.0], [10.0, 10.0], [0.0, 3.0], [-1.0, 0.0]], dtype="<f4")
    hits = VectorIndex(vectors).search(np.array([2.0, 0.1], dtype="<f4"), 3)
    assert [h.index for h in hits] == [0, 1, 2]
    assert hits[0].score == pytest.approx(2 / math.hypot(2, 0.1), rel=1e-5)
    assert hits[1].score == pytest.approx(2.1 / math.hypot(2, 0.1) / math.sqrt(2), rel=1e-5)


def test_zero_vectors_score_zero_and_never_nan() -> None:
    index = VectorIndex(np.array([[0.0, 0.0], [1.0, 0.0]], dtype="<f4"))
    hits = index.search(np.array([1.0, 0.0], dtype="<f4"), 5)
    assert [(h.index, h.score) for h in hits] == [(1, pytest.approx(1.0)), (0, 0.0)]
    zero_query = index.search(np.zeros(2, dtype="<f4"), 5)
    assert all(h.score == 0.0 for h in zero_query)


def test_an_empty_index_finds_nothing() -> None:
    assert VectorIndex(np.zeros((0, 3), dtype="<f4")).search(np.ones(3), 4) == []
    assert KeywordIndex([]).search("anything", 4) == []


def test_words_are_lowercased_unicode_word_runs() -> None:
    assert words("Héllo, WORLD_1! straße—ok") == ["héllo", "world_1", "straße", "ok"]


def test_bm25_scores_as_worked_by_hand() -> None:
    texts = ["the cat sat", "the dog sat on the dog mat", "birds"]
    index = KeywordIndex(texts)
    # n = 3 documents, lengths 3, 7, 1: average 11/3
    avg = 11 / 3

    def idf(f: int) -> float:
        return math.log(1 + (3 - f + 0.5) / (f + 0.5))

    def term(tf: int, length: int, df: int) -> float:
        return idf(df) * tf * 2.5 / (tf + 1.5 * (0.25 + 0.75 * length / avg))

    hits = index.search("dog sat", 5)
    assert [h.index for h in hits] == [1, 0]
    assert hits[0].score == pytest.approx(term(2, 7, 1) + term(1, 7, 2))
    assert hits[1].score == pytest.approx(term(1, 3, 2))


def test_bm25_rarer_words_and_shorter_documents_weigh_more() -> None:
    index = KeywordIndex(["common rare", "common", "common", "common " * 9 + "rare"])
    hits = index.search("rare common", 4)
    assert [h.index for h in hits][:2] == [0, 3]  # both have the rare word, 0 is shorter
    assert index.search("RARE", 1)[0].index == 0
    assert index.search("absent words", 4) == []
    assert len(index.search("common", 2)) == 2  # top_k


def test_fusion_adds_reciprocal_ranks() -> None:
    vector = [Hit(7, 0.9), Hit(3, 0.8), Hit(5, 0.1)]
    keyword = [Hit(3, 12.0), Hit(9, 4.0)]
    fused = fuse([vector, keyword], 3)
    assert [h.index for h in fused] == [3, 7, 9]
    assert fused[0].score == pytest.approx(1 / (RRF_K + 2) + 1 / (RRF_K + 1))
    assert fused[1].score == pytest.approx(1 / (RRF_K + 1))
    assert fused[2].score == pytest.approx(1 / (RRF_K + 2))
    assert fuse([[], []], 3) == []
