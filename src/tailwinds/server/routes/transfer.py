"""Export and import of all chatflows (and, with a passphrase, credentials)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from tailwinds.manage.transfer import Bundle
from tailwinds.server.auth import require_admin
from tailwinds.server.state import State

router = APIRouter(prefix="/api/v1", tags=["export"], dependencies=[Depends(require_admin)])


class ExportBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # with it, credentials and inline secrets are in the file, encrypted with it
    passphrase: str | None = Field(None, min_length=8, max_length=1000)


class ImportBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bundle: Bundle = Field(description="What `POST /api/v1/export` answered")
    passphrase: str | None = Field(None, max_length=1000)


@router.post("/export")
async def export(body: ExportBody, state: State) -> dict[str, Any]:
    """Every chatflow, as one JSON document; secrets only with a passphrase."""
    return await state.transfer.export(body.passphrase)


@router.post("/import")
async def import_(body: ImportBody, state: State) -> dict[str, Any]:
    """Create the chatflows (and credentials) of an export; reports what it made, what
    failed validation here, and the new API keys made for guarded chatflows."""
    return await state.transfer.import_(body.bundle, body.passphrase)
