"""Provider credentials: stored encrypted, given back only to the runs that use them,
never to an API caller."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, select

from tailwinds.store.db import Database, rowcount
from tailwinds.store.secrets import SecretBox
from tailwinds.store.tables import CredentialRow, utcnow


@dataclass(slots=True, frozen=True)
class Credential:
    id: str
    name: str
    provider: str
    created_date: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "provider": self.provider,
            "createdDate": self.created_date.isoformat(),
        }


class CredentialRepository:
    def __init__(self, db: Database, box: SecretBox) -> None:
        self.db = db
        self.box = box
        self._recent: dict[str, tuple[float, dict[str, str]]] = {}

    async def create(self, name: str, provider: str, data: dict[str, str]) -> Credential:
        row = CredentialRow(
            id=str(uuid.uuid4()),
            name=name,
            provider=provider,
            data=self.box.encrypt(orjson.dumps(data)),
            created_date=utcnow(),
        )
        async with self.db.session() as session, session.begin():
            session.add(row)
        return Credential(row.id, row.name, row.provider, row.created_date)

    async def list(self) -> list[Credential]:
        async with self.db.session() as session:
            rows = await session.scalars(select(CredentialRow).order_by(CredentialRow.created_date))
            return [Credential(r.id, r.name, r.provider, r.created_date) for r in rows]

    async def exists(self, credential_id: str) -> bool:
        async with self.db.session() as session:
            return await session.get(CredentialRow, credential_id) is not None

    async def delete(self, credential_id: str) -> bool:
        self._recent.pop(credential_id, None)
        async with self.db.session() as session, session.begin():
            result = await session.execute(
                delete(CredentialRow).where(CredentialRow.id == credential_id)
            )
            return bool(rowcount(result))

    async def secret(self, credential_id: str, max_age_s: float = 1.0) -> dict[str, str] | None:
        """The decrypted data, for a run; read at most once a `max_age_s` per process."""
        recent = self._recent.get(credential_id)
        if recent is not None and time.monotonic() - recent[0] < max_age_s:
            return recent[1]
        async with self.db.session() as session:
            row = await session.get(CredentialRow, credential_id)
        if row is None:
            return None
        data: dict[str, str] = orjson.loads(self.box.decrypt(row.data))
        self._recent[credential_id] = (time.monotonic(), data)
        return data
