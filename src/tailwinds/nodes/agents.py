"""The tool-calling agent: model → tool calls → tools run (in parallel) → results back to
the model → … → the answer, streamed. Each tool's use goes out as `usedTools` the moment
it finishes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import ClassVar

import orjson
from pydantic import Field

from tailwinds import tracing
from tailwinds.engine.approvals import DEFAULT_APPROVAL_TIMEOUT_S, MAX_APPROVAL_TIMEOUT_S
from tailwinds.engine.context import RunContext
from tailwinds.engine.events import Event, SourceDocumentsEvent, ThinkingEvent, UsedToolsEvent
from tailwinds.engine.registry import NodeInputs, Port, register_node
from tailwinds.errors import FlowError, InvalidRequest
from tailwinds.messages import INVALID_ARGUMENTS, ChatMessage, ToolCall, ToolSpec, Usage
from tailwinds.nodes.approval_gate import ApprovalGate
from tailwinds.nodes.approval_rules import ApprovalRule
from tailwinds.nodes.chains import ChainNode
from tailwinds.nodes.models import build_messages
from tailwinds.nodes.tools import ToolError, ToolNode, ToolResult

MAX_TOOL_OUTPUT_CHARS = 20_000


class AgentLimit(FlowError):
    code = "agent_limit"


@register_node
class ToolAgent(ChainNode):
    type_name: ClassVar[str] = "toolAgent"
    label: ClassVar[str] = "Tool agent"
    ports: ClassVar[dict[str, Port]] = {
        "model": Port("chatModel", required=True),
        "tools": Port("tool", required=True, many=True),
        "memory": Port("memory"),
    }

    class Inputs(NodeInputs):
        system_message: str = "You are a helpful assistant. Use the tools when they help."
        max_iterations: int = Field(10, ge=1, le=50)
        tool_timeout_s: float = Field(30, gt=0, le=600)
        time_budget_s: float = Field(120, gt=0, le=3600)
        # per tool name, over the tool node's own `requireApproval` (approval_rules.py)
        approvals: dict[str, ApprovalRule] = Field(default_factory=dict, max_length=500)
        # how long a call waits for a person's decision before it is declined as timed
        # out; None: the chatflow's `approvalTimeoutSeconds`, else 600 s
        approval_timeout_s: float | None = Field(None, gt=0, le=MAX_APPROVAL_TIMEOUT_S)

    inputs: Inputs

    async def _tools(self, ctx: RunContext) -> tuple[dict[str, ToolNode], list[ToolSpec]]:
        """Every tool by name, with its spec (an MCP node lists its server's tools)."""
        tools: dict[str, ToolNode] = {}
        specs: list[ToolSpec] = []
        for node in self.links["tools"]:
            for spec in await node.tool_specs(ctx):
                if spec.name in tools:
                    raise FlowError(f"two tools are named {spec.name!r}: rename one")
                tools[spec.name] = node
                specs.append(spec)
        return tools, specs

    def validate(self) -> None:
        if not self.model.supports_tools:
            raise InvalidRequest(
                f"{self.model.type_name} cannot call tools; use chatOpenAI, chatAnthropic, "
                "chatAzureOpenAI, chatGoogleGemini or chatOllama",
                field=f"nodes[{self.node_id}].inputs.model",
            )
        names = [tool.spec().name for tool in self.links["tools"] if not tool.dynamic]
        if len(set(names)) != len(names):
            raise InvalidRequest(
                f"two tools share a name: {sorted(names)}",
                field=f"nodes[{self.node_id}].inputs.tools",
            )

    async def answer(self, ctx: RunContext) -> AsyncIterator[str | Usage | Event]:
        deadline = time.monotonic() + self.inputs.time_budget_s
        tools, specs = await self._tools(ctx)
        history = self.memory.window(ctx.turn.history) if self.memory else []
        messages = build_messages(self.inputs.system_message, history, ctx.turn.question)
        usage: Usage | None = None
        done: dict[str, str] = {}  # the output of each distinct call already made
        timeout_s = self.inputs.approval_timeout_s or ctx.approval_timeout_s
        gate = ApprovalGate(ctx, self.inputs.approvals, timeout_s or DEFAULT_APPROVAL_TIMEOUT_S)
        for _ in range(self.inputs.max_iterations):
            if time.monotonic() > deadline:
                raise AgentLimit(f"the agent used its {self.inputs.time_budget_s:g} s budget")
            calls: list[ToolCall] = []
            text: list[str] = []
            async for piece in self.model.stream_chat(ctx, messages, specs):
                if type(piece) is str:
                    text.append(piece)
                    yield piece
                elif type(piece) is ToolCall:
                    calls.append(piece)
                elif type(piece) is Usage:
                    usage = piece if usage is None else usage.add(piece)
                elif type(piece) is ThinkingEvent:
                    yield piece  # shown, never added to the messages sent back
            if not calls:
                if usage is not None:
                    yield usage
                return
            messages.append(ChatMessage("assistant", "".join(text), tuple(calls)))
            fresh = [call for call in calls if _key(call) not in done]  # others are not run
            async for action in gate.ask(fresh, tools):
                yield action  # then its call waits for a person (in _run_one)
            run = self._run_tools(ctx, calls, tools, done, deadline, gate)
            async for event, call, output, ms in run:
                messages.append(ChatMessage("tool", output, tool_call_id=call.id))
                if event is not None:
                    yield event
                trace = {"tool": call.name, "toolInput": call.arguments, "toolOutput": output}
                yield UsedToolsEvent([{**trace, "durationMs": ms, **gate.trace(call)}])
            deadline += gate.end_round()  # time spent waiting for people is not the agent's
        raise AgentLimit(
            f"the agent made {self.inputs.max_iterations} rounds of tool calls without answering"
        )

    async def _run_tools(
        self,
        ctx: RunContext,
        calls: list[ToolCall],
        tools: dict[str, ToolNode],
        done: dict[str, str],
        deadline: float,
        gate: ApprovalGate,
    ) -> AsyncIterator[tuple[Event | None, ToolCall, str, int]]:
        """Run the calls at once; yield each as it finishes, with how long it took (ms). A
        tool's failure or timeout is its output, for the model to read; a call made before
        is not made again."""
        pending: dict[asyncio.Task[ToolResult], ToolCall] = {}
        started = time.perf_counter()
        for call in calls:
            key = _key(call)
            if key in done:
                yield (
                    None,
                    call,
                    f"error: this exact call was made already; its result: {done[key]}",
                    0,
                )
                continue
            task = asyncio.ensure_future(self._run_one(ctx, call, tools, deadline, gate))
            pending[task] = call
        try:
            while pending:
                finished, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                ms = round((time.perf_counter() - started) * 1000)
                for task in finished:
                    call = pending.pop(task)
                    result = task.result()
                    output = result.output[:MAX_TOOL_OUTPUT_CHARS]
                    done[_key(call)] = output
                    event = SourceDocumentsEvent(result.documents) if result.documents else None
                    yield event, call, output, ms
        finally:
            for task in pending:  # the run was cancelled: so are its tools
                task.cancel()

    async def _run_one(
        self,
        ctx: RunContext,
        call: ToolCall,
        tools: dict[str, ToolNode],
        deadline: float,
        gate: ApprovalGate,
    ) -> ToolResult:
        result = self._attempt(ctx, call, tools, deadline, gate)
        return await tracing.traced_tool(ctx, call, tools.get(call.name), result)

    async def _attempt(
        self,
        ctx: RunContext,
        call: ToolCall,
        tools: dict[str, ToolNode],
        deadline: float,
        gate: ApprovalGate,
    ) -> ToolResult:
        tool = tools.get(call.name)
        if tool is None:
            return ToolResult(f"error: there is no tool {call.name!r}; tools: {', '.join(tools)}")
        if INVALID_ARGUMENTS in call.arguments:
            return ToolResult("error: the arguments were not a JSON object")
        arguments, told = call.arguments, ""
        started = time.monotonic()
        decision = await gate.decision(call)
        if decision is not None:
            if decision.outcome != "approve":
                return ToolResult(gate.refusal(decision))
            deadline += time.monotonic() - started  # the wait was the person's time
            arguments = decision.tool_input if decision.tool_input is not None else arguments
            told = gate.edited(decision)
        timeout_s = min(self.inputs.tool_timeout_s, max(0.0, deadline - time.monotonic()))
        try:
            async with asyncio.timeout(timeout_s):
                result = await tool.call(ctx, call.name, arguments)
                result.output = told + result.output
                return result
        except TimeoutError:
            return ToolResult(f"error: the tool did not answer within {timeout_s:.3g} s")
        except ToolError as exc:
            return ToolResult(f"error: {exc}")
        except Exception as exc:  # a tool's bug is a result the model sees, not a crash
            return ToolResult(f"error: the tool failed ({type(exc).__name__}: {exc})")


def _key(call: ToolCall) -> str:
    return call.name + orjson.dumps(call.arguments, option=orjson.OPT_SORT_KEYS).decode()
