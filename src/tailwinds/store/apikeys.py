"""API keys: shown once at creation, stored as scrypt hashes, compared in constant time.

A check hashes on a worker thread (`hashlib.scrypt` releases the GIL), never on the event
loop, and its outcome is remembered under an HMAC of the presented key with a secret of
this process (the cache never holds a key): a right key repeated costs a dictionary
lookup, and so does a wrong one, for `REFUSED_TTL_S`."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, select

from tailwinds.metrics import API_KEY_HASHES
from tailwinds.offload import ThreadLane, outcome_seen
from tailwinds.store.db import Database, rowcount
from tailwinds.store.tables import ApiKeyRow, utcnow

# The keys are 256 random bits, so the hash need not be slow against guessing; scrypt
# still makes a stolen table useless for offline checks at no risk. ~30 ms a check.
_SCRYPT = {"n": 2**13, "r": 8, "p": 1}
KEY_PREFIX = "tw_"
REFUSED_TTL_S = 300.0  # a refused key is refused again for free this long
MAX_CACHED = 10_000  # outcomes remembered, each way


# what `new_key` makes: anything else is refused without hashing
KEY_FORMAT = re.compile(r"tw_[A-Za-z0-9_-]{43}")


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
    def __init__(self, db: Database, lane: ThreadLane | None = None) -> None:
        self.db = db
        # HMAC(secret, key) -> the id of the key it is; HMAC(secret, id, key) -> until when
        # it is known not to be that id's key (monotonic s). Per process.
        self._verified: dict[bytes, str] = {}
        self._refused: OrderedDict[bytes, float] = OrderedDict()
        self._checking: dict[bytes, asyncio.Future[bool]] = {}  # one hash per key at once
        self._cache_secret = secrets.token_bytes(32)
        # one thread: a check is ~30 ms of CPU, and the loop keeps a core of its own;
        # right keys hash once per process, so more than 64 waiting is an attack
        self._lane = lane or ThreadLane("key-check", workers=1, queue=64)
        self.hashes_computed = 0  # scrypt runs of checks (metrics, tests)

    async def create(
        self, name: str, rate_limit: dict[str, Any] | None = None
    ) -> tuple[ApiKey, str]:
        key = new_key()
        row = ApiKeyRow(
            id=str(uuid.uuid4()),
            name=name,
            key_hash=await self._lane.run(hash_key, key),
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
            return bool(rowcount(result))

    def known(self, api_key_id: str, presented: str) -> bool | None:
        """What this process already knows of `presented` for this key id, at the cost of
        two HMACs: True (it is the key), False (it is not), None (a check would hash)."""
        if not KEY_FORMAT.fullmatch(presented):
            return False
        cached = self._verified.get(self._tag(presented))
        if cached is not None:
            return hmac.compare_digest(cached, api_key_id)
        until = self._refused.get(self._tag(presented, api_key_id))
        if until is not None:
            if until > time.monotonic():
                return False
            self._refused.pop(self._tag(presented, api_key_id), None)
        return None

    async def verify(self, api_key_id: str, presented: str) -> ApiKey | None:
        """The key with this id, when `presented` is it; else None. Raises `ServerBusy`
        when the hashing threads are all taken."""
        known = self.known(api_key_id, presented)
        if known is False:
            return None
        # read each time: a key deleted (or its limit changed) by another process counts
        async with self.db.session() as session:
            row = await session.get(ApiKeyRow, api_key_id)
        if row is None:
            return None
        if known is None and not await self._check(api_key_id, presented, row.key_hash):
            return None
        return _from_row(row)

    def _tag(self, presented: str, api_key_id: str = "") -> bytes:
        message = f"{api_key_id}\n{presented}" if api_key_id else presented
        return hmac.digest(self._cache_secret, message.encode(), "sha256")

    async def _check(self, api_key_id: str, presented: str, key_hash: str) -> bool:
        """The one scrypt check of this key for this id, shared by whoever asks meanwhile;
        its outcome remembered."""
        tag = self._tag(presented, api_key_id)
        pending = self._checking.get(tag)
        if pending is None:
            # a check that ended while this caller read the row has left its outcome
            known = self.known(api_key_id, presented)
            if known is not None:
                return known
            pending = asyncio.ensure_future(self._hash(api_key_id, presented, key_hash))
            self._checking[tag] = pending
            pending.add_done_callback(outcome_seen)
            pending.add_done_callback(lambda _: self._checking.pop(tag, None))
        # shielded: one caller leaving must not cancel the check the others wait for
        return await asyncio.shield(pending)

    async def _hash(self, api_key_id: str, presented: str, key_hash: str) -> bool:
        self.hashes_computed += 1
        API_KEY_HASHES.inc()
        ok = await self._lane.run(check_key, presented, key_hash)
        if ok:
            if len(self._verified) >= MAX_CACHED:
                self._verified.clear()
            self._verified[self._tag(presented)] = api_key_id
        else:
            while len(self._refused) >= MAX_CACHED:
                self._refused.popitem(last=False)
            self._refused[self._tag(presented, api_key_id)] = time.monotonic() + REFUSED_TTL_S
        return ok
