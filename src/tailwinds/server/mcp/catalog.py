"""Which chatflows MCP clients see as tools, and each tool's name, description and input
schema (MCP spec, "Tools": https://modelcontextprotocol.io/specification/2025-11-25/server/tools).

A chatflow is a tool when its `mcpTool.exposed` is set; a client sees the exposed chatflows
its bearer token opens, as the Prediction API would let it call them.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from mcp import types

from tailwinds.engine.compile import CompiledFlow
from tailwinds.errors import TailwindsError
from tailwinds.manage.tool_names import tool_name
from tailwinds.nodes.prompts import BUILTIN_VARIABLES, PromptTemplate, template_variables
from tailwinds.runs.chatflow_access import CHATFLOW_MAX_AGE_S
from tailwinds.runs.service import PredictionService
from tailwinds.store.chatflows import Chatflow

logger = logging.getLogger("tailwinds.mcp")

QUESTION_MAX_CHARS = 100_000  # as `PredictionRequest.question`
CHAT_ID_MAX_CHARS = 255
# the MCP spec's tool names (SEP-986), at most 64 characters as some clients require
TOOL_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(slots=True, frozen=True)
class ChatflowTool:
    """One exposed chatflow, as the MCP `Tool` clients list."""

    chatflow_id: str
    api_key_id: str | None
    tool: types.Tool

    @property
    def name(self) -> str:
        return self.tool.name


def prompt_variables(flow: CompiledFlow) -> dict[str, str | None]:
    """The `overrideConfig.vars` the flow's prompts read: name -> default (None: required)."""
    found: dict[str, str | None] = {}
    for node in flow.nodes.values():
        if not isinstance(node, PromptTemplate):
            continue
        for name in template_variables(node.inputs.template):
            if name not in BUILTIN_VARIABLES:
                default = node.inputs.variables.get(name)
                if found.get(name) is None:
                    found[name] = default
    return found


def input_schema(chatflow: Chatflow, flow: CompiledFlow) -> dict[str, Any]:
    """JSON Schema of a call's arguments: `question`, `chatId`, and `vars` when the
    chatflow allows `overrideConfig.vars` and its prompts read some."""
    properties: dict[str, Any] = {
        "question": {
            "type": "string",
            "minLength": 1,
            "maxLength": QUESTION_MAX_CHARS,
            "description": "The question or message for the chatflow.",
        },
        "chatId": {
            "type": "string",
            "minLength": 1,
            "maxLength": CHAT_ID_MAX_CHARS,
            "description": "Continue this conversation: the chatId of an earlier answer.",
        },
    }
    required = ["question"]
    variables = prompt_variables(flow) if "vars" in chatflow.allowed_overrides else {}
    if variables:
        properties["vars"] = {
            "type": "object",
            "description": "Values for the variables of the chatflow's prompts.",
            "properties": {
                name: {"type": "string"}
                if default is None
                else {"type": "string", "default": default}
                for name, default in variables.items()
            },
            "required": [name for name, default in variables.items() if default is None],
            "additionalProperties": False,
        }
        if properties["vars"]["required"]:
            required.append("vars")
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


class ToolCatalog:
    """The exposed chatflows as tools, read at most every `CHATFLOW_MAX_AGE_S` (a list or
    a call does not read every chatflow)."""

    def __init__(self, predictions: PredictionService) -> None:
        self.predictions = predictions
        self._read_at = float("-inf")
        self._tools: list[ChatflowTool] = []

    async def exposed(self) -> list[ChatflowTool]:
        if time.monotonic() - self._read_at < CHATFLOW_MAX_AGE_S:
            return self._tools
        tools: list[ChatflowTool] = []
        taken: set[str] = set()
        for chatflow in await self.predictions.chatflows.list():
            if not (chatflow.mcp_tool or {}).get("exposed"):
                continue
            try:
                flow = self.predictions.compiled(chatflow, {})
            except TailwindsError as exc:
                logger.warning("chatflow %s is not offered over MCP: %s", chatflow.id, exc)
                continue
            name = tool_name(chatflow)
            if name in taken:  # two chatflows named alike: the later one says which it is
                name = f"{name[:55]}_{chatflow.id[:8]}"
            taken.add(name)
            description = (chatflow.mcp_tool or {}).get("description") or (
                f"Ask the Tailwinds chatflow {chatflow.name!r}."
            )
            tool = types.Tool(
                name=name, description=description, input_schema=input_schema(chatflow, flow)
            )
            tools.append(ChatflowTool(chatflow.id, chatflow.api_key_id, tool))
        self._tools, self._read_at = tools, time.monotonic()
        return tools

    async def visible(self, authorization: str | None) -> list[ChatflowTool]:
        """The exposed chatflows that `authorization` opens (their API key, the admin
        token, or none needed), as the Prediction API decides; the token is checked once
        against the keys in use, and a wrong one counts as one failed key, not one per
        chatflow."""
        tools = await self.exposed()
        key_ids = {tool.api_key_id for tool in tools if tool.api_key_id is not None}
        opened = await self.predictions.access.opened_keys(authorization, key_ids)
        return [
            tool
            for tool in tools
            if tool.api_key_id is None or opened is None or tool.api_key_id in opened
        ]

    async def find(self, name: str) -> ChatflowTool | None:
        for tool in await self.exposed():
            if tool.name == name:
                return tool
        return None
