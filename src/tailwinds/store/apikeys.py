"""API keys: shown once at creation, stored as scrypt hashes, compared in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, select

from tailwinds.store.db import Database
from tailwinds.store.tables import ApiKeyRow, utcnow

# The keys are 256 random bits, so the hash need not be slow against guessing; scrypt
# still makes a stolen table useless for offline checks at no risk. ~30 ms a check.
_SCRYPT = {"n": 2**13, "r": 8, "p": 1}
KEY_PREFIX = "tw_"


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(key.encode(), salt=salt, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def check_key(key: str, stored: str) -> bool:
    try:
        scheme, salt_b64, digest_b64 = stored.split("$")
        salt, digest = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(key.encode(), salt=salt, **_SCRYPT)
    return hmac.compare_digest(candidate, digest)


@dataclass(slots=True, frozen=True)
class ApiKey:
    id: str
    name: str
    created_date: datetime
    rate_limit: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "createdDate": self.created_date.isoformat(),
            "rateLimit": self.rate_limit,
        }


def _from_row(row: ApiKeyRow) -> ApiKey:
    limit = orjson.loads(row.rate_limit) if row.rate_limit else None
    return ApiKey(row.id, row.name, row.created_date, limit)


class ApiKeyRepository:
    def __init__(self, db: Database) -> None:
        self.db = db
        # verified keys, by a keyed digest, so a repeat caller skips scrypt; per process
        self._verified: dict[bytes, str] = {}
        self._cache_secret = secrets.token_bytes(32)

    async def create(
        self, name: str, rate_limit: dict[str, Any] | None = None
    ) -> tuple[ApiKey, str]:
        key = new_key()
        row = ApiKeyRow(
            id=str(uuid.uuid4()),
            name=name,
            key_hash=hash_key(key),
            created_date=utcnow(),
            rate_limit=orjson.dumps(rate_limit).decode() if rate_limit else None,
        )
        async with self.db.session() as session, session.begin():
            session.add(row)
        return _from_row(row), key

    async def update(
        self, api_key_id: str, name: str | None, rate_limit: dict[str, Any] | None, clear: bool
    ) -> ApiKey | None:
        """Rename, or set the rate limit (`clear`: remove it)."""
        async with self.db.session() as session, session.begin():
            row = await session.get(ApiKeyRow, api_key_id)
            if row is None:
                return None
            if name is not None:
                row.name = name
            if rate_limit is not None or clear:
                row.rate_limit = orjson.dumps(rate_limit).decode() if rate_limit else None
        return _from_row(row)

    async def list(self) -> list[ApiKey]:
        async with self.db.session() as session:
            rows = await session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_date))
            return [_from_row(r) for r in rows]

    async def delete(self, api_key_id: str) -> bool:
        self._verified = {k: v for k, v in self._verified.items() if v != api_key_id}
        async with self.db.session() as session, session.begin():
            result = await session.execute(delete(ApiKeyRow).where(ApiKeyRow.id == api_key_id))
            return bool(result.rowcount)

    async def verify(self, api_key_id: str, presented: str) -> ApiKey | None:
        """The key with this id, when `presented` is it; else None."""
        tag = hmac.digest(self._cache_secret, presented.encode(), "sha256")
        cached = self._verified.get(tag)
        if cached is not None and not hmac.compare_digest(cached, api_key_id):
            return None
        # read each time: a key deleted (or its limit changed) by another process counts
        async with self.db.session() as session:
            row = await session.get(ApiKeyRow, api_key_id)
        if row is None:
            return None
        if cached is None:
            if not check_key(presented, row.key_hash):
                return None
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[tag] = api_key_id
        return _from_row(row)
