"""Chatflow management: create, list, fetch, update, delete. Validated on save."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from tailwinds.limits import RateLimit
from tailwinds.server.auth import require_admin
from tailwinds.server.state import State
from tailwinds.store.chatflows import ConcurrentTurns

router = APIRouter(
    prefix="/api/v1/chatflows", tags=["chatflows"], dependencies=[Depends(require_admin)]
)


Origin = Annotated[str, Field(pattern=r"^(\*|https?://[^/\s]+)$")]


class McpToolSettings(BaseModel):
    """The chatflow as an MCP tool (`/mcp`): off unless `exposed`; the name defaults to
    the chatflow's, the description to a sentence naming it. Names follow the MCP spec's
    tool-name rule (SEP-986)."""

    model_config = ConfigDict(extra="forbid")

    exposed: bool = False
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]{1,64}$")
    description: str | None = Field(None, max_length=2000)


class ChatflowBody(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    flow_data: dict[str, Any] = Field(alias="flowData")
    api_key_id: str | None = Field(None, alias="apiKeyId")
    allowed_overrides: list[str] = Field(default_factory=list, alias="allowedOverrides")
    allowed_origins: list[Origin] = Field(default_factory=list, alias="allowedOrigins")
    rate_limit: RateLimit | None = Field(None, alias="rateLimit")
    resume_grace_s: float | None = Field(None, alias="resumeGraceSeconds", ge=0, le=3600)
    concurrent_turns: ConcurrentTurns = Field("reject", alias="concurrentTurns")
    mcp_tool: McpToolSettings | None = Field(None, alias="mcpTool")


class ChatflowPatch(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    flow_data: dict[str, Any] | None = Field(None, alias="flowData")
    api_key_id: str | None = Field(None, alias="apiKeyId")
    allowed_overrides: list[str] | None = Field(None, alias="allowedOverrides")
    allowed_origins: list[Origin] | None = Field(None, alias="allowedOrigins")
    rate_limit: RateLimit | None = Field(None, alias="rateLimit")
    resume_grace_s: float | None = Field(None, alias="resumeGraceSeconds", ge=0, le=3600)
    concurrent_turns: ConcurrentTurns | None = Field(None, alias="concurrentTurns")
    mcp_tool: McpToolSettings | None = Field(None, alias="mcpTool")


def _fields(body: ChatflowBody | ChatflowPatch, exclude_unset: bool = False) -> dict[str, Any]:
    fields = body.model_dump(exclude_unset=exclude_unset)
    if body.rate_limit is not None:  # stored as the API spells it
        fields["rate_limit"] = body.rate_limit.model_dump(by_alias=True, exclude_none=True)
    return fields


@router.post("", status_code=201)
async def create_chatflow(body: ChatflowBody, state: State) -> dict[str, Any]:
    return await state.chatflow_service.create(_fields(body))


@router.get("")
async def list_chatflows(state: State) -> list[dict[str, Any]]:
    return await state.chatflow_service.list()


@router.get("/{chatflow_id}")
async def get_chatflow(chatflow_id: str, state: State) -> dict[str, Any]:
    return await state.chatflow_service.get(chatflow_id)


@router.put("/{chatflow_id}")
async def update_chatflow(chatflow_id: str, body: ChatflowPatch, state: State) -> dict[str, Any]:
    return await state.chatflow_service.update(chatflow_id, _fields(body, exclude_unset=True))


@router.delete("/{chatflow_id}", status_code=204)
async def delete_chatflow(chatflow_id: str, state: State) -> Response:
    await state.chatflow_service.delete(chatflow_id)
    return Response(status_code=204)
