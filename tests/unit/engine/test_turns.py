"""The chat leases of local mode: refuse, wait, interrupt; never free another turn's lease;
a run dropped before it began gives its chat back."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator

import pytest

from tailwinds.engine.runs import RunRegistry
from tailwinds.engine.turns import LocalTurns, guard_unstarted
from tailwinds.errors import ChatBusy, RunCancelled


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_reject_refuses_a_held_chat_and_not_another() -> None:
    async def scenario() -> None:
        turns = LocalTurns(RunRegistry())
        first = await turns.acquire("cf", "chat", "m1", "reject", 30)
        with pytest.raises(ChatBusy) as refused:
            await turns.acquire("cf", "chat", "m2", "reject", 30)
        assert refused.value.status == 409 and refused.value.code == "chat_busy"
        await turns.acquire("cf", "other chat", "m3", "reject", 30)
        await turns.acquire("other cf", "chat", "m4", "reject", 30)
        await first.release()
        assert (await turns.acquire("cf", "chat", "m5", "reject", 30)).message_id == "m5"

    run(scenario())


def test_queue_waits_for_the_release_and_is_bounded() -> None:
    async def scenario() -> None:
        turns = LocalTurns(RunRegistry())
        first = await turns.acquire("cf", "chat", "m1", "queue", 30)
        waiting = asyncio.ensure_future(turns.acquire("cf", "chat", "m2", "queue", 30))
        await asyncio.sleep(0)
        assert not waiting.done()
        await first.release()
        assert (await waiting).message_id == "m2"
        assert turns.holder("cf", "chat") == "m2"
        with pytest.raises(ChatBusy, match=r"waited 0\.01 s"):
            await turns.acquire("cf", "chat", "m3", "queue", 0.01)

    run(scenario())


def test_interrupt_aborts_the_holder_even_before_it_has_started() -> None:
    async def scenario() -> None:
        runs = RunRegistry()
        turns = LocalTurns(runs)
        first = await turns.acquire("cf", "chat", "m1", "interrupt", 30)
        waiting = asyncio.ensure_future(turns.acquire("cf", "chat", "m2", "interrupt", 30))
        await asyncio.sleep(0)
        # m1 had not started: it starts aborted, with the reason
        with runs.track("cf", "chat", "m1") as handle:
            assert isinstance(handle.error, RunCancelled)
            assert "newer turn" in handle.error.message
        await first.release()
        assert (await waiting).message_id == "m2"
        # a run that never started leaves no interrupt behind
        with runs.track("cf", "chat", "m1") as handle:
            assert handle.error is None

    run(scenario())


def test_a_late_release_does_not_free_a_newer_turn() -> None:
    async def scenario() -> None:
        turns = LocalTurns(RunRegistry())
        first = await turns.acquire("cf", "chat", "m1", "reject", 30)
        await first.release()
        await turns.acquire("cf", "chat", "m2", "reject", 30)
        await first.release()  # again, late
        assert turns.holder("cf", "chat") == "m2"

    run(scenario())


async def _events() -> AsyncIterator[int]:
    yield 1


def test_a_run_dropped_before_it_began_frees_its_chat() -> None:
    async def scenario() -> None:
        turns = LocalTurns(RunRegistry())
        lease = await turns.acquire("cf", "chat", "m1", "reject", 30)
        events = _events()
        guard_unstarted(events, lease)
        del events
        gc.collect()
        assert turns.holder("cf", "chat") is None
        # one that has reached its end frees the chat once stored, not when dropped
        lease = await turns.acquire("cf", "chat", "m2", "reject", 30)
        events = _events()
        guard_unstarted(events, lease)
        lease.started = True
        del events
        gc.collect()
        assert turns.holder("cf", "chat") == "m2"

    run(scenario())
