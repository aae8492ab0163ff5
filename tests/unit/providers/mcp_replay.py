"""Replay an MCP server's recorded streamable-HTTP answers (JSON and SSE bodies) to the
`mcp` SDK's client, in-process: the SDK talks through our guarded HTTP client
(`tailwinds.outbound.mcp_http`: address check, size cap, identity encoding) whose
network backend, below the address check, is a scripted stream answering each request
from a script, in the reads a test chooses. No socket and no server: each answer is cut
exactly where the test says.

Source of the shapes: the MCP specification, Basic / Transports (Streamable HTTP) and
Server / Tools, revision 2025-06-18."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import httpcore2
import orjson

from tailwinds.outbound.addresses import AddressPolicy, parse_networks
from tailwinds.outbound.mcp_http import GuardedBackend, guarded_client
from tests.unit.providers.http_replay import TRANSCRIPTS, http_answer

LOOPBACK = AddressPolicy(networks=parse_networks("127.0.0.0/8"))
URL = "http://127.0.0.1:8/mcp"
ACCEPTED = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"
NOT_ALLOWED = b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n"

Reads = list[bytes]
# (HTTP method, the JSON-RPC message or None) -> the answer's reads
Answer = Callable[[str, dict[str, Any] | None], Reads]


def mcp_transcript(name: str, message_id: Any) -> bytes:
    """A fixture under transcripts/mcp/ as HTTP bytes, `__ID__` replaced by the id of the
    request it answers (JSON-encoded, padded with spaces to 8 bytes: every answer to a
    fixture has one length, so a cut at byte n is the same cut for every request)."""
    text = (TRANSCRIPTS / "mcp" / name).read_bytes()
    return http_answer(text.replace(b"__ID__", orjson.dumps(message_id).rjust(8)))


class McpScript:
    """What the scripted server answers, as a server of revision 2025-06-18 does:
    `initialize` and `tools/list` from fixtures, other methods with Method not found,
    notifications with 202, the GET stream with 405 (none offered), and each
    `tools/call` with the next of `calls` (reads, or a function of the request id)."""

    def __init__(
        self,
        calls: Iterable[Reads | Callable[[Any], Reads]] = (),
        initialize: str = "initialize.http",
        tools: str = "tools_list.http",
    ) -> None:
        self.calls = list(calls)
        self.initialize = initialize
        self.tools = tools
        self.seen: list[tuple[str, str | None]] = []  # (HTTP method, JSON-RPC method)
        self.connections = 0

    def answer(self, method: str, message: dict[str, Any] | None) -> Reads:
        rpc = message.get("method") if message else None
        self.seen.append((method, rpc))
        if method != "POST":
            return [NOT_ALLOWED]
        assert message is not None
        if "id" not in message:
            return [ACCEPTED]
        if rpc == "initialize":
            return [mcp_transcript(self.initialize, message["id"])]
        if rpc == "tools/list":
            return [mcp_transcript(self.tools, message["id"])]
        if rpc != "tools/call":  # `server/discover`, the newer revision's probe
            return [mcp_transcript("method_not_found.http", message["id"])]
        answer = self.calls.pop(0)
        return answer(message["id"]) if callable(answer) else answer


class ScriptedStream(httpcore2.AsyncNetworkStream):
    """One connection's bytes: requests written are parsed (head and Content-Length
    body), each answered with its script's reads, handed out one a `read`; past the last
    read of an answer the connection ends (b""), as a server that closed it."""

    def __init__(self, script: McpScript) -> None:
        self.script = script
        self.inbox = b""
        self.reads: Reads = []
        self.closed = False

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        self.inbox += buffer
        head, sep, rest = self.inbox.partition(b"\r\n\r\n")
        if not sep:
            return
        lines = head.decode("latin-1").split("\r\n")
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])
        }
        length = int(headers.get("content-length", "0"))
        if len(rest) < length:
            return
        self.inbox = rest[length:]
        method = lines[0].split(" ", 1)[0]
        message = orjson.loads(rest[:length]) if length else None
        self.reads = list(self.script.answer(method, message))

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        if self.closed or not self.reads:
            self.closed = True
            return b""
        data = self.reads[0]
        if len(data) > max_bytes:
            self.reads[0] = data[max_bytes:]
            return data[:max_bytes]
        self.reads.pop(0)
        return data

    async def aclose(self) -> None:
        self.closed = True

    def get_extra_info(self, info: str) -> Any:
        # a connection whose answer ended with it reads as closed: not reused
        return self.closed if info == "is_readable" else None


class ScriptedBackend(httpcore2.AsyncNetworkBackend):
    def __init__(self, script: McpScript) -> None:
        self.script = script

    async def connect_tcp(self, host: str, port: int, *args: Any, **kw: Any) -> ScriptedStream:
        self.script.connections += 1
        return ScriptedStream(self.script)

    async def sleep(self, seconds: float) -> None:
        pass


def scripted_client(policy: AddressPolicy, script: McpScript, max_bytes: int | None = None) -> Any:
    """`guarded_client(policy)` as the SDK gets it, its connections made to `script`
    once the address check let them through; `max_bytes`: another answer cap."""
    client = guarded_client(policy)
    if max_bytes is not None:
        client._transport.max_bytes = max_bytes
    backend = client._transport._pool._network_backend
    assert isinstance(backend, GuardedBackend), backend
    backend._inner = ScriptedBackend(script)  # type: ignore[assignment]
    return client
