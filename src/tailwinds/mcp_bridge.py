"""`tailwinds mcp`: an MCP server on stdio that relays to a running Tailwinds' `/mcp`, for
MCP clients that only start local commands (MCP spec, "Transports", stdio:
https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#stdio).

Tools are listed and called on the remote server with the bridge's key; its progress
notifications are passed on, and a call the local client cancels is cancelled there too
(the SDK sends `notifications/cancelled` when a call is abandoned). Imports nothing of
Tailwinds' server.
"""

from __future__ import annotations

from typing import Any

import httpx2
from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.stdio import stdio_server

from tailwinds import __version__

CONNECT_TIMEOUT_S = 30.0
# a call's stream is quiet while a model thinks before its first token
READ_TIMEOUT_S = 600.0


def mcp_url(url: str) -> str:
    """`http://host:3000` or `http://host:3000/mcp`: the endpoint either way."""
    url = url.rstrip("/")
    return url if url.endswith("/mcp") else url + "/mcp"


def bridge_server(remote: Client) -> Server[Any]:
    """A low-level MCP server whose tools are `remote`'s."""

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        cursor = params.cursor if params is not None else None
        return await remote.list_tools(cursor=cursor)

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        session = ctx.session

        async def relay(progress: float, total: float | None, message: str | None) -> None:
            await session.report_progress(progress, total, message)

        return await remote.call_tool(params.name, params.arguments, progress_callback=relay)

    return Server(
        "tailwinds",
        version=__version__,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def run_bridge(url: str, key: str | None) -> None:
    """Serve stdio until the local client closes it. `key`: a chatflow's API key or the
    admin token, sent as the bearer token on every request to `url`."""
    headers = {"Authorization": f"Bearer {key}"} if key else None
    timeout = httpx2.Timeout(CONNECT_TIMEOUT_S, read=READ_TIMEOUT_S)
    async with (
        httpx2.AsyncClient(headers=headers, timeout=timeout) as http,
        Client(streamable_http_client(mcp_url(url), http_client=http)) as remote,
        stdio_server() as (read_stream, write_stream),
    ):
        server = bridge_server(remote)
        await server.run(read_stream, write_stream, server.create_initialization_options())
