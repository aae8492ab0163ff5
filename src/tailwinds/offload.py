"""CPU-heavy work off the event loop that carries every stream, bounded.

Two kinds of lane:

- `ProcessLane`: reading what callers send (files, fetched pages). pypdf and trafilatura
  are pure Python: on a thread they would still hold the GIL, and a crafted PDF of a few KB
  can keep one busy for minutes. So each task runs in a worker process (pebble's pool) with
  a time limit, past which that process is killed and replaced; its address space is
  capped too (`RLIMIT_AS`), against decompression bombs.
- `ThreadLane`: work that releases the GIL (`hashlib.scrypt`, numpy) or is Python linear
  in an input already bounded (splitting, index builds): on a thread the loop still gets
  its turn every switch interval (5 ms).

Every lane admits at most `workers + queue` tasks at once, and at most `per_caller` of
one client address (`CLIENT`); past that it refuses before any work: `ServerBusy` (503)
or `RateLimited` (429), both with Retry-After.

The lanes are per process (like the local model's thread): `configure(settings)` at start,
`close()` at the end; unconfigured, they take the settings' defaults.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import Any, TypeVar

from tailwinds.config import Settings
from tailwinds.errors import RateLimited, ServerBusy
from tailwinds.metrics import OFFLOAD_TASKS

T = TypeVar("T")

# the address of the client whose request is being served (set per HTTP request): what
# "per caller" counts, for the lanes and for failed API key checks
CLIENT: ContextVar[str | None] = ContextVar("client", default=None)

RETRY_AFTER_S = 2


class WorkTimeout(Exception):
    """The task ran past its lane's time limit; its worker process was killed."""


class WorkerLost(Exception):
    """The worker process died under the task (out of memory, a crash in C code)."""


class Gate:
    """Admission to a lane: `capacity` tasks at once in all, `per_caller` per client.
    Touched on the event loop only."""

    def __init__(self, name: str, capacity: int, per_caller: int) -> None:
        self.name = name
        self.capacity = capacity
        self.per_caller = per_caller
        self.held = 0
        self._by_caller: dict[str, int] = {}
        self._gauge = OFFLOAD_TASKS.labels(name)

    def enter(self, caller: str | None) -> Callable[[], None]:
        """Count one task in; returns its release (idempotent). Raises `ServerBusy` when
        the lane is full, `RateLimited` when this caller holds its share."""
        if self.held >= self.capacity:
            raise ServerBusy(
                f"the server's {self.name} workers are all busy ({self.held} tasks running "
                f"or waiting); try again in {RETRY_AFTER_S} s",
                retry_after_s=RETRY_AFTER_S,
            )
        if caller is not None and self.per_caller:
            mine = self._by_caller.get(caller, 0)
            if mine >= self.per_caller:
                raise RateLimited(
                    f"at most {self.per_caller} {self.name} tasks of one client at once; "
                    f"try again in {RETRY_AFTER_S} s",
                    retry_after_s=RETRY_AFTER_S,
                )
            self._by_caller[caller] = mine + 1
        self.held += 1
        self._gauge.inc()
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self.held -= 1
            self._gauge.dec()
            if caller is not None and self.per_caller:
                left = self._by_caller[caller] - 1
                if left:
                    self._by_caller[caller] = left
                else:
                    del self._by_caller[caller]

        return release


class ThreadLane:
    def __init__(self, name: str, workers: int, queue: int, per_caller: int = 0) -> None:
        self.gate = Gate(name, workers + queue, per_caller)
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix=f"tailwinds-{name}")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on a worker thread. The task's place is given back when the thread
        is done with it, even if the caller stopped waiting."""
        release = self.gate.enter(CLIENT.get())
        try:
            future = asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        except BaseException:
            release()
            raise
        future.add_done_callback(lambda _: release())
        future.add_done_callback(outcome_seen)
        # shielded: a cancelled caller must not mark as done a thread still running
        return await asyncio.shield(future)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def outcome_seen(future: asyncio.Future[Any]) -> None:
    """Mark the outcome seen: a caller that left must not leave a 'never retrieved' log."""
    if not future.cancelled():
        future.exception()


def _limit_memory(memory_mb: int) -> None:  # in the worker process, before any task
    if memory_mb > 0:
        import resource

        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


class ProcessLane:
    def __init__(
        self,
        name: str,
        workers: int,
        queue: int,
        per_caller: int,
        timeout_s: float,
        memory_mb: int,
    ) -> None:
        self.gate = Gate(name, workers + queue, per_caller)
        self.workers = workers
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self._pool: Any = None  # made at first use: a server that never parses holds none

    def _started(self) -> Any:
        if self._pool is None:
            from pebble import ProcessPool

            self._pool = ProcessPool(
                max_workers=self.workers,
                # a fresh process now and then: whatever a parser leaked goes with it
                max_tasks=100,
                initializer=_limit_memory,
                initargs=(self.memory_mb,),
                # not fork: the server has threads (a forked lock may never be released)
                context=multiprocessing.get_context("spawn"),
            )
        return self._pool

    def reserve(self) -> Callable[[], None]:
        """A place in this lane for the calling client, taken now for a task to come (a
        page to download, then read): its release, for `run(..., reserved=)` or to call
        if the task never comes. Raises like `run`, before any work."""
        return self.gate.enter(CLIENT.get())

    async def run(
        self, fn: Callable[..., T], *args: Any, reserved: Callable[[], None] | None = None
    ) -> T:
        """`fn(*args)` in a worker process (`fn` and the arguments picklable), in the place
        `reserved` holds or in one taken now. Raises what `fn` raised, `WorkTimeout` past
        the time limit, `WorkerLost` if the process died; cancelling the caller kills the
        task's process."""
        from pebble import ProcessExpired

        release = reserved if reserved is not None else self.gate.enter(CLIENT.get())
        try:
            future = self._started().submit(fn, self.timeout_s, *args)
            return await asyncio.wrap_future(future)
        except concurrent.futures.TimeoutError as exc:
            raise WorkTimeout(f"took longer than {self.timeout_s:g} s") from exc
        except ProcessExpired as exc:
            raise WorkerLost(f"its worker process died (exit code {exc.exitcode})") from exc
        finally:
            release()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.stop()
            self._pool.join(timeout=5)
            self._pool = None


class Lanes:
    """The lanes of this process: `parsing` (processes) and `computing` (threads)."""

    def __init__(self, settings: Settings) -> None:
        self.parsing = ProcessLane(
            "parsing",
            settings.parse_workers,
            settings.parse_queue,
            settings.parse_per_client,
            settings.parse_timeout_s,
            settings.parse_max_memory_mb,
        )
        self.computing = ThreadLane(
            "computing",
            settings.compute_threads,
            settings.compute_queue,
            settings.compute_per_client,
        )

    def close(self) -> None:
        self.parsing.close()
        self.computing.close()


_lanes: Lanes | None = None


def configure(settings: Settings) -> Lanes:
    """The lanes, sized by `settings` (closing any made before)."""
    global _lanes
    close()
    _lanes = Lanes(settings)
    return _lanes


def lanes() -> Lanes:
    global _lanes
    if _lanes is None:
        _lanes = Lanes(Settings())
    return _lanes


def close() -> None:
    global _lanes
    if _lanes is not None:
        _lanes.close()
        _lanes = None
