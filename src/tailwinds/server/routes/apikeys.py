"""API keys: the key itself is in the answer to its creation, and nowhere else, ever."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from tailwinds.errors import NotFound
from tailwinds.server.auth import require_admin
from tailwinds.server.state import State

router = APIRouter(
    prefix="/api/v1/apikeys", tags=["api keys"], dependencies=[Depends(require_admin)]
)


class ApiKeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)


@router.post("", status_code=201)
async def create_api_key(body: ApiKeyBody, state: State) -> dict[str, Any]:
    api_key, key = await state.api_keys.create(body.name)
    return {**api_key.as_json(), "key": key}


@router.get("")
async def list_api_keys(state: State) -> list[dict[str, Any]]:
    return [api_key.as_json() for api_key in await state.api_keys.list()]


@router.delete("/{api_key_id}", status_code=204)
async def delete_api_key(api_key_id: str, state: State) -> Response:
    if not await state.api_keys.delete(api_key_id):
        raise NotFound(f"API key {api_key_id!r} not found")
    return Response(status_code=204)
