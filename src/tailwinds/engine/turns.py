"""One turn at a time per chat: the lease a prediction holds on its chat while it runs.

A chat is a chatflow and a session id (what its history is keyed by). A prediction takes
the chat's lease before its stream starts and gives it back once its turn is stored, so
the next turn reads a history that holds it. What a prediction does when the chat is held
is the chatflow's `concurrentTurns`: `reject` (409 `chat_busy`), `queue` (wait for the
lease, up to a bound) or `interrupt` (abort the holder, then wait as `queue` does).

This module holds the interface and the in-process implementation (local mode); queue
mode keeps the same leases in Redis (`transport/redis_turns.py`) so that API nodes and
workers all see them.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Protocol

from tailwinds import metrics
from tailwinds.engine.context import RunContext
from tailwinds.engine.runner import Recorder, RunResult
from tailwinds.engine.runs import RunRegistry
from tailwinds.errors import ChatBusy, RunCancelled

# what `interrupt` stops the running turn with (stored `aborted`)
INTERRUPTED = "interrupted by a newer turn of this chat"


class TurnLease(Protocol):
    """A chat held by one turn (its `message_id`)."""

    message_id: str
    # set once the run is sure to store its turn (and to free the chat when it has)
    started: bool

    async def release(self) -> None:
        """Free the chat now (idempotent; never raises: a lease that cannot be given back
        expires)."""

    def release_soon(self) -> None:
        """`release`, from code that cannot wait for it."""

    def detach(self) -> None:
        """Stop keeping the lease alive from here, without freeing the chat (queue mode: the
        worker running the turn frees it)."""


class ChatTurns(Protocol):
    async def acquire(
        self, chatflow_id: str, session_id: str, message_id: str, policy: str, wait_s: float
    ) -> TurnLease:
        """The chat's lease for turn `message_id`; raises `ChatBusy` (409) when `policy`
        is `reject` and the chat is held, or when waiting for it took longer than
        `wait_s` seconds."""

    async def adopt(self, chatflow_id: str, session_id: str, message_id: str) -> TurnLease | None:
        """Hold the lease taken for turn `message_id` elsewhere (queue mode: by the API
        node); None when another turn has it meanwhile."""


def chat_busy(session_id: str, policy: str, wait_s: float) -> ChatBusy:
    metrics.CHAT_BUSY.inc()
    waited = f" (waited {wait_s:g} s)" if policy != "reject" else ""
    return ChatBusy(
        f"chat {session_id[:80]!r} is answering another turn{waited}; ask again once it "
        f"has ended (this chatflow's concurrentTurns is {policy!r})"
    )


def freeing_chat(lease: TurnLease, ctx: RunContext, record: Recorder) -> Recorder:
    """`record`, then free the chat: the next turn reads a history that holds this one, and
    the chat is free before `end` goes out (the runner stores before it), so a client that
    asks again at once is not refused."""

    async def recorded(result: RunResult) -> None:
        try:
            await record(result)
        finally:
            await lease.release()

    def ended() -> None:  # the runner reached its end: `recorded` is sure to run
        lease.started = True

    ctx.cleanups.append(ended)
    return recorded


def guard_unstarted(run: object, lease: TurnLease) -> None:
    """Free the chat if `run` (an async generator) is dropped before it began: a response
    that never started never iterates it, so its recorder, which frees the chat once the
    turn is stored, never runs."""
    weakref.finalize(run, _dropped, lease)


def _dropped(lease: TurnLease) -> None:
    if not lease.started:
        lease.release_soon()


class LocalLease:
    __slots__ = ("_freed", "_turns", "key", "message_id", "started")

    def __init__(self, turns: LocalTurns, key: tuple[str, str], message_id: str) -> None:
        self._turns = turns
        self.key = key
        self.message_id = message_id
        self.started = False
        self._freed: asyncio.Future[None] | None = None

    async def release(self) -> None:
        self.release_soon()

    def release_soon(self) -> None:
        self._turns.free(self)

    def detach(self) -> None:
        self.release_soon()  # nobody else would free it in this process

    async def wait_freed(self, timeout_s: float) -> bool:
        if self._freed is None:
            self._freed = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(asyncio.shield(self._freed), timeout_s)
        except TimeoutError:
            return False
        return True


class LocalTurns:
    """The leases of this process's chats (local mode)."""

    def __init__(self, runs: RunRegistry) -> None:
        self.runs = runs
        self._held: dict[tuple[str, str], LocalLease] = {}

    def holder(self, chatflow_id: str, session_id: str) -> str | None:
        lease = self._held.get((chatflow_id, session_id))
        return lease.message_id if lease is not None else None

    async def acquire(
        self, chatflow_id: str, session_id: str, message_id: str, policy: str, wait_s: float
    ) -> LocalLease:
        key = (chatflow_id, session_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            holder = self._held.get(key)
            if holder is None:
                lease = self._held[key] = LocalLease(self, key, message_id)
                return lease
            if policy == "reject":
                raise chat_busy(session_id, policy, wait_s)
            if policy == "interrupt":
                self.runs.interrupt(holder.message_id, RunCancelled(INTERRUPTED))
            remaining = deadline - loop.time()
            if remaining <= 0 or not await holder.wait_freed(remaining):
                raise chat_busy(session_id, policy, wait_s)

    async def adopt(self, chatflow_id: str, session_id: str, message_id: str) -> LocalLease | None:
        holder = self._held.get((chatflow_id, session_id))
        if holder is not None:
            return holder if holder.message_id == message_id else None
        return await self.acquire(chatflow_id, session_id, message_id, "reject", 0.0)

    def free(self, lease: LocalLease) -> None:
        if self._held.get(lease.key) is lease:
            del self._held[lease.key]
        self.runs.forget(lease.message_id)
        freed = lease._freed
        if freed is not None and not freed.done():
            freed.set_result(None)
