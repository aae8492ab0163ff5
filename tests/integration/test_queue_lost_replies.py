"""A worker whose read or claim of jobs lost its reply: Redis gave it the jobs (pending under
its name) and the connection died before it heard. Sent again, the command would not
return them, and they waited a whole lease for the next reclaim; the worker reads its own
pending jobs instead (worker.py), and none runs twice."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import redis
import requests

from tailwinds.transport.jobs import Job
from tailwinds.transport.keys import WORKER_GROUP, Keys
from tests.conftest import start_worker
from tests.integration.test_client_gone import wait_for
from tests.integration.test_queue_mode import queue_env, start_cluster
from tests.integration.test_queue_turns import paced_chatflow
from tests.mock_openai import MockOpenAI
from tests.reply_dropper import dropper_in_thread
from tests.sse_frames import check_order, tokens_of
from tests.turns import TurnInFlight, ask, slow_answer, slow_question, stored


def test_jobs_read_by_a_worker_whose_reply_was_lost_run_at_once(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,
    redis_url: str,
    mock_llm: MockOpenAI,
) -> None:
    """The `XREADGROUP` reply that held a job is lost: the job runs at once (a lease is a
    minute here), and the job the worker was running meanwhile, pending too, not twice."""
    lost = f"lost read {uuid.uuid4().hex[:8]}"
    with dropper_in_thread(redis_url, b"XREADGROUP", holding=lost.encode()) as (dropper, url):
        env = queue_env(url, TAILWINDS_WORKER_LEASE_S="60")
        pair = start_cluster(tmp_path_factory, postgres_url, env, apis=1, workers=1)
        try:
            api = pair.apis[0]
            chatflow_id = paced_chatflow(api, mock_llm)  # a token each 0.1 s
            name = f"running-{uuid.uuid4().hex[:8]}"
            running = slow_question(name, 40)
            dropper.armed = True  # from the worker's next read on: only that reply is lost
            first = TurnInFlight(api.url, chatflow_id, running, "c0").started()
            answer = requests.post(
                f"{api.url}/api/v1/predictions/{chatflow_id}",
                json={"question": lost, "chatId": "c1"},
                timeout=30,  # under half a lease: a reclaim could not have run it
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["text"] == f"You said: {lost}"
            assert dropper.dropped == 1  # the reply that held the job
            assert mock_llm.count_prefix(lost) == 1
            frames = first.frames()
            check_order(frames)
            assert tokens_of(frames) == slow_answer(name, 40)
            assert mock_llm.count_prefix(running) == 1
        finally:
            pair.stop()


def test_jobs_claimed_by_a_reclaim_whose_reply_was_lost_wait_no_second_lease(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,
    redis_url: str,
    mock_llm: MockOpenAI,
) -> None:
    """A worker that took a job died (its entry pending under its name, idle long since);
    the `XAUTOCLAIM` reply that gives the job to a live worker is lost. Claimed again, it
    would have waited one more lease (12 s here) idle under the live worker's name; it runs
    at the live worker's next read."""
    lost = f"lost claim {uuid.uuid4().hex[:8]}"
    with dropper_in_thread(redis_url, b"XAUTOCLAIM", holding=lost.encode()) as (dropper, url):
        env = queue_env(url, TAILWINDS_WORKER_LEASE_S="12")
        pair = start_cluster(tmp_path_factory, postgres_url, env, apis=1, workers=0)
        keys = Keys(env["TAILWINDS_REDIS_PREFIX"])
        try:
            api = pair.apis[0]
            chatflow_id = api.model_chatflow(mock_llm.base_url)
            with redis.Redis.from_url(redis_url) as client:
                client.xgroup_create(keys.jobs, WORKER_GROUP, id="0", mkstream=True)
                answers: list[requests.Response] = []
                asking = threading.Thread(
                    target=lambda: answers.append(
                        requests.post(
                            f"{api.url}/api/v1/predictions/{chatflow_id}",
                            json={"question": lost, "chatId": "c1"},
                            timeout=60,
                        )
                    ),
                    daemon=True,
                )
                asking.start()
                wait_for("the job queued", lambda: client.xlen(keys.jobs) == 1, 10)
                # the worker that took it and died, a lease ago and more
                client.xreadgroup(WORKER_GROUP, "dead", {keys.jobs: ">"}, count=1)
                entry = client.xrange(keys.jobs)[0][0]
                client.xclaim(keys.jobs, WORKER_GROUP, "dead", 0, [entry], idle=600_000)
            dropper.armed = True
            home = tmp_path_factory.mktemp("claims")
            pair.workers.append(start_worker(home, postgres_url, "--concurrency", "10", **env))
            # claimed at the first reclaim (half a lease), its reply lost, then read at once;
            # claimed again instead, it would run a lease after that
            asking.join(13)
            assert not asking.is_alive(), "the job waited for another lease"
            assert answers[0].status_code == 200, answers[0].text
            assert answers[0].json()["text"] == f"You said: {lost}"
            assert dropper.dropped == 1
            assert mock_llm.count_prefix(lost) == 1
        finally:
            pair.stop()


def test_a_finished_job_read_again_after_a_failed_read_does_not_run_again(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,
    redis_url: str,
    mock_llm: MockOpenAI,
) -> None:
    """A job that ended as the worker's read of its own pending jobs came back (its
    acknowledgement raced the read): its entry, pending under the worker's name and its
    own, is begun as a claimed job is, and only acknowledged; begun as new, it ran twice."""
    question = f"read again {uuid.uuid4().hex[:8]}"
    with dropper_in_thread(redis_url, b"XREADGROUP") as (dropper, url):
        env = queue_env(url, TAILWINDS_WORKER_LEASE_S="60")
        pair = start_cluster(tmp_path_factory, postgres_url, env, apis=1, workers=1)
        keys = Keys(env["TAILWINDS_REDIS_PREFIX"])
        try:
            api = pair.apis[0]
            chatflow_id = api.model_chatflow(mock_llm.base_url)
            answer = ask(api.url, chatflow_id, question, "again")
            assert answer.json()["text"] == f"You said: {question}"
            message_id = answer.json()["messageId"]
            with redis.Redis.from_url(redis_url) as client:
                (worker,) = [c["name"] for c in client.xinfo_consumers(keys.jobs, WORKER_GROUP)]
                # the state the race leaves: the job's own entry, pending, its stream ended
                job = Job(chatflow_id, message_id, "again", "again", question, None)
                entry = f"{int(time.time() * 1000) + 1000}-0"
                planted = client.pipeline(transaction=True)
                planted.xadd(keys.jobs, {"j": job.dumps()}, id=entry)
                planted.hset(keys.run(message_id), "entry", entry)
                planted.xreadgroup(WORKER_GROUP, worker, {keys.jobs: ">"}, count=1)
                planted.execute()
                dropper.armed = True  # its next read fails: it reads its own pending jobs
                wait_for("the worker's read cut", lambda: dropper.dropped == 1, 10)
                wait_for("the entry handled", lambda: client.xlen(keys.jobs) == 0, 10)
            assert mock_llm.count_prefix(question) == 1
            assert stored(api.url, chatflow_id, "again") == [
                ("userMessage", question, "complete"),
                ("apiMessage", f"You said: {question}", "complete"),
            ]
        finally:
            pair.stop()


def test_a_second_entry_of_a_running_job_claimed_from_a_lost_worker_leaves_it_running(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,
    redis_url: str,
    mock_llm: MockOpenAI,
) -> None:
    """A job queued twice whose second entry went to a worker that died: the entry claimed
    is not the job's own, so it is only acknowledged; taken for a lost run, it ended the
    running one with `worker_lost`."""
    pair = start_cluster(tmp_path_factory, postgres_url, queue_env(redis_url), apis=1, workers=1)
    keys = Keys(pair.env["TAILWINDS_REDIS_PREFIX"])  # a lease of 1.5 s
    try:
        api = pair.apis[0]
        chatflow_id = paced_chatflow(api, mock_llm)
        name = f"twice-{uuid.uuid4().hex[:8]}"
        turn = TurnInFlight(api.url, chatflow_id, slow_question(name, 40), name).started()
        with redis.Redis.from_url(redis_url) as client:
            ((_, fields),) = client.xrange(keys.jobs)
            taken = client.pipeline(transaction=True)  # by "dead", not by the live worker
            taken.xadd(keys.jobs, fields)
            taken.xreadgroup(WORKER_GROUP, "dead", {keys.jobs: ">"}, count=1)
            taken.execute()
            frames = turn.frames()
            wait_for("the second entry handled", lambda: client.xlen(keys.jobs) == 0, 10)
        assert [data for event, data in frames if event == "error"] == []
        assert tokens_of(frames) == slow_answer(name, 40)
        assert mock_llm.count_prefix(slow_question(name, 40)) == 1
    finally:
        pair.stop()
