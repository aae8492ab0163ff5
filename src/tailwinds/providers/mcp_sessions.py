"""Sessions with MCP servers, kept open and shared by every run of this process.

The `mcp` SDK's client must be entered and left in one task, so each connection lives in
a task of its own that holds it open until the process closes it (or the server goes
away, and the next call connects again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from tailwinds.outbound.addresses import PUBLIC, AddressPolicy
from tailwinds.outbound.proxies import DIRECT, ProxyRules

logger = logging.getLogger("tailwinds.mcp")

# turns of the event loop a dead session's holder task takes to end after its transport
# failed (4 to 14 with mcp 2.3's anyio task groups, one more per pooled HTTP connection,
# at most 10), with room to spare; a live session costs these turns on an error only
SETTLE_TURNS = 20
# the message of the SDK's dispatcher once it has shut down (mcp/shared/jsonrpc_dispatcher
# .py); an answer cut short on a live session says something else
CLOSED = "Connection closed"


@dataclass(frozen=True, slots=True)
class McpServer:
    """A stdio command (argv) or a streamable HTTP URL, and the addresses that URL may
    lead to."""

    command: tuple[str, ...] = ()
    url: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    policy: AddressPolicy = PUBLIC
    proxies: ProxyRules = DIRECT  # which proxy the URL goes through

    def describe(self) -> str:
        return self.url or " ".join(self.command[:2])


class _Held:
    def __init__(self) -> None:
        self.ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.tools: list[Any] | None = None


class McpSessions:
    def __init__(self, connect_timeout_s: float = 20.0) -> None:
        self.connect_timeout_s = connect_timeout_s
        self._held: dict[McpServer, _Held] = {}
        self._lock = asyncio.Lock()

    async def client(self, server: McpServer) -> Any:
        held = self._held.get(server)
        if held is None or (held.task is not None and held.task.done()):
            async with self._lock:
                held = self._held.get(server)
                if held is None or (held.task is not None and held.task.done()):
                    held = _Held()
                    held.task = asyncio.get_running_loop().create_task(self._hold(server, held))
                    self._held[server] = held
        return await asyncio.wait_for(asyncio.shield(held.ready), self.connect_timeout_s)

    async def list_tools(self, server: McpServer) -> list[Any]:
        """The server's tools, asked once per connection."""
        client = await self.client(server)
        held = self._held[server]
        if held.tools is None:
            held.tools = list((await client.list_tools()).tools)
        return held.tools

    async def call(self, server: McpServer, name: str, arguments: dict[str, Any]) -> Any:
        """The SDK's `CallToolResult`; raises what the SDK raises (`MCPError`, `OSError`).
        A call that finds the connection dead leaves it to be made again by the next."""
        from mcp import MCPError
        from mcp_types import CONNECTION_CLOSED

        client = await self.client(server)
        try:
            return await client.call_tool(name, arguments)
        except (OSError, EOFError, ConnectionError, BrokenPipeError):
            self.drop(server)
            raise
        except MCPError as exc:
            if exc.error.code == CONNECTION_CLOSED:
                await self._settle(server)
                if exc.error.message == CLOSED:
                    # the SDK's dispatcher has shut down (a stdio server that exited, an
                    # HTTP POST lost): every call would fail the same, though the holder
                    # task, waiting on nothing that failed, goes on
                    self.drop(server)
            raise

    async def _settle(self, server: McpServer) -> None:
        """After `CONNECTION_CLOSED`: an answer cut short can leave the session alive (a
        streamable HTTP POST that failed alone) or dead (its transport's task group
        failed, and cancels the holder's). A dead one's holder ends within a few turns of
        the loop, with no I/O, so that the next call connects again instead of failing on
        it; a live one is kept, its server-side state with it."""
        held = self._held.get(server)
        for _ in range(SETTLE_TURNS):
            if held is None or held.task is None or held.task.done():
                return
            await asyncio.sleep(0)

    def drop(self, server: McpServer) -> None:
        """Forget a connection that failed: the next call makes a new one."""
        held = self._held.pop(server, None)
        if held is not None:
            held.stop.set()

    async def _hold(self, server: McpServer, held: _Held) -> None:
        from mcp import Client, StdioServerParameters

        target: Any
        try:
            async with contextlib.AsyncExitStack() as stack:
                if server.url:
                    from mcp.client.streamable_http import streamable_http_client

                    from tailwinds.outbound.mcp_http import guarded_client

                    http = await stack.enter_async_context(
                        guarded_client(server.policy, server.proxies)
                    )
                    target = streamable_http_client(server.url, http_client=http)
                else:
                    target = StdioServerParameters(
                        command=server.command[0],
                        args=list(server.command[1:]),
                        env=dict(server.env),
                    )
                client = await stack.enter_async_context(Client(target))
                held.ready.set_result(client)
                await held.stop.wait()
        except BaseException as exc:
            if not held.ready.done():
                held.ready.set_exception(
                    ConnectionError(
                        f"cannot reach the MCP server {server.describe()}: {_innermost(exc)}"
                    )
                )
            else:
                logger.warning("MCP server %s went away: %s", server.describe(), exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            if self._held.get(server) is held:
                del self._held[server]

    async def close(self) -> None:
        held = list(self._held.values())
        for one in held:
            one.stop.set()
        await asyncio.gather(*(h.task for h in held if h.task), return_exceptions=True)


def _innermost(exc: BaseException) -> BaseException:
    """The first real error inside the SDK's task groups (their own message says only
    how many there were)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc
