"""One agent run's tool calls that wait for a person (engine/approvals.py): which calls
need approval, their `action` events, the decisions, and what the model and `usedTools`
are told of them."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson

from tailwinds.engine.approvals import Action, Decision
from tailwinds.engine.context import RunContext
from tailwinds.engine.events import ActionEvent
from tailwinds.messages import INVALID_ARGUMENTS, ToolCall
from tailwinds.nodes.approval_rules import ApprovalRule, needs_approval
from tailwinds.nodes.tools import DEPTH, ToolNode

NESTED = Decision(
    "refused",
    message="it needs a person's approval, which a chatflow called as a tool cannot ask",
)
TOO_MANY = Decision(
    "refused",
    message="it needs a person's approval, and this server holds as many runs waiting for "
    "one as it may (TAILWINDS_MAX_WAITING_RUNS)",
)


class ApprovalGate:
    """Calls are keyed by identity: they live through their round of tool calls."""

    def __init__(self, ctx: RunContext, rules: dict[str, ApprovalRule], timeout_s: float):
        self.ctx = ctx
        self.rules = rules
        self.timeout_s = timeout_s
        self._actions: dict[int, Action] = {}
        self._decisions: dict[int, Decision] = {}
        self._cleanup_registered = False
        # the longest a call of this round waited for its decision (not the agent's time)
        self.waited_s = 0.0

    def _rule(self, call: ToolCall, tool: ToolNode) -> ApprovalRule:
        rule: ApprovalRule = getattr(tool.inputs, "require_approval", "never")
        return self.rules.get(call.name, rule)

    async def ask(
        self, calls: list[ToolCall], tools: dict[str, ToolNode]
    ) -> AsyncIterator[ActionEvent]:
        """Open an action for each call that needs one, and give its event."""
        ctx = self.ctx
        desk = ctx.resources.approvals
        for call in calls:
            tool = tools.get(call.name)
            if tool is None or INVALID_ARGUMENTS in call.arguments:
                continue  # the call fails on its own
            if not needs_approval(self._rule(call, tool), tool.type_name, call.arguments):
                continue
            if ctx.state.get(DEPTH):
                self._decisions[id(call)] = NESTED
                continue
            action = Action(
                action_id=str(uuid.uuid4()),
                chatflow_id=ctx.chatflow_id,
                run_id=ctx.turn.message_id,
                tool=call.name,
                tool_input=call.arguments,
                expires_at_s=time.time() + self.timeout_s,
            )
            if not await desk.open(action, ctx.resources.settings.max_waiting_runs):
                self._decisions[id(call)] = TOO_MANY
                continue
            if not self._cleanup_registered:
                self._cleanup_registered = True
                ctx.cleanups.append(self.close)
            self._actions[id(call)] = action
            yield action.event()

    async def decision(self, call: ToolCall) -> Decision | None:
        """The call's decision once there is one (waiting for it); None: not asked."""
        decided = self._decisions.get(id(call))
        action = self._actions.get(id(call))
        if decided is not None or action is None:
            return decided
        started = time.monotonic()
        decided = await self.ctx.resources.approvals.wait(action)
        self.waited_s = max(self.waited_s, time.monotonic() - started)
        self._decisions[id(call)] = decided
        return decided

    def refusal(self, decision: Decision) -> str:
        """What the model reads for a call that was not made."""
        match decision.outcome:
            case "reject":
                reason = f" (their reason: {decision.message})" if decision.message else ""
                return f"declined: the person reviewing tool calls rejected this call{reason}"
            case "expired":
                return f"declined: nobody approved this call within {self.timeout_s:g} s"
            case "refused":
                return f"declined: {decision.message}"
        return "declined: the run ended before the call was decided"

    def trace(self, call: ToolCall) -> dict[str, Any]:
        """What `usedTools` adds for a call that was asked: its action and decision, and
        the input it ran with when the person edited it."""
        decided = self._decisions.get(id(call))
        if decided is None:
            return {}
        found: dict[str, Any] = {"decision": decided.outcome}
        action = self._actions.get(id(call))
        if action is not None:
            found["actionId"] = action.action_id
        if decided.outcome == "approve" and decided.tool_input is not None:
            found["toolInput"] = decided.tool_input
        return found

    @staticmethod
    def edited(decision: Decision) -> str:
        """Told to the model before the output of a call run with the person's input."""
        if decision.tool_input is None:
            return ""
        shown = orjson.dumps(decision.tool_input).decode()
        return f"(the person approved this call with the arguments changed to {shown})\n"

    def end_round(self) -> float:
        """The round is over: how long it waited for people (to add to the agent's time
        budget); its calls are forgotten."""
        waited, self.waited_s = self.waited_s, 0.0
        self.close()
        self._actions.clear()
        self._decisions.clear()
        return waited

    def close(self) -> None:
        desk = self.ctx.resources.approvals
        for action in self._actions.values():
            desk.close(action)
