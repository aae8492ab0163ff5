"""A person's decision on a tool call that waits mid-stream (engine/approvals.py): parse,
authorize like the prediction, hand it to the process's approval desk."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from tailwinds.engine.approvals import Decision
from tailwinds.errors import ActionNotFound, InvalidRequest
from tailwinds.messages import MAX_INPUT_DEPTH, nested_deeper_than
from tailwinds.runs.waiting import collect_until_action
from tailwinds.server.state import State

router = APIRouter(prefix="/api/v1", tags=["predictions"])

MAX_TOOL_INPUT_BYTES = 100_000
MAX_MESSAGE_CHARS = 2_000
MAX_ACTION_ID_CHARS = 100


class ActionDecision(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    decision: Literal["approve", "reject"]
    tool_input: dict[str, Any] | None = Field(None, alias="toolInput")
    message: str | None = Field(None, max_length=MAX_MESSAGE_CHARS)


@router.post(
    "/predictions/{chatflow_id}/actions/{action_id}",
    responses={
        404: {"description": "No such action waits in this chatflow (`action_not_found`)"},
        409: {"description": "Decided already, expired, or its run ended (`action_closed`)"},
    },
)
async def decide(
    chatflow_id: str, action_id: str, body: ActionDecision, request: Request, state: State
) -> dict[str, Any]:
    """Approve (with `toolInput`, the call runs with that input instead) or reject (the
    model is told, with `message` as the reason) a tool call announced by an `action`
    event; the run's own stream goes on. Needs the same key as the prediction. For a
    JSON answer that returned `status: "waiting"` at this action, the answer is the rest
    of it: `status` `"complete"`, or `"waiting"` at the next action."""
    await state.predictions.authorized_chatflow(chatflow_id, request.headers.get("authorization"))
    if len(action_id) > MAX_ACTION_ID_CHARS:
        raise ActionNotFound(f"no action {action_id[:40]!r}… waits in this chatflow")
    if body.tool_input is not None:
        # before its size: past 254 levels the encoder fails (a 500), and past a few less
        # the `usedTools` event and the stored turn that wrap it would
        if nested_deeper_than(body.tool_input, MAX_INPUT_DEPTH):
            raise InvalidRequest(
                f"expected a value nested at most {MAX_INPUT_DEPTH} levels deep",
                field="toolInput",
            )
        size = len(orjson.dumps(body.tool_input))
        if size > MAX_TOOL_INPUT_BYTES:
            raise InvalidRequest(
                f"expected at most {MAX_TOOL_INPUT_BYTES} bytes of JSON, got {size}",
                field="toolInput",
            )
    tool_input = body.tool_input if body.decision == "approve" else None
    decision = Decision(body.decision, tool_input, body.message)
    service = state.predictions
    run_id = await service.resources.approvals.decide(chatflow_id, action_id, decision)
    decided = {"actionId": action_id, "decision": body.decision}
    # a JSON answer that stopped at this action (runs/waiting.py): the rest of it
    rest = await service.answer_rest(chatflow_id, run_id)
    if rest is None:
        return decided
    return {**decided, **await collect_until_action(rest, after_action=action_id)}
