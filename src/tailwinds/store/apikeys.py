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

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "createdDate": self.created_date.isoformat()}


class ApiKeyRepository:
    def __init__(self, db: Database) -> None:
        self.db = db
        # verified keys, by a keyed digest, so a repeat caller skips scrypt; per process
        self._verified: dict[bytes, str] = {}
        self._cache_secret = secrets.token_bytes(32)

    async def create(self, name: str) -> tuple[ApiKey, str]:
        key = new_key()
        row = ApiKeyRow(
            id=str(uuid.uuid4()), name=name, key_hash=hash_key(key), created_date=utcnow()
        )
        async with self.db.session() as session, session.begin():
            session.add(row)
        return ApiKey(row.id, row.name, row.created_date), key

    async def list(self) -> list[ApiKey]:
        async with self.db.session() as session:
            rows = await session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_date))
            return [ApiKey(r.id, r.name, r.created_date) for r in rows]

    async def delete(self, api_key_id: str) -> bool:
        self._verified = {k: v for k, v in self._verified.items() if v != api_key_id}
        async with self.db.session() as session, session.begin():
            result = await session.execute(delete(ApiKeyRow).where(ApiKeyRow.id == api_key_id))
            return bool(result.rowcount)

    async def verify(self, api_key_id: str, presented: str) -> bool:
        """True when `presented` is the key with this id."""
        tag = hmac.digest(self._cache_secret, presented.encode(), "sha256")
        cached = self._verified.get(tag)
        if cached is not None:
            if hmac.compare_digest(cached, api_key_id):
                # still there? a key deleted by another process must stop working
                return await self._exists(api_key_id)
            return False
        async with self.db.session() as session:
            row = await session.get(ApiKeyRow, api_key_id)
        if row is None or not check_key(presented, row.key_hash):
            return False
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified[tag] = api_key_id
        return True

    async def _exists(self, api_key_id: str) -> bool:
        async with self.db.session() as session:
            return await session.get(ApiKeyRow, api_key_id) is not None
