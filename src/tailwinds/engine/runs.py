"""Running predictions, so that an abort can find and stop them.

Abort and disconnect both work by cancelling the task that drives the run: the
cancellation lands in whatever the run awaits (the provider's socket read, a tool), which
unwinds and closes it. `aborted` tells the runner which of the two it was.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from tailwinds.errors import RunCancelled, TailwindsError


class RunHandle:
    __slots__ = ("chat_id", "chatflow_id", "error", "run_id", "task")

    def __init__(self, chatflow_id: str, chat_id: str, run_id: str) -> None:
        self.chatflow_id = chatflow_id
        self.chat_id = chat_id
        self.run_id = run_id
        # why the run was stopped, the error its stream ends with
        self.error: TailwindsError | None = None
        # set while the run streams its answer: the only stretch where a cancel is safe
        self.task: asyncio.Task[object] | None = None

    @property
    def aborted(self) -> bool:
        return self.error is not None

    def abort(self, error: TailwindsError | None = None) -> None:
        if self.error is not None:
            return
        self.error = error or RunCancelled()
        if self.task is not None:
            self.task.cancel()


class RunRegistry:
    def __init__(self) -> None:
        self._runs: dict[tuple[str, str], set[RunHandle]] = {}
        self._by_id: dict[str, RunHandle] = {}
        # interrupts of runs admitted but not started yet, by run id (see `interrupt`)
        self._pending: dict[str, TailwindsError] = {}

    @contextmanager
    def track(self, chatflow_id: str, chat_id: str, run_id: str) -> Iterator[RunHandle]:
        handle = RunHandle(chatflow_id, chat_id, run_id)
        handle.error = self._pending.pop(run_id, None)
        key = (chatflow_id, chat_id)
        self._runs.setdefault(key, set()).add(handle)
        self._by_id[run_id] = handle
        try:
            yield handle
        finally:
            self._by_id.pop(run_id, None)
            running = self._runs.get(key)
            if running is not None:
                running.discard(handle)
                if not running:
                    del self._runs[key]

    def abort(self, chatflow_id: str, chat_id: str) -> int:
        """Abort every run of this chat; returns how many there were."""
        running = list(self._runs.get((chatflow_id, chat_id), ()))
        for handle in running:
            handle.abort()
        return len(running)

    def abort_run(self, run_id: str, error: TailwindsError | None = None) -> bool:
        handle = self._by_id.get(run_id)
        if handle is None:
            return False
        handle.abort(error)
        return True

    def interrupt(self, run_id: str, error: TailwindsError) -> None:
        """Abort the run, or, when it has not started yet, have it end with `error` as
        soon as it does (until `forget`)."""
        if not self.abort_run(run_id, error):
            self._pending.setdefault(run_id, error)

    def forget(self, run_id: str) -> None:
        """The run is over, or never will start: drop an interrupt still waiting for it."""
        self._pending.pop(run_id, None)

    def running_in(self, chatflow_id: str, chat_id: str) -> list[str]:
        """The ids of the chat's runs going on now."""
        return [handle.run_id for handle in self._runs.get((chatflow_id, chat_id), ())]

    def running(self) -> list[str]:
        """The ids of the runs going on now."""
        return list(self._by_id)

    def abort_all(self, error: TailwindsError) -> int:
        running = [handle for runs in self._runs.values() for handle in runs]
        for handle in running:
            handle.abort(error)
        return len(running)
