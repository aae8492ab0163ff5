"""The document stores' index cache (TAILWINDS_INDEX_CACHE_SIZE): at most its size, the
least recently used index dropped first, a search making its store the most recent."""

from __future__ import annotations

import pytest

from tailwinds.config import Settings
from tailwinds.retrieval.index import StoreIndex, build_index
from tailwinds.retrieval.index_cache import IndexCache


def index(version: int = 1) -> StoreIndex:
    return build_index(version, [], in_memory=False)


def test_the_least_recently_used_index_goes_first() -> None:
    cache = IndexCache(2)
    cache.put("a", index())
    cache.put("b", index())
    assert cache.get("a") is not None  # "a" is now the most recent: "b" goes next
    cache.put("c", index())
    assert len(cache) == 2
    assert "b" not in cache
    assert "a" in cache and "c" in cache


def test_a_new_version_replaces_the_store_s_index_without_eviction() -> None:
    cache = IndexCache(2)
    cache.put("a", index(1))
    cache.put("b", index(1))
    newer = index(2)
    cache.put("a", newer)
    assert len(cache) == 2
    assert cache.get("a") is newer
    assert cache.get("b") is not None


def test_a_dropped_store_is_forgotten() -> None:
    cache = IndexCache(1)
    cache.put("a", index())
    assert cache.pop("a") is not None
    assert cache.get("a") is None
    assert cache.pop("a") is None


def test_the_size_is_a_setting_of_at_least_one() -> None:
    assert Settings.from_env({"TAILWINDS_INDEX_CACHE_SIZE": "3"}).index_cache_size == 3
    with pytest.raises(ValueError, match="TAILWINDS_INDEX_CACHE_SIZE"):
        Settings.from_env({"TAILWINDS_INDEX_CACHE_SIZE": "0"})
    with pytest.raises(ValueError):
        IndexCache(0)
