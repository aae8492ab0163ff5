"""An admitted prediction, as it goes from the node that took the request to where it runs
(this process, or a worker through a `Job`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tailwinds import tracing
from tailwinds.engine.compile import CompiledFlow
from tailwinds.engine.context import RunContext, Turn
from tailwinds.engine.turns import TurnLease
from tailwinds.engine.uploads import uploads_json
from tailwinds.limits import nothing
from tailwinds.logs import REQUEST_ID
from tailwinds.store.chatflows import Chatflow
from tailwinds.transport.jobs import Job


@dataclass(slots=True)
class Admission:
    """A prediction the API node has accepted: parsed, authorized, its flow compiled. In
    queue mode it travels to a worker as a `Job`."""

    chatflow: Chatflow
    flow: CompiledFlow
    turn: Turn
    load_history: bool
    streaming: bool
    resume_grace_s: float
    overrides: dict[str, Any]
    release: Callable[[], None] = nothing
    # what the run's nodes start with in `RunContext.state` (a chatflowTool's depth)
    state: dict[str, Any] = field(default_factory=dict)
    # the chat's lease (None: a new chat, nobody else can ask in it yet)
    lease: TurnLease | None = None

    def withdraw(self) -> None:
        """Give back what admitting took (the limiter's slot, the chat's lease), for an
        admission that will not run: its client left meanwhile."""
        self.release()
        if self.lease is not None:
            self.lease.release_soon()

    def job(self) -> Job:
        turn = self.turn
        return Job(
            chatflow_id=self.chatflow.id,
            message_id=turn.message_id,
            chat_id=turn.chat_id,
            session_id=turn.session_id,
            question=turn.question,
            history=None if self.load_history else [(m.role, m.content) for m in turn.history],
            vars=turn.vars,
            overrides=self.overrides,
            grace_s=self.resume_grace_s,
            request_id=REQUEST_ID.get(),
            chat_lease=self.lease is not None,
            asked_at=time.time(),
            uploads=uploads_json(turn.uploads) or None,
            trace=tracing.carrier(),
        )


@dataclass(slots=True)
class PreparedRun:
    chatflow: Chatflow
    flow: CompiledFlow
    ctx: RunContext
    lease: TurnLease | None = None


def withdraw(admission: Admission | None) -> None:
    """Give back an admission made for a client that left meanwhile (its cancel lost
    inside a Redis command): `before_disconnect`'s `undo` on every prediction route."""
    if admission is not None:
        admission.withdraw()
