"""Chatflow management: validated on save, secrets sealed in storage and masked in
answers."""

from __future__ import annotations

from typing import Any

from tailwinds.config import Settings
from tailwinds.engine.compile import compile_flow, parse_flow_data
from tailwinds.errors import ChatflowNotFound, InvalidRequest
from tailwinds.manage.chatflow_fields import ChatflowBody
from tailwinds.manage.tool_names import derived_tool_name, tool_name
from tailwinds.runs.flow_secrets import mask, reveal, seal, unmask
from tailwinds.store.apikeys import ApiKeyRepository
from tailwinds.store.chatflows import CONCURRENT_TURNS, Chatflow, ChatflowRepository
from tailwinds.store.credentials import CredentialRepository
from tailwinds.store.documents import DocumentRepository
from tailwinds.store.secrets import SecretBox
from tailwinds.store.storable import json_problem


def _check_storable(fields: dict[str, Any]) -> None:
    """Each setting comes back as it was given, or is refused naming it (an integer past
    64 bits, an infinite number, a lone surrogate: orjson and the drivers cannot keep
    them). Raises InvalidRequest."""
    for name, value in fields.items():
        problem = json_problem(value)
        if problem is not None:
            known = ChatflowBody.model_fields.get(name)
            raise InvalidRequest(problem, field=(known and known.alias) or name)


def public(chatflow: Chatflow) -> dict[str, Any]:
    return {**chatflow.as_json(), "flowData": mask(chatflow.flow_data)}


class ChatflowService:
    def __init__(
        self,
        chatflows: ChatflowRepository,
        api_keys: ApiKeyRepository,
        credentials: CredentialRepository,
        documents: DocumentRepository,
        box: SecretBox,
        settings: Settings,
    ) -> None:
        self.settings = settings
        self.documents = documents
        self.chatflows = chatflows
        self.api_keys = api_keys
        self.credentials = credentials
        self.box = box

    async def create(self, fields: dict[str, Any]) -> dict[str, Any]:
        _check_storable(fields)
        parse_flow_data(fields["flow_data"])  # its shape, before the secrets are looked for
        # an exported flow carries masks where its secrets were: they hold nothing
        fields = {**fields, "flow_data": unmask(fields["flow_data"], None)}
        await self._validate(fields)
        await self._check_tool_name(fields, None)
        fields = {**fields, "flow_data": seal(fields["flow_data"], self.box)}
        return public(await self.chatflows.create(**fields))

    async def list(self) -> list[dict[str, Any]]:
        return [public(chatflow) for chatflow in await self.chatflows.list()]

    async def get(self, chatflow_id: str) -> dict[str, Any]:
        return public(await self._existing(chatflow_id))

    async def update(self, chatflow_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        current = await self._existing(chatflow_id)
        _check_storable(changes)
        if "flow_data" in changes:
            parse_flow_data(changes["flow_data"])
            changes["flow_data"] = unmask(changes["flow_data"], current.flow_data)
        merged = {
            "name": current.name,
            "flow_data": current.flow_data,
            "api_key_id": current.api_key_id,
            "allowed_overrides": current.allowed_overrides,
            "mcp_tool": current.mcp_tool,
            **changes,
        }
        await self._validate(merged)
        await self._check_tool_name(merged, chatflow_id)
        if "flow_data" in changes:
            changes["flow_data"] = seal(changes["flow_data"], self.box)
        updated = await self.chatflows.update(chatflow_id, changes)
        if updated is None:
            raise ChatflowNotFound(chatflow_id)
        return public(updated)

    async def delete(self, chatflow_id: str) -> None:
        if not await self.chatflows.delete(chatflow_id):
            raise ChatflowNotFound(chatflow_id)

    async def _existing(self, chatflow_id: str) -> Chatflow:
        chatflow = await self.chatflows.get(chatflow_id)
        if chatflow is None:
            raise ChatflowNotFound(chatflow_id)
        return chatflow

    async def _check_tool_name(self, fields: dict[str, Any], chatflow_id: str | None) -> None:
        """Two exposed chatflows may not share an MCP tool name."""
        tool = fields.get("mcp_tool")
        name = derived_tool_name(fields["name"], tool) if (tool or {}).get("exposed") else ""
        if not name:
            return
        for other in await self.chatflows.list():
            exposed = (other.mcp_tool or {}).get("exposed")
            if other.id != chatflow_id and exposed and tool_name(other) == name:
                raise InvalidRequest(
                    f"{name!r} is the MCP tool name of the chatflow {other.name!r} already",
                    field="mcpTool.name",
                )

    async def _validate(self, fields: dict[str, Any]) -> None:
        """The graph compiles, the API key and credentials exist, the overrides name real
        inputs, the settings hold known values (for callers other than the API's models)."""
        concurrent_turns = fields.get("concurrent_turns")
        if concurrent_turns is not None and concurrent_turns not in CONCURRENT_TURNS:
            expected = ", ".join(CONCURRENT_TURNS)
            raise InvalidRequest(
                f"expected one of {expected}, got {str(concurrent_turns)[:40]!r}",
                field="concurrentTurns",
            )
        flow = compile_flow(reveal(fields["flow_data"], self.box))
        api_key_id = fields.get("api_key_id")
        if api_key_id and api_key_id not in {key.id for key in await self.api_keys.list()}:
            raise InvalidRequest("no API key with this id", field="apiKeyId")
        for node in flow.nodes.values():
            node.check_settings(self.settings)
            credential_id = getattr(node.inputs, "credential", None)
            if credential_id and not await self.credentials.exists(credential_id):
                raise InvalidRequest(
                    "no credential with this id", field=f"nodes[{node.node_id}].inputs.credential"
                )
            called = getattr(node.inputs, "chatflow_id", None)
            if called and await self.chatflows.get(called) is None:
                raise InvalidRequest(
                    "no chatflow with this id", field=f"nodes[{node.node_id}].inputs.chatflowId"
                )
            store_id = getattr(node.inputs, "document_store_id", None)
            if store_id and not await self.documents.exists(store_id):
                raise InvalidRequest(
                    "no document store with this id",
                    field=f"nodes[{node.node_id}].inputs.documentStoreId",
                )
        flow.check_allowed_overrides(fields.get("allowed_overrides") or [])
