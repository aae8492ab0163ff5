"""Queue mode: a job still waiting for a worker is withdrawn by its abort at once (its
client left, or Stop), not when a worker comes free: its places are given back, its stream
ends, its turn is stored `aborted`, and no worker ever runs it."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable
from typing import Any

import pytest
import redis
import requests
from redis.exceptions import ConnectionError as RedisConnectionError

from tailwinds.config import Settings
from tailwinds.store.messages import StoredTurn
from tailwinds.transport import queue
from tailwinds.transport.job_entries import JobEntries
from tailwinds.transport.job_withdrawal import withdraw
from tailwinds.transport.jobs import Job
from tailwinds.transport.keys import WORKER_GROUP
from tailwinds.transport.queue import QueueClient
from tailwinds.transport.redis_writer import RELAY_TTL_S
from tests.conftest import RunningServer, start_worker
from tests.integration.test_client_gone import wait_for
from tests.integration.test_prediction_stream import messages, wait_for_answer
from tests.integration.test_queue_mode import metric, queue_env, start_cluster
from tests.integration.test_queue_turns import paced_chatflow
from tests.mock_openai import MockOpenAI
from tests.sse_frames import parse_numbered
from tests.turns import TurnInFlight, slow_question


def held_stream(api: RunningServer, chatflow_id: str, question: str, chat_id: str) -> Any:
    response = requests.post(
        f"{api.url}/api/v1/predictions/{chatflow_id}",
        json={"question": question, "streaming": True, "chatId": chat_id},
        stream=True,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response


def predict(api: RunningServer, chatflow_id: str, question: str) -> requests.Response:
    return requests.post(
        f"{api.url}/api/v1/predictions/{chatflow_id}",
        json={"question": question, "streaming": True},
        stream=True,
        timeout=10,
    )


def test_an_abort_withdraws_a_job_no_worker_has_begun(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,
    redis_url: str,
    mock_llm: MockOpenAI,
) -> None:
    # no worker at first: every job waits; the chatflow's share of the queue is two
    env = queue_env(redis_url, TAILWINDS_QUEUE_MAX_PER_CHATFLOW="2")
    cluster = start_cluster(tmp_path_factory, postgres_url, env, apis=1, workers=0)
    try:
        api = cluster.apis[0]
        chatflow_id = api.model_chatflow(mock_llm.base_url, model="echo")
        mark = f"withdrawn-{uuid.uuid4().hex[:6]}"
        left_chat, stopped_chat = f"left-{mark}", f"stopped-{mark}"
        left = held_stream(api, chatflow_id, f"{mark} left", left_chat)
        stopped = held_stream(api, chatflow_id, f"{mark} stopped", stopped_chat)
        over = predict(api, chatflow_id, "one too many")
        assert over.status_code == 429 and over.json()["code"] == "queue_full"
        assert metric(api, "tailwinds_queue_depth") == 2

        # the client leaves: its place is given back at once, with no worker anywhere
        left.close()
        deadline = time.monotonic() + 5
        while metric(api, "tailwinds_queue_depth") > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert metric(api, "tailwinds_queue_depth") == 1
        later = predict(api, chatflow_id, f"later {mark}")
        assert later.status_code == 200, later.text

        # Stop while its client reads: the stream ends at once, as an aborted run's does
        stop_sent = time.monotonic()
        answer = requests.post(
            f"{api.url}/api/v1/predictions/{chatflow_id}/abort",
            json={"chatId": stopped_chat},
            timeout=5,
        ).json()
        assert answer == {"chatId": stopped_chat, "aborted": 1}
        frames = parse_numbered(stopped.raw.read())  # until the stream's end
        assert time.monotonic() - stop_sent < 2
        assert [(n, name) for n, name, _ in frames] == [(1, "start"), (2, "error"), (3, "end")]
        assert frames[1][2] == {"error": "The prediction was aborted.", "code": "aborted"}

        # both turns stored as an aborted run's, with no answer
        for chat_id, question in ((left_chat, f"{mark} left"), (stopped_chat, f"{mark} stopped")):
            stored = wait_for_answer(api, chatflow_id, chat_id)
            assert (stored["status"], stored["content"]) == ("aborted", ""), stored
            listed = [(m["role"], m["content"]) for m in messages(api, chatflow_id, chat_id)]
            assert listed == [("userMessage", question), ("apiMessage", "")]

        # a worker comes: it runs the job queued later, and never the withdrawn ones
        cluster.workers.append(start_worker(api.home, postgres_url, **env))
        rest = parse_numbered(later.raw.read())
        assert rest[-1][1] == "end" and any(name == "token" for _, name, _ in rest), rest
        time.sleep(0.5)
        assert mock_llm.count_prefix(mark) == 0
        assert metric(api, "tailwinds_queue_depth") == 0
    finally:
        cluster.stop()


async def withdrawals_racing_workers(redis_url: str, jobs: int) -> dict[str, Any]:
    """`jobs` jobs queued; then an abort of all of them and a worker's start of each at
    the same moment, the way `Worker._job` begins one."""
    settings = Settings(mode="queue", redis_url=redis_url, redis_prefix=f"twrace-{uuid.uuid4()}")
    queue = QueueClient(settings)
    entries = JobEntries(queue.redis, queue.keys)
    try:
        queued = [
            Job(
                chatflow_id="cf",
                message_id=str(uuid.uuid4()),
                chat_id=f"c{i}",
                session_id=f"c{i}",
                question=f"q{i}",
                history=None,
            )
            for i in range(jobs)
        ]
        for job in queued:
            await queue.enqueue(job)
        await queue.redis.xgroup_create(queue.keys.jobs, WORKER_GROUP, id="0")
        reply = await queue.redis.xreadgroup(
            WORKER_GROUP, "racer", {queue.keys.jobs: ">"}, count=jobs
        )
        taken = {Job.loads(fields[b"j"]).message_id: raw.decode() for raw, fields in reply[0][1]}
        by_id = {job.message_id: job for job in queued}
        chance = random.Random(jobs)

        async def later(work: Awaitable[Any], within_s: float) -> Any:
            await asyncio.sleep(chance.uniform(0, within_s))
            return await work

        # an abort takes two round trips (the runs' facts, then the script): sent sooner
        starts = [later(entries.first_entry(e, by_id[m]), 0.05) for m, e in taken.items()]
        aborts = [later(queue.abort_runs([m]), 0.01) for m in taken]
        begun, _ = await asyncio.gather(asyncio.gather(*starts), asyncio.gather(*aborts))
        count = await queue.redis.get(queue.keys.queued("cf"))
        return {
            "own": sum(begin.run for begin in begun),
            "withdrawn": sum(begin.withdrawn for begin in begun),
            "queued": int(count or 0),
            "left_in_stream": await queue.redis.xlen(queue.keys.jobs),
        }
    finally:
        await queue.redis.delete(*await queue.redis.keys(f"{settings.redis_prefix}:*"))
        await queue.close()


def test_a_job_is_either_withdrawn_or_begun_never_both(redis_url: str) -> None:
    result = asyncio.run(withdrawals_racing_workers(redis_url, 200))
    assert result["own"] and result["withdrawn"], result  # both sides won some
    # each job once: begun by its worker (which stops it on the abort mark) or withdrawn
    assert result["own"] + result["withdrawn"] == 200, result
    # the chatflow's count holds the begun ones only, and the withdrawn left the stream
    assert result["queued"] == result["own"]
    assert result["left_in_stream"] == result["own"]


async def withdrawal_edges(redis_url: str) -> dict[str, Any]:
    settings = Settings(mode="queue", redis_url=redis_url, redis_prefix=f"twedge-{uuid.uuid4()}")
    queue = QueueClient(settings)
    redis, keys = queue.redis, queue.keys
    entries = JobEntries(redis, keys)
    seen: dict[str, Any] = {}

    def job(name: str) -> Job:
        return Job(
            chatflow_id="cf",
            message_id=str(uuid.uuid4()),
            chat_id=name,
            session_id=f"{name}-session",
            question=name,
            history=None,
            chat_lease=True,
        )

    async def taken_by_a_worker_that_died(queued: Job) -> str:
        # read by a consumer that died before it took the run's `entry`
        await queue.enqueue(queued)
        reply = await redis.xreadgroup(WORKER_GROUP, "died", {keys.jobs: ">"}, count=1)
        return str(reply[0][1][0][0].decode())

    try:
        await redis.xgroup_create(keys.jobs, WORKER_GROUP, id="0", mkstream=True)
        lease = keys.turn("cf", "reclaimed-session")
        # reclaimed and running (its worker took `entry`, wrote a frame): the abort only
        # marks it, and its places, lease and frames stay the worker's
        running = job("reclaimed")
        entry = await taken_by_a_worker_that_died(running)
        await redis.set(lease, running.message_id)
        seen["reclaimed"] = await entries.may_run_again(entry, running)
        await redis.xadd(keys.events(running.message_id), {"f": b"id: 2\n"}, id="0-2")
        seen["withdrawn_running"] = await withdraw(redis, keys, [running.message_id], 60)
        seen["after_running"] = (
            await redis.get(keys.queued("cf")),
            await redis.xlen(keys.jobs),
            await redis.get(lease),
        )
        # withdrawn first, then reclaimed: the reclaiming worker does not run it
        waiting = job("waiting")
        entry = await taken_by_a_worker_that_died(waiting)
        seen["withdrawn_waiting"] = await withdraw(redis, keys, [waiting.message_id], 60)
        seen["reclaimed_after"] = await entries.may_run_again(entry, waiting)
        # sent again (the first reply lost): the job again, its stream ended once
        seen["again"] = await withdraw(redis, keys, [waiting.message_id], 60)
        seen["frames"] = await redis.xlen(keys.events(waiting.message_id))
        # queued by an earlier version (no `queued`, `session`, `relay`): left to its mark
        old = job("old")
        await queue.enqueue(old)
        await redis.hdel(keys.run(old.message_id), "queued", "session", "relay")
        seen["withdrawn_old"] = await withdraw(redis, keys, [old.message_id], 60)
        seen["old_left"] = await redis.xlen(keys.jobs)
        # relayed: the relay stream expires as the writer's does
        relayed = job("relayed")
        relayed.relay = "node-x"
        await queue.enqueue(relayed)
        await withdraw(redis, keys, [relayed.message_id], 60)
        seen["relay_ttl"] = await redis.ttl(keys.relay("node-x"))
        return seen
    finally:
        await redis.delete(*await redis.keys(f"{settings.redis_prefix}:*"))
        await queue.close()


def test_only_a_job_no_worker_has_begun_is_withdrawn(redis_url: str) -> None:
    seen = asyncio.run(withdrawal_edges(redis_url))
    assert seen["reclaimed"].run and not seen["reclaimed"].withdrawn
    assert seen["withdrawn_running"] == []
    count, jobs, lease = seen["after_running"]
    assert (int(count), jobs) == (1, 1)
    assert lease is not None  # still the running turn's
    assert [j.question for j in seen["withdrawn_waiting"]] == ["waiting"]
    assert seen["reclaimed_after"].withdrawn and not seen["reclaimed_after"].run
    assert [j.question for j in seen["again"]] == ["waiting"]
    assert seen["frames"] == 3  # start, error, end: once
    assert seen["withdrawn_old"] == [] and seen["old_left"] == 2
    assert 0 < seen["relay_ttl"] <= RELAY_TTL_S


def test_a_withdrawn_turn_is_stored_when_the_abort_mark_then_fails(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job is out of the queue and its stream ended: no worker will store its turn, so
    the abort stores it before it sends the mark, which may fail (Redis gone)."""

    async def scenario() -> tuple[list[str], bool]:
        stored: list[str] = []

        async def store(turn: StoredTurn) -> None:
            stored.append(turn.status)

        settings = Settings(
            mode="queue", redis_url=redis_url, redis_prefix=f"wmark-{uuid.uuid4().hex[:8]}"
        )
        client = QueueClient(settings, store)
        try:
            job = Job("cf", str(uuid.uuid4()), "c", "c", "q", None)
            await client.enqueue(job)

            async def mark_fails(*_: Any) -> None:
                raise RedisConnectionError("Redis went away")

            monkeypatch.setattr(queue, "abort_runs", mark_fails)
            with pytest.raises(RedisConnectionError):
                await client.abort_runs([job.message_id])
            events = await client.redis.xrange(client.keys.events(job.message_id))
            return stored, b"e" in events[-1][1]
        finally:
            keys = await client.redis.keys(f"{settings.redis_prefix}:*")
            if keys:
                await client.redis.delete(*keys)
            await client.close()

    stored, ended = asyncio.run(scenario())
    assert ended  # withdrawn: its stream ended
    assert stored == ["aborted"]


def test_a_job_withdrawn_while_it_waited_for_a_slot_stays_aborted_after_the_retention(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,
    redis_url: str,
    mock_llm: MockOpenAI,
) -> None:
    """A busy worker (one slot) has read a second job that waits for its slot; its client
    presses Stop: withdrawn, stored `aborted`, its stream and facts kept only for the
    retention (1 s here). Begun after that, it must stay `aborted`: taken for a job whose
    Redis lost its data, it was stored failed (review of 75b6487)."""
    env = queue_env(redis_url, TAILWINDS_EVENTS_RETENTION_S="1")
    pair = start_cluster(tmp_path_factory, postgres_url, env, apis=1, workers=1, concurrency=1)
    jobs = f"{env['TAILWINDS_REDIS_PREFIX']}:jobs"
    try:
        api = pair.apis[0]
        chatflow_id = paced_chatflow(api, mock_llm)  # a token each 0.1 s
        first, second = (f"{word}-{uuid.uuid4().hex[:8]}" for word in ("first", "second"))
        running = TurnInFlight(api.url, chatflow_id, slow_question(first, 40), first).started()
        waiting = held_stream(api, chatflow_id, slow_question(second, 5), second)
        with redis.Redis.from_url(redis_url) as client:
            wait_for("both read", lambda: client.xpending(jobs, WORKER_GROUP)["pending"] == 2)
        stop = requests.post(
            f"{api.url}/api/v1/predictions/{chatflow_id}/abort", json={"chatId": second}, timeout=5
        )
        assert stop.json() == {"chatId": second, "aborted": 1}
        waiting.close()
        before = wait_for_answer(api, chatflow_id, second)
        assert (before["status"], before["content"]) == ("aborted", ""), before
        running.frames()  # 4 s, past the retention: then the second job gets the slot
        with redis.Redis.from_url(redis_url) as client:
            wait_for("the second job handled", lambda: client.xlen(jobs) == 0, 10)
        after = wait_for_answer(api, chatflow_id, second)
        assert (after["status"], after["error"]) == (before["status"], before["error"]), after
        assert mock_llm.count_prefix(slow_question(second, 5)) == 0
    finally:
        pair.stop()
