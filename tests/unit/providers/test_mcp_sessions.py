"""MCP over streamable HTTP, against recorded-shape answers (tests/fixtures/transcripts/
mcp/*.http): each `tools/call` answer, JSON or SSE, normal, every error shape the
specification and the SDK's client transport know, malformed, cut at every byte, read
by the `mcp` SDK through our guarded HTTP client and turned into the tool's result by
the `mcpTools` node. The SDK does the parsing; what is ours is checked: the shared
session (`McpSessions`), the answer cap, the refused compression, and what the node makes
of each outcome (a result, a tool error the model sees, or the SDK's error)."""

from __future__ import annotations

import asyncio
import gzip
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from tailwinds.config import Settings
from tailwinds.nodes import mcp as mcp_node
from tailwinds.nodes.tools import ToolError
from tailwinds.outbound import mcp_http
from tailwinds.providers.mcp_sessions import McpServer, McpSessions
from tests.unit.providers.http_replay import TRANSCRIPTS, http_answer
from tests.unit.providers.mcp_replay import (
    LOOPBACK,
    URL,
    McpScript,
    Reads,
    mcp_transcript,
    scripted_client,
)
from tests.unit.providers.transcript_replay import cuts

WEATHER = "Current weather in New York:\nTemperature: 72°F\nConditions: Partly cloudy 🌤"
# what each answer to `tools/call` comes to: "result: <text>", "tool error: <text>" (a
# ToolError: the model reads it), "mcp error <code>: <message part>" (the SDK's MCPError:
# the agent reports it as the tool's failure), "invalid result"
EXPECTED: dict[str, str] = {
    "call_text.http": f"result: {WEATHER}",
    "call_mixed_content.http": "result: Radar:\n[image]\n[resource_link]\n[resource]",
    "call_structured.http": 'result: {"temperature": 22.5, "conditions": "Partly cloudy"}',
    "call_tool_error.http": "tool error: Failed to fetch weather data: API rate limit exceeded",
    "call_tool_error_empty.http": "tool error: the tool failed",
    "call_unknown_tool.http": "mcp error -32602: Unknown tool: invalid_tool_name",
    "call_error_400_null_id.http": "mcp error -32600: No valid session ID provided",
    "call_error_500_html.http": "mcp error -32603: Server returned an error response",
    "call_error_404.http": "mcp error -32601: Not Found",
    "call_accepted_no_answer.http": "mcp error -32600: answered a request with 202 Accepted",
    "call_wrong_content_type.http": "mcp error -32600: Unexpected content type: text/plain",
    "call_malformed_json.http": "mcp error -32700: Failed to parse JSON response",
    "call_result_not_a_result.http": "invalid result",
    "call_sse.http": f"result: {WEATHER}",
    "call_sse_crlf.http": f"result: {WEATHER}",
    "call_sse_multiline.http": f"result: {WEATHER}",
    "call_sse_error.http": "mcp error -32603: Internal error: weather backend down",
    # the last event's blank line never came: an event cut short is dropped (HTML's SSE)
    "call_sse_unterminated.http": "mcp error -32000: SSE stream ended without a response",
    "call_sse_no_answer.http": "mcp error -32000: SSE stream ended without a response",
    "call_sse_malformed.http": "mcp error -32700: Failed to parse SSE message",
}
# answers to the session's own requests, not to a call
SESSION_FIXTURES = {"initialize.http", "tools_list.http", "method_not_found.http"}


@dataclass
class Harness:
    sessions: McpSessions
    script: McpScript
    node: mcp_node.McpTools
    ctx: Any


def harness(
    monkeypatch: pytest.MonkeyPatch, script: McpScript, max_bytes: int | None = None
) -> Harness:
    """The `mcpTools` node of a chatflow, its URL on loopback (allowed by the
    operator's TAILWINDS_OUTBOUND_NETWORKS), its session over `script`."""
    sessions = McpSessions(connect_timeout_s=10)
    monkeypatch.setattr(
        mcp_http,
        "guarded_client",
        lambda policy, _proxies=None: scripted_client(policy, script, max_bytes),
    )
    node = mcp_node.McpTools("mcp_0", mcp_node.McpTools.Inputs(url=URL), {})
    settings = Settings(outbound_networks="127.0.0.0/8")
    return Harness(
        sessions,
        script,
        node,
        SimpleNamespace(resources=SimpleNamespace(settings=settings, mcp_sessions=sessions)),
    )


async def outcome(h: Harness) -> str:
    try:
        result = await h.node.call(h.ctx, "get_weather", {"location": "New York"})
    except ToolError as exc:
        return f"tool error: {exc}"
    except MCPError as exc:
        return f"mcp error {exc.code}: {exc.message}"
    except ValidationError:
        return "invalid result"
    return f"result: {result.output}"


def matches(got: str, expected: str) -> bool:
    if expected.startswith("mcp error"):
        code, _, message = expected.partition(": ")
        return got.startswith(code + ": ") and message in got
    return got == expected


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_call_answer_cut_anywhere(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """One session, one call per cut of the answer (whole, byte by byte, in two reads at
    every position); the session outlives every outcome."""
    plans = [(how, len(reads)) for how, reads in cuts(mcp_transcript(name, 1))]

    def answer(index: int) -> Callable[[Any], Reads]:
        # the same cut of the answer to this request (its id padded: the same length)
        return lambda message_id: cuts(mcp_transcript(name, message_id))[index][1]

    h = harness(monkeypatch, McpScript(answer(i) for i in range(len(plans))))

    async def main() -> None:
        try:
            for how, _ in plans:
                got = await _bounded(outcome(h))
                assert matches(got, EXPECTED[name]), (how, got)
        finally:
            await h.sessions.close()

    asyncio.run(main())


def test_every_transcript_is_checked() -> None:
    found = {p.name for p in (TRANSCRIPTS / "mcp").glob("*.http")}
    assert found == set(EXPECTED) | SESSION_FIXTURES | {"call_cut_before_length.http"}


def test_tools_listed_once_per_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """`tools/list` is asked once per connection, whatever the tools' schemas say; the
    session is opened once and reused by every call."""
    from tailwinds.messages import ToolSpec

    h = harness(monkeypatch, McpScript([_text, _text]))

    async def main() -> list[ToolSpec]:
        try:
            specs = await h.node.tool_specs(h.ctx)
            await h.node.tool_specs(h.ctx)
            assert await outcome(h) == f"result: {WEATHER}"
            assert await outcome(h) == f"result: {WEATHER}"
            return specs
        finally:
            await h.sessions.close()

    specs = asyncio.run(main())
    assert [s.name for s in specs] == ["get_weather", "ping"]
    assert specs[0].parameters["required"] == ["location"]
    assert specs[1].description == "ping"  # no description: the name stands in
    rpc = [m for _, m in h.script.seen]
    assert rpc.count("initialize") == 1
    assert rpc.count("tools/list") == 1
    assert rpc.count("tools/call") == 2


def _too_big(sse: bool) -> Callable[[Any], Reads]:
    """An answer of 8,000 characters of text, JSON or SSE, in reads of 1,000 bytes."""
    text = b'{"type":"text","text":"' + BIG.encode() + b'"}'
    if sse:
        head = b"HTTP/1.1 200 OK\nContent-Type: text/event-stream\n\n"
        body = b'event: message\ndata: {"jsonrpc":"2.0","id":%s,"result":{"content":[%s]}}\n\n\n'
    else:
        head = b"HTTP/1.1 200 OK\nContent-Type: application/json\n\n"
        body = b'{"jsonrpc":"2.0","id":%s,"result":{"content":[%s]}}'

    def reads(message_id: Any) -> Reads:
        answer = http_answer(head + body % (str(message_id).encode(), text))
        return [answer[i : i + 1000] for i in range(0, len(answer), 1000)]

    return reads


def _gzipped(message_id: Any) -> Reads:
    body = gzip.compress(
        b'{"jsonrpc":"2.0","id":%d,"result":{"content":[{"type":"text","text":"%s"}]}}'
        % (message_id, b"\0" * 100_000)
    )
    head = b"HTTP/1.1 200 OK\nContent-Type: application/json\nContent-Encoding: gzip\n\n"
    return [http_answer(head + body)]


def _cut_short(message_id: Any) -> Reads:
    return [mcp_transcript("call_cut_before_length.http", message_id)]


def _text(message_id: Any) -> Reads:
    return [mcp_transcript("call_text.http", message_id)]


BIG = "x" * 8000
BROKEN = {
    "past the cap, JSON": _too_big(sse=False),
    "past the cap, SSE": _too_big(sse=True),
    "gzip unasked": _gzipped,
    "connection dropped before Content-Length": _cut_short,
}


@pytest.mark.parametrize("how", sorted(BROKEN))
def test_a_broken_answer_is_an_error_that_ends(how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An answer past `MAX_ANSWER_BYTES` (cut off unread), compressed unasked (refused,
    never inflated) or cut short by the server: the call ends, as an error of the SDK's
    (the agent tells the model the tool failed), with none of the body in it."""
    h = harness(monkeypatch, McpScript([BROKEN[how]]), max_bytes=4096)
    (first,) = asyncio.run(_calls(h, 1))
    assert first.startswith("mcp error -32000: "), first
    assert "xxxxxxxx" not in first


@pytest.mark.parametrize("how", sorted(BROKEN))
def test_the_call_after_a_broken_answer_gets_its_answer(
    how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness(monkeypatch, McpScript([BROKEN[how], _text]), max_bytes=4096)
    first, second = asyncio.run(_calls(h, 2))
    assert first.startswith("mcp error"), first
    assert second == f"result: {WEATHER}"


def test_the_address_check_comes_before_any_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """The node's default policy (no TAILWINDS_OUTBOUND_NETWORKS) refuses loopback: the
    scripted server is never connected to, and the agent sees a flow error naming it."""
    from tailwinds.errors import FlowError

    h = harness(monkeypatch, McpScript())
    h.ctx.resources.settings = Settings()

    async def main() -> None:
        try:
            with pytest.raises(FlowError, match="loopback"):
                await h.node.tool_specs(h.ctx)
        finally:
            await h.sessions.close()

    asyncio.run(main())
    assert h.script.connections == 0


def test_a_server_that_cannot_be_initialized_is_a_connection_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    script = McpScript(initialize="call_error_500_html.http")
    h = harness(monkeypatch, script)
    server = McpServer(url=URL, policy=LOOPBACK)

    async def main() -> None:
        try:
            with pytest.raises(ConnectionError, match="cannot reach the MCP server"):
                await h.sessions.list_tools(server)
        finally:
            await h.sessions.close()

    asyncio.run(main())


async def _calls(h: Harness, n: int) -> list[str]:
    try:
        return [await _bounded(outcome(h)) for _ in range(n)]
    finally:
        await h.sessions.close()


async def _bounded(awaitable: Any) -> Any:
    # a hang here is the failure: the SDK never resolved the call
    async with asyncio.timeout(20):
        return await awaitable


def test_a_stdio_server_that_died_is_started_again_by_the_next_call() -> None:
    """The server process exits between calls: the call that finds it gone fails (a tool
    call is not sent twice), and the next one starts the server again."""
    script = Path(__file__).parents[2] / "fixtures" / "mcp_server.py"
    server = McpServer(command=(sys.executable, str(script)))

    async def main() -> tuple[str, str]:
        sessions = McpSessions()
        try:
            first = (await sessions.call(server, "pid", {})).content[0].text
            os.kill(int(first), signal.SIGKILL)
            await asyncio.sleep(0.5)
            with pytest.raises(MCPError, match="Connection closed"):
                await sessions.call(server, "pid", {})
            second = (await sessions.call(server, "pid", {})).content[0].text
            return first, second
        finally:
            await sessions.close()

    first, second = asyncio.run(main())
    assert first != second
