"""Local mode's transport: every run in this process; a resumable stream is read from its
in-memory log (transport/local.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from tailwinds.config import Settings
from tailwinds.engine.approvals import ApprovalDesk, LocalApprovals
from tailwinds.engine.events import Event
from tailwinds.engine.runs import RunRegistry
from tailwinds.engine.turns import ChatTurns, LocalTurns
from tailwinds.errors import StreamNotFound, TailwindsError
from tailwinds.limits import RateLimiter
from tailwinds.runs.admission import Admission
from tailwinds.runs.transport import Limiter, RunHere
from tailwinds.runs.waiting import decoded
from tailwinds.transport.local import LocalRelays


class LocalTransport:
    relays_frames = False

    def __init__(
        self,
        settings: Settings,
        runs: RunRegistry,
        turns: ChatTurns | None = None,
        approvals: ApprovalDesk | None = None,
    ) -> None:
        """`turns`: the chats' leases, by default in this process (a queue worker gives its
        Redis ones: the API node took them); `approvals`: where tool calls wait for a
        person's decision, by default in this process (a queue worker's are in Redis, where
        any API node posts the decision)."""
        self.runs = runs
        self.approvals: ApprovalDesk = approvals or LocalApprovals()
        self.relays = LocalRelays(settings.resume_retention_s, runs.abort_run)
        self.turns: ChatTurns = turns or LocalTurns(runs)
        self.limiter: Limiter = RateLimiter()

    async def stream(
        self, admission: Admission, run_here: RunHere
    ) -> AsyncIterator[Event] | AsyncIterator[bytes]:
        # events straight from the runner (the fast path) unless the stream can be resumed
        events = await run_here(admission)
        if admission.resume_grace_s <= 0:
            return events
        turn = admission.turn
        log = self.relays.start(
            admission.chatflow.id, turn.message_id, admission.resume_grace_s, events
        )
        return log.read(0)

    async def answer_events(self, admission: Admission, run_here: RunHere) -> AsyncIterator[Event]:
        return await run_here(admission)

    async def waiting_answer(self, admission: Admission, run_here: RunHere) -> AsyncIterator[Event]:
        events = await run_here(admission)
        turn = admission.turn
        log = self.relays.start(
            admission.chatflow.id, turn.message_id, admission.resume_grace_s, events
        )
        log.json_answer = True
        return decoded(log.read(0))

    async def answer_rest(self, chatflow_id: str, message_id: str) -> AsyncIterator[Event] | None:
        try:
            log = self.relays.get(chatflow_id, message_id)
        except StreamNotFound:
            return None
        return decoded(log.read(0)) if log.json_answer else None

    async def abort_run(self, message_id: str, error: TailwindsError) -> None:
        self.runs.abort_run(message_id, error)

    async def resume(
        self, chatflow_id: str, message_id: str, after: int
    ) -> AsyncIterator[bytes] | None:
        log = self.relays.get(chatflow_id, message_id)
        if log.done and after >= len(log.frames):
            return None
        return log.read(after)

    async def running_in(self, chatflow_id: str, chat_id: str) -> list[str]:
        return self.runs.running_in(chatflow_id, chat_id)

    async def abort(self, chatflow_id: str, chat_id: str) -> int:
        return self.runs.abort(chatflow_id, chat_id)

    def end_all(self, error: TailwindsError) -> None:
        pass  # nothing relayed from elsewhere: the service aborts this process's runs

    async def checks(self) -> dict[str, str]:
        return {}

    async def depth(self) -> int | None:
        return None

    async def close(self) -> None:
        await self.relays.drain()
