"""Redis restarting without its data while workers run jobs: the runs whose streams went
with it are stopped at their next write (`EventWriter` finds the stream gone) and stored
failed, whether their worker is reading jobs, busy or stopping; a job read before and
begun after is stored failed, not run; runs begun after the restart are left alone."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis

from tailwinds.transport.keys import Keys
from tests.conftest import start_worker
from tests.integration import test_queue_mode as queue_mode
from tests.integration.test_queue_mode import queue_env, start_cluster
from tests.integration.test_queue_turns import paced_chatflow
from tests.mock_openai import MockOpenAI
from tests.sse_frames import tokens_of
from tests.turns import (
    TurnInFlight,
    one_running_one_waiting,
    slow_answer,
    slow_question,
    stored,
    stored_turn,
)

own_redis = queue_mode.own_redis


def _lost_and_stored_failed(turn: TurnInFlight, url: str, chatflow_id: str) -> None:
    frames = turn.frames()
    assert [data["code"] for event, data in frames if event == "error"] == ["transport_lost"]
    answer = stored_turn(url, chatflow_id, turn.body["chatId"])[1]
    assert answer[2] == "error", answer


@pytest.mark.parametrize(
    ("stopping", "lease_s"),
    [(False, "1.5"), (True, "1.5"), (False, "60")],
    ids=["busy", "stopping", "long-lease"],
)
def test_a_worker_reading_no_jobs_stops_its_runs_when_redis_lost_its_data(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,
    own_redis: tuple[str, Callable[[float], None]],
    mock_llm: MockOpenAI,
    stopping: bool,
    lease_s: str,
) -> None:
    """A worker whose every slot is taken reads no jobs, and a stopping one has stopped
    reading: no read of theirs fails when Redis restarts empty, and no heartbeat comes
    soon with a long lease. The run's next frames find its stream gone; without that the
    run went on unseen and was stored `complete`, its client having been told
    `transport_lost`."""
    url, restart = own_redis
    env = queue_env(url, TAILWINDS_WORKER_LEASE_S=lease_s)
    pair = start_cluster(tmp_path_factory, postgres_url, env, apis=1, workers=1, concurrency=1)
    try:
        api = pair.apis[0]
        chatflow_id = paced_chatflow(api, mock_llm)  # a token each 0.1 s
        name = f"lost-data-{uuid.uuid4().hex[:8]}"
        turn = TurnInFlight(api.url, chatflow_id, slow_question(name, 60), name).started()
        if stopping:
            pair.workers[0].process.send_signal(signal.SIGTERM)
        time.sleep(2.5)  # a read begun beside the job (it blocks 2 s) is over
        restart(0.3)
        _lost_and_stored_failed(turn, api.url, chatflow_id)
    finally:
        pair.stop()


def test_a_worker_that_learns_of_the_restart_late_leaves_later_runs_alone(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,
    own_redis: tuple[str, Callable[[float], None]],
    mock_llm: MockOpenAI,
) -> None:
    """Worker A is busy when Redis restarts empty, idle worker B's read fails first, and
    A's next read goes through on a fresh connection. A job A begins then must run whole,
    even when A's reads fail later (its connection cut here): a worker that had marked
    Redis' data once and took a later failed read for its loss ended it `transport_lost`
    (review of a46bf1d)."""
    url, restart = own_redis
    env = queue_env(url)
    pair = start_cluster(tmp_path_factory, postgres_url, env, apis=1, workers=1, concurrency=1)
    try:
        api = pair.apis[0]
        chatflow_id = paced_chatflow(api, mock_llm)
        first = f"first-{uuid.uuid4().hex[:8]}"
        turn = TurnInFlight(api.url, chatflow_id, slow_question(first, 150), first).started()
        # B, idle (its start takes a while: the first run, 15 s, goes on meanwhile)
        pair.workers.append(start_worker(api.home, postgres_url, **env))
        time.sleep(2.5)
        restart(0.3)
        _lost_and_stored_failed(turn, api.url, chatflow_id)
        pair.workers[1].process.send_signal(signal.SIGTERM)
        assert pair.workers[1].process.wait(20) == 0
        second = f"second-{uuid.uuid4().hex[:8]}"
        turn = TurnInFlight(api.url, chatflow_id, slow_question(second, 30), second).started()
        with redis.Redis.from_url(url) as admin:
            reading: list[dict[str, Any]] = [
                c for c in admin.client_list() if c.get("cmd") == "xreadgroup"
            ]
            assert reading, admin.client_list()
            for client in reading:
                admin.client_kill_filter(_id=client["id"])
        frames = turn.frames()
        assert [data for event, data in frames if event == "error"] == []
        assert tokens_of(frames) == slow_answer(second, 30)
        assert stored_turn(api.url, chatflow_id, second)[1][2] == "complete"
    finally:
        pair.stop()


def test_a_job_read_before_redis_lost_its_data_is_stored_failed_not_run(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,
    own_redis: tuple[str, Callable[[float], None]],
    mock_llm: MockOpenAI,
) -> None:
    """A busy worker (one slot) read a second job that waits for its slot; Redis restarts
    empty and both clients are told `transport_lost`. The second job, begun after, finds
    its stream gone: stored failed, not run whole into streams nobody reads."""
    url, restart = own_redis
    env = queue_env(url)
    pair = start_cluster(tmp_path_factory, postgres_url, env, apis=1, workers=1, concurrency=1)
    keys = Keys(env["TAILWINDS_REDIS_PREFIX"])
    try:
        api = pair.apis[0]
        chatflow_id = paced_chatflow(api, mock_llm)
        running, waiting = one_running_one_waiting(api.url, chatflow_id, url, keys.jobs, (60, 10))
        second = waiting.body["chatId"]
        restart(0.3)
        _lost_and_stored_failed(running, api.url, chatflow_id)
        _lost_and_stored_failed(waiting, api.url, chatflow_id)
        assert stored(api.url, chatflow_id, second)[1][1] == ""  # nothing ran
        assert mock_llm.count_prefix(slow_question(second, 10)) == 0
    finally:
        pair.stop()
