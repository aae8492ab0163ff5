"""Queue mode, real processes: one turn at a time per chat across API nodes (a lease in Redis
that a crash cannot leave held), and the first predictions after a Redis restart run at
once, each exactly once, stored whole."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tailwinds.config import Settings
from tailwinds.transport.jobs import Job
from tailwinds.transport.keys import Keys
from tailwinds.transport.queue import QueueClient
from tests.conftest import RunningServer, start_worker, stream_then_leave
from tests.integration import test_queue_mode as queue_mode
from tests.integration.test_client_gone import open_request, wait_for
from tests.integration.test_queue_mode import Cluster, queue_env, start_cluster
from tests.mock_openai import MockOpenAI
from tests.sse_frames import check_order, parse_frames, parse_numbered, tokens_of
from tests.turns import TurnInFlight, ask, slow_answer, slow_question, stored

# the two API nodes and two workers, and a Redis of the test's own that it may restart
cluster = queue_mode.cluster
own_redis = queue_mode.own_redis


def paced_chatflow(api: RunningServer, mock_llm: MockOpenAI, **fields: Any) -> str:
    node = {
        "id": "chat_0",
        "type": "chatOpenAI",
        "inputs": {"model": "paced:0.1", "baseUrl": mock_llm.base_url},
    }
    return api.create_chatflow({"nodes": [node], "edges": []}, **fields)["id"]


def test_a_second_turn_through_the_other_api_node_is_refused(
    cluster: Cluster, mock_llm: MockOpenAI
) -> None:
    a, b = cluster.apis
    chatflow_id = paced_chatflow(a, mock_llm)
    first = TurnInFlight(a.url, chatflow_id, slow_question("qa", 40), "shared").started()
    for api, streaming in ((b, True), (b, False), (a, True)):
        refused = ask(api.url, chatflow_id, "second", "shared", streaming=streaming)
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "chat_busy"
    # the lease is kept alive while the turn runs, past its own length (1.5 s here)
    first.wait_tokens(25)
    refused = ask(b.url, chatflow_id, "second", "shared")
    assert refused.status_code == 409, refused.text
    frames = first.frames()
    check_order(frames)
    assert tokens_of(frames) == slow_answer("qa", 40)
    # the worker frees the chat before `end`: the next turn, on either node, goes at once
    again = ask(b.url, chatflow_id, "third", "shared")
    assert again.status_code == 200, again.text
    assert [content for _, content, _ in stored(b.url, chatflow_id, "shared")] == [
        slow_question("qa", 40),
        slow_answer("qa", 40),
        "third",
        "You said: third",
    ]


def test_interrupt_through_the_other_api_node(cluster: Cluster, mock_llm: MockOpenAI) -> None:
    a, b = cluster.apis
    chatflow_id = paced_chatflow(a, mock_llm, concurrentTurns="interrupt")
    first = TurnInFlight(a.url, chatflow_id, slow_question("qi", 200), "cut").started()
    second = ask(b.url, chatflow_id, "interrupting", "cut", streaming=True)
    assert second.status_code == 200, second.text
    assert tokens_of(parse_frames(second.content)) == "You said: interrupting"
    frames = first.frames()
    check_order(frames)
    assert frames[-2][1]["code"] == "aborted"
    assert [(content, status) for _, content, status in stored(a.url, chatflow_id, "cut")] == [
        (slow_question("qi", 200), "complete"),
        (tokens_of(frames), "aborted"),
        ("interrupting", "complete"),
        ("You said: interrupting", "complete"),
    ]


def test_queue_through_the_other_api_node_waits_and_sees_the_first_turn(
    cluster: Cluster, mock_llm: MockOpenAI
) -> None:
    a, b = cluster.apis
    chatflow_id = paced_chatflow(a, mock_llm, concurrentTurns="queue")
    first = TurnInFlight(a.url, chatflow_id, slow_question("qq"), "waits").started()
    second = ask(b.url, chatflow_id, "waited in queue mode", "waits")
    assert second.status_code == 200, second.text
    assert tokens_of(first.frames()) == slow_answer("qq")
    record = mock_llm.find("waited in queue mode")
    assert [m["content"] for m in record.body["messages"]][-3:] == [
        slow_question("qq"),
        slow_answer("qq"),
        "waited in queue mode",
    ]
    assert [content for _, content, _ in stored(a.url, chatflow_id, "waits")] == [
        slow_question("qq"),
        slow_answer("qq"),
        "waited in queue mode",
        "You said: waited in queue mode",
    ]


def line_length(cluster: Cluster, chatflow_id: str, chat_id: str) -> Callable[[], int]:
    """How many turns wait in the chat's line (in Redis), for `wait_for`."""
    import redis

    keys = Keys(cluster.env["TAILWINDS_REDIS_PREFIX"])
    line = keys.turn_line(keys.turn(chatflow_id, chat_id))[0]
    url = cluster.env["TAILWINDS_REDIS_URL"]

    def length() -> int:
        with redis.Redis.from_url(url) as client:
            return int(client.zcard(line))

    return length


def test_waiting_turns_run_in_the_order_they_were_asked_across_api_nodes(
    cluster: Cluster, mock_llm: MockOpenAI
) -> None:
    chatflow_id = paced_chatflow(cluster.apis[0], mock_llm, concurrentTurns="queue")
    chat_id = f"fifo-{uuid.uuid4().hex[:8]}"
    waiting = line_length(cluster, chatflow_id, chat_id)
    first = TurnInFlight(cluster.apis[0].url, chatflow_id, slow_question("fifo", 30), chat_id)
    first.started()
    answers: dict[int, requests.Response] = {}

    def turn(i: int) -> None:
        answers[i] = ask(cluster.apis[i % 2].url, chatflow_id, f"fifo Q{i}", chat_id)

    threads = [threading.Thread(target=turn, args=(i,)) for i in range(1, 6)]
    for i, thread in enumerate(threads, 1):
        thread.start()
        wait_for(f"Q{i} waiting", lambda i=i: waiting() == i)  # type: ignore[misc]
    assert tokens_of(first.frames()) == slow_answer("fifo", 30)
    for thread in threads:
        thread.join(60)
    assert [answers[i].json()["text"] for i in range(1, 6)] == [
        f"You said: fifo Q{i}" for i in range(1, 6)
    ]
    asked = [
        c
        for role, c, _ in stored(cluster.apis[1].url, chatflow_id, chat_id)
        if role == "userMessage"
    ]
    assert asked == [slow_question("fifo", 30)] + [f"fifo Q{i}" for i in range(1, 6)]
    # each ran after the one before it was stored: its history holds them all, in order
    history = [m["content"] for m in mock_llm.find("fifo Q5").body["messages"]]
    assert [q for q in history if q.startswith("fifo Q")] == [f"fifo Q{i}" for i in range(1, 6)]


@pytest.mark.parametrize("streaming", [True, False])
def test_a_client_that_leaves_while_its_turn_waits_gives_its_place_back(
    cluster: Cluster, mock_llm: MockOpenAI, streaming: bool
) -> None:
    a, b = cluster.apis
    chatflow_id = paced_chatflow(a, mock_llm, concurrentTurns="queue")
    marker = uuid.uuid4().hex[:8]
    chat_id = f"leaves-{marker}"
    waiting = line_length(cluster, chatflow_id, chat_id)
    first = TurnInFlight(a.url, chatflow_id, slow_question(marker, 40), chat_id).started()
    sock = open_request(
        b.url,
        f"/api/v1/predictions/{chatflow_id}",
        {"question": f"{marker} gone", "chatId": chat_id, "streaming": streaming},
    )
    wait_for("the turn waiting", lambda: waiting() == 1)
    sock.close()
    # given back while the first turn runs, not when the chat comes free
    wait_for("the place given back", lambda: waiting() == 0)
    assert first.is_alive()
    assert tokens_of(first.frames()) == slow_answer(marker, 40)
    # nothing ran for nobody, and the chat is free for the next turn at once
    after = ask(b.url, chatflow_id, f"{marker} after", chat_id)
    assert after.status_code == 200, after.text
    assert mock_llm.count_prefix(f"{marker} gone") == 0
    assert [content for _, content, _ in stored(a.url, chatflow_id, chat_id)] == [
        slow_question(marker, 40),
        slow_answer(marker, 40),
        f"{marker} after",
        f"You said: {marker} after",
    ]


@pytest.fixture
def lone_pair(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, redis_url: str
) -> Iterator[Cluster]:
    """One API node and one worker with a one-second lease."""
    env = queue_env(redis_url, TAILWINDS_WORKER_LEASE_S="1")
    running = start_cluster(tmp_path_factory, postgres_url, env, apis=1, workers=1)
    yield running
    running.stop()


def test_a_chat_is_not_left_busy_by_a_worker_that_died(
    lone_pair: Cluster, postgres_url: str, mock_llm: MockOpenAI
) -> None:
    api = lone_pair.apis[0]
    chatflow_id = paced_chatflow(api, mock_llm)
    path = f"/api/v1/predictions/{chatflow_id}"
    body = {"question": slow_question("dead", 100), "chatId": "orphan", "streaming": True}
    # the client leaves (nobody renews the lease from the API node) and the worker dies
    stream_then_leave(api.url, path, body, tokens=2)
    lone_pair.workers[0].process.send_signal(signal.SIGKILL)
    lone_pair.workers[0].process.wait(5)
    # the lease runs out on its own, about one worker lease later
    deadline = time.monotonic() + 10
    while True:
        with requests.post(
            api.url + path,
            json={"question": "hello", "chatId": "orphan", "streaming": True},
            stream=True,
            timeout=10,
        ) as response:
            if response.status_code == 200:
                break
            assert response.status_code == 409, response.text
        assert time.monotonic() < deadline, "the chat stayed busy after its worker died"
        time.sleep(0.2)
    # a new worker takes the waiting jobs
    lone_pair.workers.append(start_worker(api.home, postgres_url, **lone_pair.env))


def test_the_first_predictions_after_a_redis_restart_run_at_once_and_once(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,
    own_redis: tuple[str, Any],
    mock_llm: MockOpenAI,
) -> None:
    url, restart = own_redis
    # a lease far longer than the answers may take: a job that failed and waited for its
    # lease to run out would miss the requests' timeout
    env = queue_env(url, TAILWINDS_WORKER_LEASE_S="15")
    pair = start_cluster(tmp_path_factory, postgres_url, env, apis=1, workers=1)
    try:
        api = pair.apis[0]
        limited = {"rateLimit": {"requests": 1000, "concurrent": 50}}  # the limiter's Redis too
        chatflow_id = api.model_chatflow(mock_llm.base_url)
        requests.put(
            f"{api.url}/api/v1/chatflows/{chatflow_id}", json=limited, timeout=10
        ).raise_for_status()
        assert ask(api.url, chatflow_id, "before the restart", "warm").status_code == 200
        restart(0.3)
        results: dict[int, requests.Response] = {}

        def one(i: int) -> None:
            results[i] = ask(api.url, chatflow_id, f"after restart {i}", f"r{i}", streaming=True)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        for i in range(5):
            response = results[i]
            assert response.status_code == 200, response.text
            frames = parse_numbered(response.content)
            check_order([(name, data) for _, name, data in frames])
            assert "".join(d["token"] for _, n, d in frames if n == "token") == (
                f"You said: after restart {i}"
            )
            # run once: no first try that died on a connection from before the restart
            assert mock_llm.count_prefix(f"after restart {i}") == 1
            assert stored(api.url, chatflow_id, f"r{i}") == [
                ("userMessage", f"after restart {i}", "complete"),
                ("apiMessage", f"You said: after restart {i}", "complete"),
            ]
        # and the chats' leases work again
        question = "tokens:" + json.dumps(["x "] * 3)
        assert ask(api.url, chatflow_id, question, "r0").status_code == 200
    finally:
        pair.stop()


def test_a_job_queued_twice_runs_once(cluster: Cluster, mock_llm: MockOpenAI) -> None:
    """An enqueue sent again on a fresh connection (its first reply lost with the old one)
    queues the same message twice: it must run, stream and be stored once."""
    api = cluster.apis[0]
    chatflow_id = api.model_chatflow(mock_llm.base_url)
    settings = Settings(
        mode="queue",
        redis_url=cluster.env["TAILWINDS_REDIS_URL"],
        redis_prefix=cluster.env["TAILWINDS_REDIS_PREFIX"],
    )
    job = Job(
        chatflow_id=chatflow_id,
        message_id=str(uuid.uuid4()),
        chat_id="twice",
        session_id="twice",
        question="queued twice",
        history=None,
    )

    async def enqueue_twice() -> list[Any]:
        queue = QueueClient(settings)
        try:
            await queue.enqueue(job)
            await queue.redis.xadd(queue.keys.jobs, {b"j": job.dumps()})
            # both entries handled: the jobs stream is empty again
            for _ in range(400):
                if not await queue.redis.xlen(queue.keys.jobs):
                    break
                await asyncio.sleep(0.05)
            return await queue.redis.xrange(queue.keys.events(job.message_id))
        finally:
            await queue.redis.aclose()
            await queue.reader.reads.aclose()

    entries = asyncio.run(enqueue_twice())
    assert mock_llm.count_prefix("queued twice") == 1
    frames = parse_numbered(b"".join(fields[b"f"] for _, fields in entries))
    check_order([(name, data) for _, name, data in frames])
    assert stored(api.url, chatflow_id, "twice") == [
        ("userMessage", "queued twice", "complete"),
        ("apiMessage", "You said: queued twice", "complete"),
    ]
