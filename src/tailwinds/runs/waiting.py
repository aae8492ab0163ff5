"""The JSON answer (`streaming: false`) of a chatflow whose tool calls may wait for a
person (issue 24): it returns at the first `action` with `status: "waiting"`, and the
decision route (server/routes/actions.py) answers with the rest.

Such a run is resumable (local: transport/local.py's log; queue: its Redis stream), so it
outlives the response that announced its action: the decision route reads the run's frames
again, skips those up to the decided action's, and collects what follows, up to the end
(`status: "complete"`) or the next action (`waiting` again). Chatflows without approval
rules keep the direct, cheaper path (`collect_answer`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from tailwinds.engine.approvals import DEFAULT_APPROVAL_TIMEOUT_S
from tailwinds.engine.compile import CompiledFlow
from tailwinds.engine.events import ActionEvent, Event, StartEvent, decode_event
from tailwinds.runs.answers import AnswerParts
from tailwinds.sse import SSEDecoder
from tailwinds.store.chatflows import Chatflow

# how long a waiting JSON run goes on with nobody reading after its action's expiry, to
# finish on its own (declined as timed out) and store its turn
AFTER_EXPIRY_S = 300.0


def approval_grace_s(flow: CompiledFlow, chatflow: Chatflow) -> float | None:
    """How long a JSON run of `flow` may go on with nobody reading (its longest approval
    timeout, plus `AFTER_EXPIRY_S`); None when no tool of it ever asks for approval."""
    asks = False
    timeout_s = chatflow.approval_timeout_s or DEFAULT_APPROVAL_TIMEOUT_S
    for node in flow.nodes.values():
        inputs = node.inputs
        if getattr(inputs, "require_approval", "never") != "never":
            asks = True
        rules = getattr(inputs, "approvals", None)
        if isinstance(rules, dict) and any(rule != "never" for rule in rules.values()):
            asks = True
        own = getattr(inputs, "approval_timeout_s", None)
        if isinstance(own, int | float):
            timeout_s = max(timeout_s, float(own))
    return timeout_s + AFTER_EXPIRY_S if asks else None


async def decoded(frames: AsyncIterator[bytes]) -> AsyncIterator[Event]:
    """Events back from numbered frames; the frames are closed with it (a reader that
    stops at an action leaves the run, which then counts its grace)."""
    decoder = SSEDecoder()
    try:
        async for chunk in frames:
            for message in decoder.feed(chunk):
                yield decode_event(message.event, message.data)
    finally:
        close = getattr(frames, "aclose", None)
        if close is not None:
            await close()


def action_json(event: ActionEvent) -> dict[str, Any]:
    return {
        "actionId": event.action_id,
        "tool": event.tool,
        "toolInput": event.tool_input,
        "expiresAt": event.expires_at,
    }


async def collect_until_action(
    events: AsyncIterator[Event], after_action: str | None = None
) -> dict[str, Any]:
    """The answer up to the run's end, `{"status": "complete", "text", …}` as
    `collect_answer` gives it, or up to the next `action`: `{"status": "waiting",
    "action": {actionId, tool, toolInput, expiresAt}, "text": <so far>, "chatId",
    "messageId", "usedTools"?…}`. With `after_action`, what came up to that action's
    event (itself included) is skipped: the rest after its decision. Raises the run's
    `error` as its `TailwindsError`."""
    parts = AnswerParts()
    ids: dict[str, str] = {}
    skipping = after_action is not None
    try:
        async for event in events:
            if type(event) is StartEvent:
                ids = {"chatId": event.chat_id, "messageId": event.message_id}
            elif type(event) is ActionEvent:
                if skipping:
                    skipping = event.action_id != after_action
                    continue
                answer = parts.result()
                return {"status": "waiting", "action": action_json(event), **ids, **answer}
            elif not skipping:
                parts.add(event)
    finally:
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()
    return {"status": "complete", **ids, **parts.result()}
