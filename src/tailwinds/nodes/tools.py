"""Tools an agent may call. Each is a node of category `tool` with a JSON-schema'd input."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field

from tailwinds import offload, tracing
from tailwinds.engine.context import DEPTH, RunContext, ToolError
from tailwinds.engine.registry import Node, register_node
from tailwinds.errors import InvalidRequest
from tailwinds.messages import ToolSpec
from tailwinds.nodes.approval_rules import ToolInputs
from tailwinds.nodes.arithmetic import calculate, show
from tailwinds.outbound import AllowList, Fetched, Refused, Unreachable, fetch, parse_target
from tailwinds.outbound.policies import tool_policy
from tailwinds.outbound.urls import allow_list_problems
from tailwinds.redaction import redact

# a tool's name as the model APIs accept it (OpenAI's rule; Anthropic's is the same)
TOOL_NAME = r"^[a-zA-Z0-9_-]{1,64}$"


def text_argument(arguments: dict[str, Any], name: str, hint: str) -> str:
    """The call's argument `name`, a string with something in it, or a ToolError saying
    what was expected."""
    value = arguments.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ToolError(f"expected {{'{name}': '{hint}'}}")
    return value


@dataclass(slots=True)
class ToolResult:
    output: str
    documents: list[dict[str, Any]] = field(default_factory=list)


class ToolNode(Node):
    category: ClassVar[str] = "tool"
    tool_name: ClassVar[str]
    description: ClassVar[str]
    parameters: ClassVar[dict[str, Any]]

    # a node whose tools are known only once it asks a server (MCP): names checked at run
    dynamic: ClassVar[bool] = False

    def spec(self) -> ToolSpec:
        return ToolSpec(self.tool_name, self.description, self.parameters)

    async def tool_specs(self, ctx: RunContext) -> list[ToolSpec]:
        """The tools this node gives an agent: one, for most nodes."""
        return [self.spec()]

    async def call(self, ctx: RunContext, name: str, arguments: dict[str, Any]) -> ToolResult:
        return await self.run(ctx, arguments)

    async def run(self, ctx: RunContext, arguments: dict[str, Any]) -> ToolResult:
        raise NotImplementedError


class NamedTool(ToolNode):
    """A tool whose name and description for the model are inputs of its node (so one
    chatflow can hold several of the kind)."""

    def spec(self) -> ToolSpec:
        inputs: Any = self.inputs
        return ToolSpec(inputs.name, inputs.description, self.parameters)


def _evaluate(expression: str) -> str:
    return show(calculate(expression))


@register_node
class Calculator(ToolNode):
    type_name: ClassVar[str] = "calculator"
    label: ClassVar[str] = "Calculator"
    tool_name: ClassVar[str] = "calculator"
    description: ClassVar[str] = (
        "Evaluates an arithmetic expression exactly: numbers, + - * / // % and ** (or ^)."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"expression": {"type": "string", "description": "e.g. (2 + 3) * 4 / 7"}},
        "required": ["expression"],
    }

    class Inputs(ToolInputs):
        pass

    async def run(self, ctx: RunContext, arguments: dict[str, Any]) -> ToolResult:
        expression = arguments.get("expression")
        if not isinstance(expression, str):
            raise ToolError("expected {'expression': '<arithmetic>'}")
        # bounded (nodes/arithmetic.py), and still up to some 70 ms of big-integer work
        # for a crafted expression: on a thread, where the loop gets its turn every 5 ms
        return ToolResult(await offload.lanes().computing.run(_evaluate, expression))


@register_node
class CurrentDateTime(ToolNode):
    type_name: ClassVar[str] = "currentDateTime"
    label: ClassVar[str] = "Current date and time"
    tool_name: ClassVar[str] = "current_date_time"
    description: ClassVar[str] = "The current date, time and weekday in a time zone."
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"timezone": {"type": "string", "description": "IANA name, e.g. Asia/Tokyo"}},
    }

    class Inputs(ToolInputs):
        default_timezone: str = "UTC"

    inputs: Inputs

    async def run(self, ctx: RunContext, arguments: dict[str, Any]) -> ToolResult:
        name = arguments.get("timezone") or self.inputs.default_timezone
        try:
            zone = ZoneInfo(str(name))
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ToolError(f"unknown time zone {name!r}") from exc
        now = datetime.now(zone)
        return ToolResult(f"{now.isoformat(timespec='seconds')} ({now:%A}, {name})")


@register_node
class RetrieverTool(NamedTool):
    """A document store as a tool: the agent decides when to search it."""

    type_name: ClassVar[str] = "retrieverTool"
    label: ClassVar[str] = "Document store search"
    tool_name: ClassVar[str] = "search_documents"
    description: ClassVar[str] = "Searches the documents for passages about a query."
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"query": {"type": "string"}},
        "required": ["query"],
    }

    class Inputs(ToolInputs):
        document_store_id: str = Field(min_length=1)
        top_k: int = Field(4, ge=1, le=50)
        name: str = Field("search_documents", pattern=TOOL_NAME)
        description: str = "Searches the documents for passages about a query."

    inputs: Inputs

    async def run(self, ctx: RunContext, arguments: dict[str, Any]) -> ToolResult:
        query = text_argument(arguments, "query", "<what to look for>")
        i = self.inputs
        found = ctx.resources.documents.search(i.document_store_id, query, i.top_k, "hybrid", None)
        documents = await tracing.traced_retrieval(
            ctx, i.document_store_id, "hybrid", i.top_k, query, found
        )
        text = "\n\n".join(
            f"[{n}] ({d['metadata'].get('source', '')}) {d['pageContent']}"
            for n, d in enumerate(documents, 1)
        )
        return ToolResult(text or "nothing found", documents)


# chatflows calling chatflows calling…: stop before it is a loop
MAX_CHATFLOW_DEPTH = 3


@register_node
class ChatflowTool(NamedTool):
    """Another chatflow as a tool, run in this process with a chat of its own (so it keeps
    its own memory of the conversation), its sources passed on."""

    type_name: ClassVar[str] = "chatflowTool"
    label: ClassVar[str] = "Chatflow as a tool"
    tool_name: ClassVar[str] = "ask_chatflow"
    description: ClassVar[str] = "Asks another assistant a question."
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"question": {"type": "string"}},
        "required": ["question"],
    }

    class Inputs(ToolInputs):
        chatflow_id: str = Field(min_length=1)
        name: str = Field("ask_chatflow", pattern=TOOL_NAME)
        description: str = "Asks another assistant a question."

    inputs: Inputs

    async def run(self, ctx: RunContext, arguments: dict[str, Any]) -> ToolResult:
        question = text_argument(arguments, "question", "<what to ask>")
        depth = ctx.state.get(DEPTH, 0) + 1
        if depth > MAX_CHATFLOW_DEPTH:
            raise ToolError(f"chatflows call each other more than {MAX_CHATFLOW_DEPTH} deep")
        chatflows = ctx.chatflows
        if chatflows is None:
            raise ToolError("chatflows cannot be called from here")
        turn = ctx.turn
        answer = await chatflows.ask(
            self.inputs.chatflow_id,
            question,
            f"{turn.chat_id}:{self.node_id}",
            f"{turn.session_id}:{self.node_id}",
            depth,
        )
        return ToolResult(answer.text or "(no answer)", answer.documents)


async def _fetch(
    ctx: RunContext,
    url: str,
    allow_list: AllowList | None,
    method: str,
    body: Any,
    headers: dict[str, str],
    max_bytes: int,
    timeout_s: float,
) -> tuple[Fetched, str]:
    """The guarded request of the HTTP tools, and its text with our header values and
    known key shapes taken out (a server may echo the credentials it was sent)."""
    try:
        fetched = await fetch(
            url,
            policy=tool_policy(ctx.resources.settings),
            proxies=ctx.resources.settings.proxies(),
            allow_list=allow_list,
            method=method,
            body=body,
            headers=headers,
            max_bytes=max_bytes,
            timeout_s=timeout_s,
        )
    except (Refused, Unreachable) as exc:
        raise ToolError(redact(str(exc))) from exc
    text = fetched.text
    for secret in headers.values():
        text = text.replace(secret, "***")
    return fetched, redact(text)


def _only_get() -> list[Literal["GET", "POST"]]:
    return ["GET"]


@register_node
class HttpRequest(ToolNode):
    """GET or POST to allow-listed URLs only; never to a private, loopback, link-local or
    metadata address (checked after DNS, and at every redirect)."""

    type_name: ClassVar[str] = "httpRequest"
    label: ClassVar[str] = "HTTP request"
    tool_name: ClassVar[str] = "http_request"
    description: ClassVar[str] = "Fetches a URL (GET) or sends JSON to it (POST)."
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "url": {"type": "string"},
            "method": {"type": "string", "enum": ["GET", "POST"]},
            "body": {"description": "JSON to send with POST"},
        },
        "required": ["url"],
    }

    class Inputs(ToolInputs):
        allow_list: list[str] = Field(
            min_length=1,
            max_length=100,
            description="URLs the tool may reach: scheme://host[:port][/path], *.host for "
            "subdomains, or scheme:// alone for any host (README, Tools)",
        )
        methods: list[Literal["GET", "POST"]] = Field(default_factory=_only_get)
        headers: dict[str, str] = Field(default_factory=dict, json_schema_extra={"secret": True})
        max_bytes: int = Field(100_000, ge=1, le=10_000_000)
        timeout_s: float = Field(10, gt=0, le=120)

    inputs: Inputs

    def validate(self) -> None:
        for n, problem in allow_list_problems(self.inputs.allow_list):
            raise InvalidRequest(problem, field=f"nodes[{self.node_id}].inputs.allowList[{n}]")

    async def run(self, ctx: RunContext, arguments: dict[str, Any]) -> ToolResult:
        url = arguments.get("url")
        method = str(arguments.get("method") or "GET").upper()
        if not isinstance(url, str):
            raise ToolError("expected {'url': '<http(s) URL>'}")
        if method not in self.inputs.methods:
            raise ToolError(f"{method} is not allowed here (allowed: {self.inputs.methods})")
        i = self.inputs
        body = arguments.get("body") if method == "POST" else None
        allowed = AllowList(i.allow_list)
        fetched, text = await _fetch(
            ctx, url, allowed, method, body, i.headers, i.max_bytes, i.timeout_s
        )
        more = " (cut at max_bytes)" if fetched.truncated else ""
        return ToolResult(f"HTTP {fetched.status} from {fetched.url}{more}\n{text}")


@register_node
class CustomTool(ToolNode):
    """A tool defined by its JSON schema and a webhook: the model's arguments are POSTed
    there as JSON, and the answer is the tool's output. Same address rules as httpRequest."""

    type_name: ClassVar[str] = "customTool"
    label: ClassVar[str] = "Custom tool (webhook)"
    tool_name: ClassVar[str] = "custom_tool"
    description: ClassVar[str] = ""
    parameters: ClassVar[dict[str, Any]] = {}

    class Inputs(ToolInputs):
        name: str = Field(pattern=TOOL_NAME)
        description: str = Field(min_length=1)
        schema_: dict[str, Any] = Field(
            default_factory=lambda: {"type": "object", "properties": {}},
            alias="schema",
            description="JSON schema of the arguments",
        )
        url: str = Field(pattern=r"^https?://")
        headers: dict[str, str] = Field(default_factory=dict, json_schema_extra={"secret": True})
        timeout_s: float = Field(10, gt=0, le=120)
        max_bytes: int = Field(100_000, ge=1, le=10_000_000)

    inputs: Inputs

    def spec(self) -> ToolSpec:
        return ToolSpec(self.inputs.name, self.inputs.description, self.inputs.schema_)

    def validate(self) -> None:
        try:
            parse_target(self.inputs.url)
        except Refused as exc:
            raise InvalidRequest(str(exc), field=f"nodes[{self.node_id}].inputs.url") from exc

    async def run(self, ctx: RunContext, arguments: dict[str, Any]) -> ToolResult:
        i = self.inputs
        # the webhook's own URL; its redirects go where it says, each one checked for
        # its address like the first
        fetched, text = await _fetch(
            ctx, i.url, None, "POST", arguments, i.headers, i.max_bytes, i.timeout_s
        )
        if fetched.status >= 400:
            raise ToolError(f"the webhook answered HTTP {fetched.status}: {text[:500]}")
        return ToolResult(text)
