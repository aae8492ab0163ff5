"""The lanes that keep CPU-heavy work off the event loop: bounded in all and per caller
(503 / 429 with Retry-After), a stuck task's worker process killed and replaced at the time
limit, its memory capped, and thread work on a thread that is not the loop's."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable

import pytest

from tailwinds.config import Settings
from tailwinds.errors import RateLimited, ServerBusy
from tailwinds.offload import (
    CLIENT,
    Gate,
    ProcessLane,
    ThreadLane,
    WorkTimeout,
    close,
    configure,
)


async def until(condition: Callable[[], bool]) -> None:
    """Wait on observable state (a task's place in its lane), 10 s at most."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the state did not come")


def test_gate_refuses_past_capacity_with_503_and_retry_after() -> None:
    gate = Gate("parsing", capacity=2, per_caller=0)
    first, _second = gate.enter("a"), gate.enter("b")
    with pytest.raises(ServerBusy) as refused:
        gate.enter("c")
    assert refused.value.status == 503
    assert refused.value.retry_after_s >= 1
    assert "parsing" in refused.value.message
    first()
    first()  # idempotent: one place given back, not two
    gate.enter("c")
    with pytest.raises(ServerBusy):
        gate.enter("d")


def test_gate_bounds_each_caller_with_429() -> None:
    gate = Gate("parsing", capacity=10, per_caller=2)
    release = gate.enter("10.0.0.1")
    gate.enter("10.0.0.1")
    with pytest.raises(RateLimited) as refused:
        gate.enter("10.0.0.1")
    assert refused.value.status == 429
    assert not isinstance(refused.value, ServerBusy)
    gate.enter("10.0.0.2")  # another client is not held back
    release()
    gate.enter("10.0.0.1")


def lane(**overrides: float) -> ProcessLane:
    settings = {"workers": 1, "queue": 0, "per_caller": 0, "timeout_s": 30.0, "memory_mb": 0}
    return ProcessLane("parsing", **{**settings, **overrides})  # type: ignore[arg-type]


def test_a_task_past_its_time_limit_is_killed_and_its_worker_replaced() -> None:
    async def main() -> None:
        parsing = lane(timeout_s=1.0)
        try:
            before = await parsing.run(os.getpid)
            with pytest.raises(WorkTimeout):
                await parsing.run(time.sleep, 60)
            after = await parsing.run(os.getpid)
            assert after != before  # the stuck process is gone, a new one serves
            assert parsing.gate.held == 0
        finally:
            parsing.close()

    asyncio.run(main())


def test_a_full_process_lane_refuses_before_any_work() -> None:
    async def main() -> None:
        parsing = lane()
        try:
            busy = asyncio.create_task(parsing.run(time.sleep, 60))
            await until(lambda: parsing.gate.held == 1)
            with pytest.raises(ServerBusy):
                await parsing.run(os.getpid)
            busy.cancel()  # kills the task's process: the lane is free at once
            with pytest.raises(asyncio.CancelledError):
                await busy
            assert parsing.gate.held == 0
            assert await parsing.run(sum, [1, 2]) == 3
        finally:
            parsing.close()

    asyncio.run(main())


def test_a_process_lane_bounds_each_client() -> None:
    async def main() -> None:
        parsing = lane(workers=2, queue=2, per_caller=1)
        try:
            CLIENT.set("203.0.113.9")
            busy = asyncio.create_task(parsing.run(time.sleep, 60))
            await until(lambda: parsing.gate.held == 1)
            with pytest.raises(RateLimited):
                await parsing.run(os.getpid)
            CLIENT.set("203.0.113.10")
            assert await parsing.run(sum, [2, 2]) == 4
            busy.cancel()
        finally:
            parsing.close()

    asyncio.run(main())


def test_a_worker_process_has_its_memory_capped() -> None:
    async def main() -> None:
        parsing = lane(memory_mb=300)
        try:
            with pytest.raises(MemoryError):
                await parsing.run(bytearray, 600 * 1024 * 1024)
            assert await parsing.run(len, bytearray(10)) == 10
        finally:
            parsing.close()

    asyncio.run(main())


def test_thread_lane_runs_off_the_loop_thread_and_refuses_when_full() -> None:
    async def main() -> None:
        computing = ThreadLane("computing", workers=1, queue=0)
        try:
            assert await computing.run(threading.get_ident) != threading.get_ident()
            gate = threading.Event()
            busy = asyncio.create_task(computing.run(gate.wait, 30))
            await until(lambda: computing.gate.held == 1)
            with pytest.raises(ServerBusy):
                await computing.run(threading.get_ident)
            busy.cancel()  # the caller leaves; the thread still holds its place
            assert computing.gate.held == 1
            gate.set()
            await until(lambda: computing.gate.held == 0)
        finally:
            computing.close()

    asyncio.run(main())


def test_the_lanes_are_sized_by_the_settings() -> None:
    lanes = configure(
        Settings(
            parse_workers=3,
            parse_queue=4,
            parse_per_client=1,
            parse_timeout_s=5,
            compute_threads=2,
            compute_queue=6,
            compute_per_client=3,
        )
    )
    try:
        assert (lanes.parsing.gate.capacity, lanes.parsing.gate.per_caller) == (7, 1)
        assert lanes.parsing.timeout_s == 5
        assert (lanes.computing.gate.capacity, lanes.computing.gate.per_caller) == (8, 3)
    finally:
        close()
