"""API key checks: hashed on a thread, never on the event loop; an outcome, right or wrong,
remembered under an HMAC so a repeated key costs no hash (concurrent repeats share one);
keys not of the issued format refused without hashing; the cache holds no key."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import tailwinds.store.apikeys as apikeys
from tailwinds.store.apikeys import ApiKeyRepository, new_key
from tailwinds.store.db import Database


def run(tmp_path: Path, scenario: Callable[[ApiKeyRepository], Awaitable[None]]) -> None:
    async def main() -> None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}")
        try:
            await db.migrate()
            await scenario(ApiKeyRepository(db))
        finally:
            await db.close()

    asyncio.run(main())


def test_a_repeated_wrong_key_is_hashed_once(tmp_path: Path) -> None:
    async def scenario(repo: ApiKeyRepository) -> None:
        api_key, _ = await repo.create("app")
        wrong = new_key()
        for _ in range(5):
            assert await repo.verify(api_key.id, wrong) is None
        assert repo.hashes_computed == 1
        other = new_key()
        results = await asyncio.gather(*(repo.verify(api_key.id, other) for _ in range(8)))
        assert results == [None] * 8
        assert repo.hashes_computed == 2  # eight at once shared one hash
        assert repo.known(api_key.id, other) is False

    run(tmp_path, scenario)


def test_the_right_key_still_works_and_is_hashed_once(tmp_path: Path) -> None:
    async def scenario(repo: ApiKeyRepository) -> None:
        api_key, key = await repo.create("app")
        assert await repo.verify(api_key.id, new_key()) is None
        assert repo.known(api_key.id, key) is None
        for _ in range(3):
            found = await repo.verify(api_key.id, key)
            assert found is not None and found.id == api_key.id
        assert repo.hashes_computed == 2
        assert repo.known(api_key.id, key) is True
        assert repo.known("another-id", key) is False  # a key opens its own id only

    run(tmp_path, scenario)


def test_a_key_not_of_the_issued_format_is_refused_without_hashing(tmp_path: Path) -> None:
    async def scenario(repo: ApiKeyRepository) -> None:
        api_key, key = await repo.create("app")
        for wrong in ("tw_wrong000000000000000000000000000001", key + "x", "", "x" * 100_000):
            assert await repo.verify(api_key.id, wrong) is None
        assert repo.hashes_computed == 0

    run(tmp_path, scenario)


def test_hashing_runs_on_a_worker_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[int] = []
    real = apikeys.check_key

    def check_key(*args: Any) -> bool:
        threads.append(threading.get_ident())
        return real(*args)

    monkeypatch.setattr(apikeys, "check_key", check_key)

    async def scenario(repo: ApiKeyRepository) -> None:
        api_key, key = await repo.create("app")
        assert await repo.verify(api_key.id, key) is not None
        assert await repo.verify(api_key.id, new_key()) is None
        assert len(threads) == 2
        assert threading.get_ident() not in threads

    run(tmp_path, scenario)


def test_the_cache_holds_no_key(tmp_path: Path) -> None:
    async def scenario(repo: ApiKeyRepository) -> None:
        api_key, key = await repo.create("app")
        wrong = new_key()
        await repo.verify(api_key.id, key)
        await repo.verify(api_key.id, wrong)
        held = repr(vars(repo) if hasattr(repo, "__dict__") else repo).encode()
        cached = (
            b"".join([*repo._verified, *repo._refused])
            + repr([repo._verified, repo._refused]).encode()
        )
        for secret in (key, wrong, key[3:], wrong[3:]):
            assert secret.encode() not in cached
            assert secret.encode() not in held

    run(tmp_path, scenario)
