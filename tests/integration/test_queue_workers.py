"""A worker's life beside its jobs (worker.py): stopping while jobs run, and reads that
Redis refuses for a moment (of new jobs, or of its own pending ones)."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import pytest
import redis
import requests

from tailwinds.transport.keys import Keys
from tests.conftest import start_worker
from tests.integration import test_queue_mode as queue_mode
from tests.integration.test_client_gone import wait_for
from tests.integration.test_queue_mode import queue_env, start_cluster
from tests.integration.test_queue_turns import paced_chatflow
from tests.mock_openai import MockOpenAI
from tests.reply_dropper import dropper_in_thread
from tests.sse_frames import tokens_of
from tests.turns import TurnInFlight, one_running_one_waiting, slow_answer, slow_question, stored

own_redis = queue_mode.own_redis


def test_a_stopping_worker_keeps_its_running_jobs_through_the_grace(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,
    redis_url: str,
    mock_llm: MockOpenAI,
) -> None:
    """SIGTERM: the worker takes no more jobs and lets its running ones finish (the grace
    is 30 s, the lease 1.5 s). It heartbeats them still: another worker must not take one
    for lost and end it with `worker_lost`."""
    env = queue_env(redis_url)
    pair = start_cluster(tmp_path_factory, postgres_url, env, apis=1, workers=1)
    try:
        api = pair.apis[0]
        chatflow_id = paced_chatflow(api, mock_llm)  # a token each 0.1 s: 6 s in all
        name = f"stopping-{uuid.uuid4().hex[:8]}"
        turn = TurnInFlight(api.url, chatflow_id, slow_question(name, 60), name).started()
        pair.workers.append(start_worker(api.home, postgres_url, **env))
        pair.workers[0].process.send_signal(signal.SIGTERM)
        frames = turn.frames()
        assert [data for event, data in frames if event == "error"] == []
        assert tokens_of(frames) == slow_answer(name, 60)
        assert mock_llm.count_prefix(slow_question(name, 60)) == 1
        assert pair.workers[0].process.wait(20) == 0
        assert stored(api.url, chatflow_id, name)[1][2] == "complete"
    finally:
        pair.stop()


def test_a_read_refused_for_a_moment_does_not_stop_the_worker(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,
    own_redis: tuple[str, Any],
    mock_llm: MockOpenAI,
) -> None:
    """`XREADGROUP` is a write: Redis refuses it while it cannot take writes (NOREPLICAS
    here; MISCONF after a failed save and READONLY after a failover alike). The worker
    reads again after, as after a dropped connection; it had stopped taking jobs."""
    url, _ = own_redis
    pair = start_cluster(tmp_path_factory, postgres_url, queue_env(url), apis=1, workers=1)
    try:
        api = pair.apis[0]
        chatflow_id = api.model_chatflow(mock_llm.base_url)
        with redis.Redis.from_url(url) as client:
            client.config_set("min-replicas-to-write", 1)
            time.sleep(2.5)  # the blocking read (2 s) comes back, and the next is refused
            client.config_set("min-replicas-to-write", 0)
        answer = requests.post(
            f"{api.url}/api/v1/predictions/{chatflow_id}",
            json={"question": "after a refusal"},
            timeout=20,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["text"] == "You said: after a refusal"
        assert "refused by Redis" in pair.workers[0].log()
    finally:
        pair.stop()


def test_a_refused_read_of_its_own_pending_jobs_is_made_again(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,
    own_redis: tuple[str, Any],
    mock_llm: MockOpenAI,
) -> None:
    """The read that gave the worker a job lost its reply, and the read of its own pending
    jobs that follows is refused (NOPERM here; READONLY, MISCONF, NOREPLICAS alike): it is
    made again after, or the job waited a whole lease (60 s) for a reclaim."""
    url, _ = own_redis
    question = f"refused own read {uuid.uuid4().hex[:8]}"
    with dropper_in_thread(url, b"XREADGROUP", holding=question.encode()) as (dropper, via):
        env = queue_env(via, TAILWINDS_WORKER_LEASE_S="60")
        pair = start_cluster(tmp_path_factory, postgres_url, env, apis=1, workers=1)
        try:
            api = pair.apis[0]
            chatflow_id = api.model_chatflow(mock_llm.base_url)
            dropper.armed = True
            time.sleep(2.5)  # the worker's blocking read (2 s) is sent again, armed
            answers: list[requests.Response] = []
            url_of = f"{api.url}/api/v1/predictions/{chatflow_id}"
            asking = threading.Thread(
                target=lambda: answers.append(
                    requests.post(url_of, json={"question": question}, timeout=30)
                ),
                daemon=True,
            )
            with redis.Redis.from_url(url) as admin:
                asking.start()
                wait_for("the read cut", lambda: dropper.dropped == 1, 10)
                admin.execute_command("ACL", "SETUSER", "default", "-xreadgroup")
                time.sleep(1.0)  # its reads of its own jobs refused meanwhile
                admin.execute_command("ACL", "SETUSER", "default", "+xreadgroup")
            asking.join(25)
            assert "refused by Redis" in pair.workers[0].log()
            assert answers, "the job waited for a reclaim"
            assert answers[0].json()["text"] == f"You said: {question}"
        finally:
            pair.stop()


def test_a_job_a_stopping_worker_had_not_begun_runs_on_another(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,
    redis_url: str,
    mock_llm: MockOpenAI,
) -> None:
    """A worker read a second job while its one slot was taken, then was told to stop: it
    never begins that job (its grace, 3 s here, would have ended it `server_shutdown`
    half-way), and another worker claims and runs it whole after a lease."""
    env = queue_env(redis_url, TAILWINDS_SHUTDOWN_GRACE_S="3")
    pair = start_cluster(tmp_path_factory, postgres_url, env, apis=1, workers=1, concurrency=1)
    keys = Keys(env["TAILWINDS_REDIS_PREFIX"])
    try:
        api = pair.apis[0]
        chatflow_id = paced_chatflow(api, mock_llm)
        running, waiting = one_running_one_waiting(
            api.url, chatflow_id, redis_url, keys.jobs, (20, 40)
        )
        first, second = running.body["chatId"], waiting.body["chatId"]
        pair.workers[0].process.send_signal(signal.SIGTERM)
        pair.workers.append(start_worker(api.home, postgres_url, **env))
        for turn, name, tokens in ((running, first, 20), (waiting, second, 40)):
            frames = turn.frames()
            assert [data for event, data in frames if event == "error"] == [], name
            assert tokens_of(frames) == slow_answer(name, tokens)
        assert pair.workers[0].process.wait(20) == 0
    finally:
        pair.stop()


@contextmanager
def _table_locked(database_url: str, table: str) -> Iterator[None]:
    """`LOCK TABLE … ACCESS EXCLUSIVE` held on a connection of its own thread meanwhile:
    every read of the table waits (a database slow to answer)."""
    held, release = threading.Event(), threading.Event()

    async def hold() -> None:
        url = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        conn = await asyncpg.connect(url, timeout=5)
        try:
            async with conn.transaction():
                await conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
                held.set()
                await asyncio.to_thread(release.wait)
        finally:
            await conn.close()

    thread = threading.Thread(target=lambda: asyncio.run(hold()), daemon=True)
    thread.start()
    assert held.wait(10), "the lock was not taken"
    try:
        yield
    finally:
        release.set()
        thread.join(10)


def test_a_run_still_starting_when_the_grace_ends_is_ended_server_shutdown(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,
    redis_url: str,
    mock_llm: MockOpenAI,
) -> None:
    """A job begun (its entry taken) whose run waits for its chat's history from a slow
    database when the grace ends: it ends `server_shutdown` as soon as it starts, as the
    running ones did; it had run whole after the grace, however long (review of
    592867b)."""
    env = queue_env(redis_url, TAILWINDS_SHUTDOWN_GRACE_S="2")
    pair = start_cluster(tmp_path_factory, postgres_url, env, apis=1, workers=1)
    keys = Keys(env["TAILWINDS_REDIS_PREFIX"])
    try:
        api = pair.apis[0]
        chatflow_id = paced_chatflow(api, mock_llm)
        name = f"starting-{uuid.uuid4().hex[:8]}"
        turn = TurnInFlight(api.url, chatflow_id, slow_question(name, 10), name)
        with _table_locked(postgres_url, "chat_messages"), redis.Redis.from_url(redis_url) as r:
            turn.start()
            runs = f"{keys.prefix}:run:*"
            wait_for("begun", lambda: any(r.hget(key, "entry") for key in r.scan_iter(runs)))
            pair.workers[0].process.send_signal(signal.SIGTERM)
            time.sleep(3)  # the grace (2 s) ends while the history read waits
        codes = [data["code"] for event, data in turn.frames() if event == "error"]
        assert codes == ["server_shutdown"]
        assert pair.workers[0].process.wait(20) == 0
    finally:
        pair.stop()
