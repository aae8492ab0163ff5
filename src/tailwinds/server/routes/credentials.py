"""Provider credentials: written once, used by runs, never read back by anyone."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response

from tailwinds.errors import NotFound
from tailwinds.manage.credential_fields import CredentialBody
from tailwinds.server.auth import require_admin
from tailwinds.server.state import State

router = APIRouter(
    prefix="/api/v1/credentials", tags=["credentials"], dependencies=[Depends(require_admin)]
)


@router.post("", status_code=201)
async def create_credential(body: CredentialBody, state: State) -> dict[str, Any]:
    """Store a credential, encrypted. The answer, like every later one, leaves `data` out."""
    credential = await state.credentials.create(body.name, body.provider, body.data)
    return credential.as_json()


@router.get("")
async def list_credentials(state: State) -> list[dict[str, Any]]:
    return [credential.as_json() for credential in await state.credentials.list()]


@router.delete("/{credential_id}", status_code=204)
async def delete_credential(credential_id: str, state: State) -> Response:
    if not await state.credentials.delete(credential_id):
        raise NotFound(f"credential {credential_id!r} not found")
    return Response(status_code=204)
