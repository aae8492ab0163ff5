"""Readiness and the node catalogue."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from tailwinds.engine.registry import describe_nodes

router = APIRouter(prefix="/api/v1", tags=["system"])


@router.get("/ping", response_class=PlainTextResponse)
async def ping() -> str:
    """`pong` once the server is ready (migrations applied, model clients up)."""
    return "pong"


@router.get("/nodes")
async def list_nodes() -> list[dict[str, Any]]:
    """Every node type with its input schema: what a chatflow's `flowData` may use."""
    return describe_nodes()
