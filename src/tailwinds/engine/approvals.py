"""Tool calls that wait for a person: the open actions of running runs, and the decisions
that reach them.

A run that wants an approved call opens an `Action` on the process's `ApprovalDesk`,
sends its `action` event, then waits on `wait()`: an awaited future, no timer but the
expiry, no model or tool work. `POST /api/v1/predictions/{id}/actions/{actionId}` calls
`decide()` on the desk of whichever API node took it: in one process that is the same
desk (`LocalApprovals`); in queue mode it is Redis (`transport/redis_approvals.py`), where
one `SET NX` makes the single decision and a note on the control stream wakes the worker
that holds the run.

Outcomes: `approve` (optionally with an edited tool input), `reject` (optionally with a
reason), `expired` (nobody decided before `expires_at`), `closed` (the run ended first,
or the process holds too many waiting runs: `refused`).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from tailwinds.engine.events import ActionEvent
from tailwinds.errors import ActionClosed, ActionNotFound

Outcome = Literal["approve", "reject", "expired", "closed", "refused"]

# how long a call waits for a decision unless the agent or the chatflow says otherwise
DEFAULT_APPROVAL_TIMEOUT_S = 600.0
MAX_APPROVAL_TIMEOUT_S = 7 * 24 * 3600.0

# decided or expired action ids remembered per process, so a late decision gets 409
# rather than 404 (oldest forgotten first)
MAX_REMEMBERED = 10_000


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    tool_input: dict[str, Any] | None = None
    message: str | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"decision": self.outcome}
        if self.tool_input is not None:
            data["toolInput"] = self.tool_input
        if self.message:
            data["message"] = self.message
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Decision:
        return cls(data["decision"], data.get("toolInput"), data.get("message"))


EXPIRED = Decision("expired")
CLOSED = Decision("closed")
REFUSED = Decision("refused")


@dataclass(slots=True)
class Action:
    """One tool call waiting for a decision. `expires_at_s`: Unix time, seconds."""

    action_id: str
    chatflow_id: str
    run_id: str
    tool: str
    tool_input: dict[str, Any]
    expires_at_s: float
    opened_s: float = field(default_factory=time.monotonic)

    @property
    def timeout_s(self) -> float:
        return max(0.0, self.expires_at_s - time.time())

    def event(self) -> ActionEvent:
        when = datetime.fromtimestamp(self.expires_at_s, UTC)
        return ActionEvent(
            self.action_id,
            self.tool,
            self.tool_input,
            when.isoformat(timespec="seconds").replace("+00:00", "Z"),
        )


class ApprovalDesk(Protocol):
    async def open(self, action: Action, max_waiting_runs: int) -> bool:
        """Register the action before its event goes out; False when this process already
        holds `max_waiting_runs` runs waiting (the call is then refused, not waited on)."""
        ...

    async def wait(self, action: Action) -> Decision:
        """The decision, or `EXPIRED` at its expiry. Cancelled (the run aborted): the
        action is closed, and a decision after it gets `ActionClosed`."""
        ...

    def close(self, action: Action) -> None:
        """The run is over: the action, if still open, takes no decision any more."""
        ...

    async def decide(self, chatflow_id: str, action_id: str, decision: Decision) -> str:
        """Deliver a person's decision; the id of the action's run (its message id).
        `ActionNotFound` (404) for no such open action of
        this chatflow, `ActionClosed` (409) when it was decided, expired or ended."""
        ...


class LocalApprovals:
    """The desk of one process (local mode): futures by action id."""

    def __init__(self) -> None:
        self._open: dict[str, tuple[Action, asyncio.Future[Decision]]] = {}
        self._runs: dict[str, int] = {}  # open actions by run id: the waiting runs
        self._closed: OrderedDict[str, str] = OrderedDict()  # chatflow id by action id

    @property
    def waiting_runs(self) -> int:
        return len(self._runs)

    async def open(self, action: Action, max_waiting_runs: int) -> bool:
        if action.run_id not in self._runs and len(self._runs) >= max_waiting_runs:
            return False
        future = asyncio.get_running_loop().create_future()
        self._open[action.action_id] = (action, future)
        self._runs[action.run_id] = self._runs.get(action.run_id, 0) + 1
        return True

    async def wait(self, action: Action) -> Decision:
        entry = self._open.get(action.action_id)
        if entry is None:
            return CLOSED
        future = entry[1]
        try:
            async with asyncio.timeout(action.timeout_s):
                # shielded: the timeout must not cancel a decision arriving with it
                return await asyncio.shield(future)
        except TimeoutError:
            if not future.done():
                future.set_result(EXPIRED)
            return future.result()
        finally:
            self.close(action)

    def close(self, action: Action) -> None:
        entry = self._open.pop(action.action_id, None)
        if entry is None:
            return
        if not entry[1].done():
            entry[1].set_result(CLOSED)
        left = self._runs.get(action.run_id, 1) - 1
        if left > 0:
            self._runs[action.run_id] = left
        else:
            self._runs.pop(action.run_id, None)
        self._closed[action.action_id] = action.chatflow_id
        while len(self._closed) > MAX_REMEMBERED:
            self._closed.popitem(last=False)

    async def decide(self, chatflow_id: str, action_id: str, decision: Decision) -> str:
        entry = self._open.get(action_id)
        if entry is None and self._closed.get(action_id) == chatflow_id:
            raise ActionClosed(f"action {action_id!r} was decided already, or it ended")
        if entry is None or entry[0].chatflow_id != chatflow_id:
            raise ActionNotFound(f"no action {action_id!r} waits in this chatflow")
        if entry[1].done():
            raise ActionClosed(f"action {action_id!r} was decided already, or it ended")
        entry[1].set_result(decision)
        return entry[0].run_id
