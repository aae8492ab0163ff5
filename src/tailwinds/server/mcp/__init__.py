"""Chatflows as tools for MCP clients: `/mcp` over streamable HTTP."""

from tailwinds.server.mcp.endpoint import McpEndpoint

__all__ = ["McpEndpoint"]
