"""Chatflow management: create, list, fetch, update, delete. Validated on save."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response

from tailwinds.manage.chatflow_fields import ChatflowBody, ChatflowPatch, fields_of
from tailwinds.server.auth import require_admin
from tailwinds.server.state import State

router = APIRouter(
    prefix="/api/v1/chatflows", tags=["chatflows"], dependencies=[Depends(require_admin)]
)


@router.post("", status_code=201)
async def create_chatflow(body: ChatflowBody, state: State) -> dict[str, Any]:
    return await state.chatflow_service.create(fields_of(body))


@router.get("")
async def list_chatflows(state: State) -> list[dict[str, Any]]:
    return await state.chatflow_service.list()


@router.get("/{chatflow_id}")
async def get_chatflow(chatflow_id: str, state: State) -> dict[str, Any]:
    return await state.chatflow_service.get(chatflow_id)


@router.put("/{chatflow_id}")
async def update_chatflow(chatflow_id: str, body: ChatflowPatch, state: State) -> dict[str, Any]:
    return await state.chatflow_service.update(chatflow_id, fields_of(body, exclude_unset=True))


@router.delete("/{chatflow_id}", status_code=204)
async def delete_chatflow(chatflow_id: str, state: State) -> Response:
    await state.chatflow_service.delete(chatflow_id)
    return Response(status_code=204)
