"""An exposed chatflow's MCP tool name (SEP-986: letters, digits, `_`, `-`, `.`, at most
64 characters): checked unique when a chatflow is saved, listed by /mcp."""

from __future__ import annotations

import re
from typing import Any

from tailwinds.store.chatflows import Chatflow

_NOT_A_NAME_CHAR = re.compile(r"[^A-Za-z0-9_.-]+")


def tool_name(chatflow: Chatflow) -> str:
    """The configured name, else the chatflow's name made a valid tool name (SEP-986:
    letters, digits, `_`, `-`, `.`), else one made of its id."""
    return derived_tool_name(chatflow.name, chatflow.mcp_tool) or f"chatflow_{chatflow.id[:8]}"


def derived_tool_name(name: str, mcp_tool: dict[str, Any] | None) -> str:
    """`tool_name` before the chatflow has an id: "" when its name has nothing usable."""
    configured = (mcp_tool or {}).get("name")
    if configured:
        return str(configured)
    return _NOT_A_NAME_CHAR.sub("_", name).strip("_")[:64]
