"""API keys: the key itself is in the answer to its creation, and nowhere else, ever."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from tailwinds.errors import NotFound
from tailwinds.limits import RateLimit
from tailwinds.server.auth import require_admin
from tailwinds.server.state import State

router = APIRouter(
    prefix="/api/v1/apikeys", tags=["api keys"], dependencies=[Depends(require_admin)]
)


class ApiKeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1, max_length=200)
    # counted over every chatflow this key opens, on top of each chatflow's own limit
    rate_limit: RateLimit | None = Field(None, alias="rateLimit")


class ApiKeyPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str | None = Field(None, min_length=1, max_length=200)
    rate_limit: RateLimit | None = Field(None, alias="rateLimit")


def _limit(limit: RateLimit | None) -> dict[str, Any] | None:
    return limit.model_dump(by_alias=True, exclude_none=True) if limit else None


@router.post("", status_code=201)
async def create_api_key(body: ApiKeyBody, state: State) -> dict[str, Any]:
    api_key, key = await state.api_keys.create(body.name, _limit(body.rate_limit))
    return {**api_key.as_json(), "key": key}


@router.put("/{api_key_id}")
async def update_api_key(api_key_id: str, body: ApiKeyPatch, state: State) -> dict[str, Any]:
    """Rename a key or change its rate limit (`"rateLimit": null` removes it)."""
    api_key = await state.api_keys.update(
        api_key_id,
        body.name,
        _limit(body.rate_limit),
        clear="rate_limit" in body.model_fields_set and body.rate_limit is None,
    )
    if api_key is None:
        raise NotFound(f"API key {api_key_id!r} not found")
    return api_key.as_json()


@router.get("")
async def list_api_keys(state: State) -> list[dict[str, Any]]:
    return [api_key.as_json() for api_key in await state.api_keys.list()]


@router.delete("/{api_key_id}", status_code=204)
async def delete_api_key(api_key_id: str, state: State) -> Response:
    if not await state.api_keys.delete(api_key_id):
        raise NotFound(f"API key {api_key_id!r} not found")
    return Response(status_code=204)
