"""`/mcp`: the MCP server over streamable HTTP (MCP spec, "Transports":
https://modelcontextprotocol.io/specification/2025-11-25/basic/transports), on the `mcp`
SDK's low-level `Server` and session manager. Tools only: `tools/list`, `tools/call`.

The client's bearer token is read from each HTTP request, so a session opened with one
key cannot call with another's rights.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp import types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from starlette.types import Receive, Scope, Send

from tailwinds import __version__
from tailwinds.config import Settings
from tailwinds.errors import ServerShutdown
from tailwinds.runs.service import PredictionService
from tailwinds.server.errors import error_response
from tailwinds.server.mcp.calls import call_chatflow
from tailwinds.server.mcp.catalog import ToolCatalog

INSTRUCTIONS = (
    "Each tool is a Tailwinds chatflow: ask it a question, and pass the chatId of an "
    "earlier answer to continue that conversation."
)


def _authorization(ctx: ServerRequestContext[Any, Any]) -> str | None:
    request = ctx.request
    headers = getattr(request, "headers", None)
    return headers.get("authorization") if headers is not None else None


class McpEndpoint:
    """The ASGI app mounted at `/mcp`; `serving(predictions)` runs it inside the app's
    lifespan."""

    def __init__(self, settings: Settings) -> None:
        self.catalog: ToolCatalog | None = None
        self.server: Server[Any] = Server(
            "tailwinds",
            version=__version__,
            instructions=INSTRUCTIONS,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )
        self.manager = StreamableHTTPSessionManager(
            app=self.server,
            security_settings=_security(settings),
            max_request_body_size=settings.max_body_bytes,
        )

    @asynccontextmanager
    async def serving(self, predictions: PredictionService) -> AsyncIterator[None]:
        self.catalog = ToolCatalog(predictions)
        try:
            async with self.manager.run():
                yield
        finally:
            self.catalog = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.catalog is None:
            await error_response(ServerShutdown())(scope, receive, send)
            return
        await self.manager.handle_request(scope, receive, send)

    def _catalog(self) -> ToolCatalog:
        if self.catalog is None:
            raise MCPError(types.INTERNAL_ERROR, "Tailwinds is shutting down")
        return self.catalog

    async def _list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        tools = await self._catalog().visible(_authorization(ctx))
        return types.ListToolsResult(tools=[tool.tool for tool in tools])

    async def _call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        catalog = self._catalog()
        tool = await catalog.find(params.name)
        if tool is None:
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name}")
        session = ctx.session

        async def progress(tokens: float, text: str) -> None:
            await session.report_progress(tokens, None, text)

        return await call_chatflow(
            catalog.predictions, tool, params.arguments or {}, _authorization(ctx), progress
        )


def _security(settings: Settings) -> TransportSecuritySettings:
    """The SDK's own Host and Origin checks are off: the app's (`hosts.py`, TAILWINDS_ALLOWED_HOSTS;
    `cross_site.py`) run before every route, /mcp included, with the same answers as the
    rest of the API."""
    return TransportSecuritySettings(enable_dns_rebinding_protection=False)
