"""The local approval desk: one decision per action, 404/409 apart, expiry, close on
cancel, the cap on waiting runs; and which calls need approval."""

from __future__ import annotations

import asyncio
import time

import pytest

from tailwinds.engine.approvals import Action, Decision, LocalApprovals
from tailwinds.errors import ActionClosed, ActionNotFound
from tailwinds.nodes.approval_rules import needs_approval


def action(action_id: str = "a1", run_id: str = "r1", timeout_s: float = 60) -> Action:
    return Action(action_id, "cf", run_id, "calculator", {"x": 1}, time.time() + timeout_s)


def test_a_decision_reaches_the_waiting_call_once() -> None:
    asyncio.run(_a_decision_reaches_the_waiting_call_once())


async def _a_decision_reaches_the_waiting_call_once() -> None:
    desk = LocalApprovals()
    waiting = action()
    assert await desk.open(waiting, max_waiting_runs=10)
    task = asyncio.create_task(desk.wait(waiting))
    await desk.decide("cf", "a1", Decision("approve", {"x": 2}))
    assert await task == Decision("approve", {"x": 2})
    with pytest.raises(ActionClosed):
        await desk.decide("cf", "a1", Decision("reject"))
    with pytest.raises(ActionNotFound):
        await desk.decide("other-chatflow", "a1", Decision("reject"))
    with pytest.raises(ActionNotFound):
        await desk.decide("cf", "nope", Decision("reject"))
    assert desk.waiting_runs == 0


def test_expiry_and_cancel_close_the_action() -> None:
    asyncio.run(_expiry_and_cancel_close_the_action())


async def _expiry_and_cancel_close_the_action() -> None:
    desk = LocalApprovals()
    expiring = action("a1", timeout_s=0)
    await desk.open(expiring, 10)
    assert (await desk.wait(expiring)).outcome == "expired"
    cancelled = action("a2")
    await desk.open(cancelled, 10)
    task = asyncio.create_task(desk.wait(cancelled))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(ActionClosed):
        await desk.decide("cf", "a2", Decision("approve"))


def test_the_cap_counts_runs_not_calls() -> None:
    asyncio.run(_the_cap_counts_runs_not_calls())


async def _the_cap_counts_runs_not_calls() -> None:
    desk = LocalApprovals()
    assert await desk.open(action("a1", "r1"), 1)
    assert await desk.open(action("a2", "r1"), 1)  # the same run: still one waiting run
    assert not await desk.open(action("a3", "r2"), 1)
    assert desk.waiting_runs == 1


def test_rules() -> None:
    assert not needs_approval("never", "customTool", {})
    assert needs_approval("always", "calculator", {})
    assert not needs_approval("writes", "calculator", {})
    assert not needs_approval("writes", "httpRequest", {"method": "get"})
    assert needs_approval("writes", "httpRequest", {"method": "POST"})
    assert needs_approval("writes", "mcpTools", {})
