"""`mcpTools`: the tools of an MCP server (a stdio command or a streamable HTTP URL),
through the official `mcp` SDK, listed on first use and called per request over a
session shared by the process."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from tailwinds.config import Settings
from tailwinds.engine.context import RunContext
from tailwinds.engine.registry import register_node
from tailwinds.errors import FlowError, InvalidRequest
from tailwinds.messages import ToolSpec
from tailwinds.nodes.approval_rules import ToolInputs
from tailwinds.nodes.tools import ToolError, ToolNode, ToolResult
from tailwinds.outbound import Refused, parse_target
from tailwinds.outbound.policies import tool_policy
from tailwinds.providers.mcp_sessions import McpServer


@register_node
class McpTools(ToolNode):
    type_name: ClassVar[str] = "mcpTools"
    label: ClassVar[str] = "MCP server tools"
    tool_name: ClassVar[str] = "mcp"
    description: ClassVar[str] = ""
    parameters: ClassVar[dict[str, Any]] = {}
    dynamic: ClassVar[bool] = True

    class Inputs(ToolInputs):
        command: list[str] | None = Field(
            None, min_length=1, description="A stdio server's command line, as a list"
        )
        url: str | None = Field(None, pattern=r"^https?://", description="Streamable HTTP")
        env: dict[str, str] = Field(default_factory=dict, json_schema_extra={"secret": True})
        include: list[str] | None = Field(
            None, description="Only these of the server's tools (default: all)"
        )

    inputs: Inputs

    def validate(self) -> None:
        field = f"nodes[{self.node_id}].inputs"
        if (self.inputs.command is None) == (self.inputs.url is None):
            raise InvalidRequest("give either `command` (stdio) or `url`", field=field)
        for name in self.inputs.env:
            if _steers_programs(name):
                raise InvalidRequest(
                    f"{name!r} changes which code a program loads or runs (a server listed "
                    "in TAILWINDS_MCP_COMMANDS could be made to start another): not allowed",
                    field=f"{field}.env.{name}",
                )
        if self.inputs.url is not None:
            try:
                parse_target(self.inputs.url)
            except Refused as exc:
                raise InvalidRequest(str(exc), field=f"{field}.url") from exc

    def check_settings(self, settings: Settings) -> None:
        """A stdio server is a program this server starts: only those the operator
        listed in TAILWINDS_MCP_COMMANDS."""
        if self.inputs.command is None:
            return
        allowed = {c.strip() for c in settings.mcp_commands.split(",") if c.strip()}
        if self.inputs.command[0] not in allowed:
            raise InvalidRequest(
                f"{self.inputs.command[0]!r} is not in TAILWINDS_MCP_COMMANDS "
                f"({', '.join(sorted(allowed)) or 'empty: no stdio server may be started'})",
                field=f"nodes[{self.node_id}].inputs.command",
            )

    def server(self, settings: Settings) -> McpServer:
        """A URL is reached like the HTTP tool's: public addresses, and the private
        networks in TAILWINDS_OUTBOUND_NETWORKS."""
        return McpServer(
            command=tuple(self.inputs.command or ()),
            url=self.inputs.url,
            env=tuple(sorted(self.inputs.env.items())),
            policy=tool_policy(settings),
            proxies=settings.proxies(),
        )

    async def tool_specs(self, ctx: RunContext) -> list[ToolSpec]:
        self.check_settings(ctx.resources.settings)
        server = self.server(ctx.resources.settings)
        try:
            tools = await ctx.resources.mcp_sessions.list_tools(server)
        except (ConnectionError, TimeoutError, OSError) as exc:
            what = str(exc) or f"the MCP server {server.describe()} did not answer in time"
            raise FlowError(what) from exc
        include = self.inputs.include
        return [
            ToolSpec(
                tool.name,
                tool.description or tool.name,
                tool.input_schema or {"type": "object", "properties": {}},
            )
            for tool in tools
            if include is None or tool.name in include
        ]

    async def call(self, ctx: RunContext, name: str, arguments: dict[str, Any]) -> ToolResult:
        try:
            result = await ctx.resources.mcp_sessions.call(
                self.server(ctx.resources.settings), name, arguments
            )
        except (ConnectionError, OSError) as exc:
            raise ToolError(f"the MCP server is not reachable: {exc}") from exc
        text = "\n".join(
            getattr(part, "text", None) or f"[{getattr(part, 'type', 'content')}]"
            for part in result.content
        )
        if result.is_error:
            raise ToolError(text or "the tool failed")
        return ToolResult(text)


# environment variables that make an interpreter, the dynamic loader or a shell run code of
# their choosing: with one, TAILWINDS_MCP_COMMANDS would no longer say what may start
_STEERING_PREFIXES = ("LD_", "DYLD_", "PYTHON", "NODE_", "NPM_CONFIG_", "PERL", "RUBY", "GCONV")
_STEERING_NAMES = frozenset(
    {
        "PATH",
        "BASH_ENV",
        "ENV",
        "BROWSER",
        "SHELLOPTS",
        "PS4",
        "PROMPT_COMMAND",
        "IFS",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "JDK_JAVA_OPTIONS",
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "EDITOR",
        "VISUAL",
        "PAGER",
    }
)


def _steers_programs(name: str) -> bool:
    upper = name.upper()
    return upper in _STEERING_NAMES or upper.startswith(_STEERING_PREFIXES)
