"""Where a run's events go between the run and the client: the `Transport` protocol, which
the prediction service is given once at start (local: runs in this process; queue: runs on
workers, events through Redis Streams). The service never asks which one it has."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from tailwinds.engine.approvals import ApprovalDesk
from tailwinds.engine.events import Event
from tailwinds.engine.turns import ChatTurns
from tailwinds.errors import TailwindsError
from tailwinds.limits import Scope
from tailwinds.runs.admission import Admission

# the service's own way to run an admitted prediction here: its history loaded, its nodes
# prepared, the runner's events (see PredictionService.run_here)
RunHere = Callable[[Admission], Awaitable[AsyncIterator[Event]]]


class Limiter(Protocol):
    async def admit_all(self, scopes: list[Scope]) -> Callable[[], None]:
        """One slot in every scope, or none if one refuses (`RateLimited`); the callable
        gives them back."""
        ...


class Transport(Protocol):
    # one turn at a time per chat: in this process, or in Redis for all nodes together
    turns: ChatTurns
    # the chatflows' and keys' rate limits, counted where `turns` are
    limiter: Limiter
    # True when `stream` always gives numbered SSE frames (bytes), never events
    relays_frames: bool
    # where tool calls wait for a person's decision: in this process, or in Redis where
    # any API node posts it and the worker holding the run reads it
    approvals: ApprovalDesk

    async def stream(
        self, admission: Admission, run_here: RunHere
    ) -> AsyncIterator[Event] | AsyncIterator[bytes]:
        """The run's stream for an SSE response: events, or numbered frames when the
        stream can be resumed or runs elsewhere."""
        ...

    async def answer_events(self, admission: Admission, run_here: RunHere) -> AsyncIterator[Event]:
        """The run's events for a non-streaming answer."""
        ...

    async def waiting_answer(self, admission: Admission, run_here: RunHere) -> AsyncIterator[Event]:
        """A non-streaming run that may wait for a person (runs/waiting.py): started as a
        resumable run (it outlives the response that announces its action, for
        `admission.resume_grace_s` with nobody reading) and marked as a JSON answer; its
        events from the first."""
        ...

    async def answer_rest(self, chatflow_id: str, message_id: str) -> AsyncIterator[Event] | None:
        """The events, from the first, of a run started by `waiting_answer`, for the
        decision route to answer with the rest; None for any other run."""
        ...

    async def abort_run(self, message_id: str, error: TailwindsError) -> None:
        """Stop one run, wherever it runs (a JSON answer's client left before it)."""
        ...

    async def resume(
        self, chatflow_id: str, message_id: str, after: int
    ) -> AsyncIterator[bytes] | None:
        """The frames after number `after`, then the live rest; None when the stream ended
        at or before `after`. `StreamNotFound` when there is no such stream."""
        ...

    async def running_in(self, chatflow_id: str, chat_id: str) -> list[str]:
        """The message ids of the chat's running predictions, wherever they run."""
        ...

    async def abort(self, chatflow_id: str, chat_id: str) -> int:
        """Stop the chat's running predictions, wherever they run: how many."""
        ...

    def end_all(self, error: TailwindsError) -> None:
        """End, with `error`, the streams relayed from elsewhere (the shutdown's last step;
        the runs of this process are aborted by the service)."""
        ...

    async def checks(self) -> dict[str, str]:
        """Readiness of what the transport needs, by name (`"ok"` or why not)."""
        ...

    async def depth(self) -> int | None:
        """Queued or running jobs, when there is a queue."""
        ...

    async def close(self) -> None:
        """After the last request: wait for the runs it drives, close its connections."""
        ...
