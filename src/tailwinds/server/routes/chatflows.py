"""Chatflow management: create, list, fetch, update, delete. Validated on save."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from tailwinds.engine.compile import RUN_OVERRIDES, compile_flow
from tailwinds.errors import ChatflowNotFound, InvalidRequest
from tailwinds.server.auth import require_admin
from tailwinds.server.state import AppState, State

router = APIRouter(
    prefix="/api/v1/chatflows", tags=["chatflows"], dependencies=[Depends(require_admin)]
)


class ChatflowBody(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    flow_data: dict[str, Any] = Field(alias="flowData")
    api_key_id: str | None = Field(None, alias="apiKeyId")
    allowed_overrides: list[str] = Field(default_factory=list, alias="allowedOverrides")


class ChatflowPatch(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    flow_data: dict[str, Any] | None = Field(None, alias="flowData")
    api_key_id: str | None = Field(None, alias="apiKeyId")
    allowed_overrides: list[str] | None = Field(None, alias="allowedOverrides")


async def _validate(state: AppState, fields: dict[str, Any], current: dict[str, Any]) -> None:
    """The graph compiles, the API key exists, the overrides name real inputs."""
    merged = {**current, **fields}
    flow = compile_flow(merged["flow_data"])
    if merged.get("api_key_id") and merged["api_key_id"] not in {
        key.id for key in await state.api_keys.list()
    }:
        raise InvalidRequest("no API key with this id", field="apiKeyId")
    for node in flow.nodes.values():
        credential_id = getattr(node.inputs, "credential", None)
        if credential_id and not await state.credentials.exists(credential_id):
            raise InvalidRequest(
                "no credential with this id", field=f"nodes[{node.node_id}].inputs.credential"
            )
    known = flow.overridable_inputs() | RUN_OVERRIDES
    for name in merged.get("allowed_overrides") or []:
        if name not in known:
            raise InvalidRequest(
                f"{name!r} is not an input of any node in this chatflow "
                f"(known: {', '.join(sorted(known))})",
                field="allowedOverrides",
            )


@router.post("", status_code=201)
async def create_chatflow(body: ChatflowBody, state: State) -> dict[str, Any]:
    fields = body.model_dump()
    await _validate(state, fields, {})
    chatflow = await state.chatflows.create(**fields)
    return chatflow.as_json()


@router.get("")
async def list_chatflows(state: State) -> list[dict[str, Any]]:
    return [chatflow.as_json() for chatflow in await state.chatflows.list()]


@router.get("/{chatflow_id}")
async def get_chatflow(chatflow_id: str, state: State) -> dict[str, Any]:
    chatflow = await state.chatflows.get(chatflow_id)
    if chatflow is None:
        raise ChatflowNotFound(chatflow_id)
    return chatflow.as_json()


@router.put("/{chatflow_id}")
async def update_chatflow(chatflow_id: str, body: ChatflowPatch, state: State) -> dict[str, Any]:
    current = await state.chatflows.get(chatflow_id)
    if current is None:
        raise ChatflowNotFound(chatflow_id)
    changes = body.model_dump(exclude_unset=True)
    await _validate(
        state,
        changes,
        {
            "flow_data": current.flow_data,
            "api_key_id": current.api_key_id,
            "allowed_overrides": current.allowed_overrides,
        },
    )
    updated = await state.chatflows.update(chatflow_id, changes)
    if updated is None:
        raise ChatflowNotFound(chatflow_id)
    return updated.as_json()


@router.delete("/{chatflow_id}", status_code=204)
async def delete_chatflow(chatflow_id: str, state: State) -> Response:
    if not await state.chatflows.delete(chatflow_id):
        raise ChatflowNotFound(chatflow_id)
    return Response(status_code=204)
