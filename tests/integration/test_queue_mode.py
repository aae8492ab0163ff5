"""Queue mode with real processes: two API nodes and two workers on the machine's Redis and
PostgreSQL; every stream whole and in order, resume and abort across nodes, lost workers,
limits, and no leaks."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tailwinds.client import Tailwinds
from tests.conftest import (
    RunningServer,
    RunningWorker,
    start_server,
    start_worker,
    stream_then_leave,
)
from tests.cutting_proxy import CuttingProxy
from tests.integration.test_prediction_stream import wait_for_answer
from tests.integration.test_resume import complete_part
from tests.mock_openai import MockOpenAI
from tests.requirements import require_command
from tests.sse_frames import check_order, numbered_tokens, parse_numbered
from tests.turns import stored_turn


@dataclass
class Cluster:
    apis: list[RunningServer]
    workers: list[RunningWorker]
    env: dict[str, str]

    def stop(self) -> None:
        import redis

        for process in [*self.apis, *self.workers]:
            process.stop()
        # leave the machine's Redis as it was
        with redis.Redis.from_url(self.env["TAILWINDS_REDIS_URL"]) as client:
            try:
                pattern = f"{self.env['TAILWINDS_REDIS_PREFIX']}:*"
                for key in client.scan_iter(pattern, count=1000):
                    client.delete(key)
            except redis.RedisError:
                pass  # a test's own Redis, already stopped


def queue_env(redis_url: str, **extra: str) -> dict[str, str]:
    return {
        "TAILWINDS_MODE": "queue",
        "TAILWINDS_REDIS_URL": redis_url,
        "TAILWINDS_REDIS_PREFIX": f"twtest-{uuid.uuid4().hex[:8]}",
        "TAILWINDS_WORKER_LEASE_S": "1.5",
        "TAILWINDS_PROVIDER_FIRST_TOKEN_TIMEOUT_S": "20",
        **extra,
    }


def start_cluster(
    tmp_path_factory: pytest.TempPathFactory,
    database_url: str,
    env: dict[str, str],
    apis: int = 2,
    workers: int = 2,
    concurrency: int = 150,
) -> Cluster:
    home = tmp_path_factory.mktemp("queue")
    cluster = Cluster([], [], env)
    try:
        for i in range(apis):
            cluster.apis.append(start_server(home, database_url, f"api-{i}.log", **env))
        for _ in range(workers):
            worker = start_worker(home, database_url, "--concurrency", str(concurrency), **env)
            cluster.workers.append(worker)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, redis_url: str
) -> Iterator[Cluster]:
    running = start_cluster(tmp_path_factory, postgres_url, queue_env(redis_url))
    yield running
    running.stop()


def stream(api: RunningServer, chatflow_id: str, question: str, **body: Any) -> bytes:
    response = requests.post(
        f"{api.url}/api/v1/predictions/{chatflow_id}",
        json={"question": question, "streaming": True, **body},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response.content


def metric(api: RunningServer, name: str) -> float:
    text = requests.get(f"{api.url}/metrics", timeout=5).text
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    assert match is not None, f"no {name} in /metrics"
    return float(match.group(1))


def test_two_hundred_streams_through_two_nodes_arrive_whole_in_order_once(
    cluster: Cluster, mock_llm: MockOpenAI
) -> None:
    a, b = cluster.apis
    chatflow_id = a.model_chatflow(mock_llm.base_url, model="paced:0.01")
    tasks_before = [metric(api, "tailwinds_asyncio_tasks") for api in cluster.apis]

    def one(i: int) -> tuple[int, list[tuple[int | None, str, Any]]]:
        tokens = [f"q{i}-{j} " for j in range(20)]
        raw = stream(cluster.apis[i % 2], chatflow_id, "tokens:" + json.dumps(tokens))
        return i, parse_numbered(raw)

    with ThreadPoolExecutor(200) as pool:
        results = list(pool.map(one, range(200)))
    for i, frames in results:
        check_order([(name, data) for _, name, data in frames])
        assert [n for n, _, _ in frames] == list(range(1, len(frames) + 1))
        assert [d["token"] for _, name, d in frames if name == "token"] == [
            f"q{i}-{j} " for j in range(20)
        ]
    sample = results[7][1]
    stored = wait_for_answer(b, chatflow_id, sample[0][2]["chatId"])
    assert stored["status"] == "complete"
    assert stored["content"] == "".join(f"q7-{j} " for j in range(20))
    # nothing left behind: no relay subscription, no more tasks than before
    for api, before in zip(cluster.apis, tasks_before, strict=True):
        assert metric(api, "tailwinds_event_subscriptions") == 0
        assert metric(api, "tailwinds_asyncio_tasks") <= before + 2


def test_a_stream_quiet_for_longer_than_a_blocking_read_goes_on(
    cluster: Cluster, mock_llm: MockOpenAI
) -> None:
    # the model says nothing for 6.5 s: longer than one XREAD BLOCK and than redis-py's
    # default socket timeout, which once cut such streams with transport_lost
    api = cluster.apis[0]
    chatflow_id = api.model_chatflow(mock_llm.base_url, model="slowstart:6.5")
    frames = parse_numbered(stream(api, chatflow_id, "take your time"))
    check_order([(name, data) for _, name, data in frames])
    assert numbered_tokens(frames) == "You said: take your time"


def test_non_streaming_answers_come_from_a_worker(cluster: Cluster, mock_llm: MockOpenAI) -> None:
    api = cluster.apis[1]
    chatflow_id = api.model_chatflow(mock_llm.base_url)
    response = requests.post(
        f"{api.url}/api/v1/predictions/{chatflow_id}", json={"question": "queued?"}, timeout=20
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["text"] == "You said: queued?"
    assert answer["chatflowId"] == chatflow_id
    # and the conversation goes on with its history, read by a worker
    again = requests.post(
        f"{api.url}/api/v1/predictions/{chatflow_id}",
        json={"question": "and now?", "chatId": answer["chatId"]},
        timeout=20,
    ).json()
    record = mock_llm.find("and now?")
    assert [m["content"] for m in record.body["messages"]][-3:] == [
        "queued?",
        "You said: queued?",
        "and now?",
    ]
    assert again["chatId"] == answer["chatId"]


def test_resume_on_the_other_node_after_a_dropped_connection(
    cluster: Cluster, mock_llm: MockOpenAI
) -> None:
    a, b = cluster.apis
    chatflow_id = a.model_chatflow(mock_llm.base_url, model="paced:0.02")
    tokens = [f"x{i} " for i in range(40)]
    first = parse_numbered(
        complete_part(
            stream_then_leave(
                a.url,
                f"/api/v1/predictions/{chatflow_id}",
                {
                    "question": "tokens:" + json.dumps(tokens),
                    "streaming": True,
                    "resumeGraceSeconds": 10,
                },
                tokens=5,
            )
        )
    )
    start = first[0][2]
    time.sleep(0.2)
    response = requests.get(
        f"{b.url}/api/v1/predictions/{chatflow_id}/stream/{start['messageId']}",
        headers={"Last-Event-ID": str(first[-1][0])},
        timeout=20,
    )
    assert response.status_code == 200
    whole = first + parse_numbered(response.content)
    assert [n for n, _, _ in whole] == list(range(1, len(whole) + 1))
    check_order([(name, data) for _, name, data in whole])
    assert numbered_tokens(whole) == "".join(tokens)
    assert wait_for_answer(b, chatflow_id, start["chatId"])["status"] == "complete"
    # ended: resuming after its last event is a 204 on any node (an EventSource stops)
    for api in (a, b):
        ended = requests.get(
            f"{api.url}/api/v1/predictions/{chatflow_id}/stream/{start['messageId']}",
            headers={"Last-Event-ID": str(whole[-1][0])},
            timeout=20,
        )
        assert ended.status_code == 204 and ended.content == b""


def test_a_disconnect_without_grace_stops_the_run_on_the_worker(
    cluster: Cluster, mock_llm: MockOpenAI
) -> None:
    api = cluster.apis[0]
    chatflow_id = api.model_chatflow(mock_llm.base_url, model="paced:0.05")
    tokens = [f"d{i} " for i in range(100)]
    raw = stream_then_leave(
        api.url,
        f"/api/v1/predictions/{chatflow_id}",
        {"question": "tokens:" + json.dumps(tokens), "streaming": True},
        tokens=3,
    )
    left_at = time.monotonic()
    start = parse_numbered(complete_part(raw))[0][2]
    record = mock_llm.find("tokens:" + json.dumps(tokens))
    while record.closed_at is None and time.monotonic() < left_at + 5:
        time.sleep(0.02)
    assert record.closed_at is not None and not record.completed
    assert record.closed_at - left_at < 1.0
    assert wait_for_answer(api, chatflow_id, start["chatId"])["status"] == "aborted"


def test_abort_through_one_node_while_the_other_holds_the_stream(
    cluster: Cluster, mock_llm: MockOpenAI
) -> None:
    a, b = cluster.apis
    chatflow_id = a.model_chatflow(mock_llm.base_url, model="paced:0.05")
    tokens = [f"z{i} " for i in range(100)]
    chat_id = f"abort-{uuid.uuid4().hex[:6]}"
    raw = bytearray()
    aborted: dict[str, Any] | None = None
    abort_sent = 0.0
    ended = 0.0
    with requests.post(
        f"{b.url}/api/v1/predictions/{chatflow_id}",
        json={"question": "tokens:" + json.dumps(tokens), "streaming": True, "chatId": chat_id},
        stream=True,
        timeout=20,
    ) as response:
        for chunk in response.iter_content(chunk_size=None):
            raw += chunk
            if aborted is None and raw.count(b"event: token") >= 3:
                abort_sent = time.monotonic()
                aborted = requests.post(
                    f"{a.url}/api/v1/predictions/{chatflow_id}/abort",
                    json={"chatId": chat_id},
                    timeout=5,
                ).json()
        ended = time.monotonic()
    assert aborted == {"chatId": chat_id, "aborted": 1}
    assert ended - abort_sent < 1.0, "the abort reached the worker within a second"
    frames = parse_numbered(bytes(raw))
    assert frames[-2][1:] == ("error", {"error": "The prediction was aborted.", "code": "aborted"})
    stored = wait_for_answer(a, chatflow_id, chat_id)
    assert stored["status"] == "aborted"
    assert stored["content"] == numbered_tokens(frames)


def test_queue_limits_and_the_worker_memory_bound(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,
    redis_url: str,
    mock_llm: MockOpenAI,
) -> None:
    # no worker: jobs wait, and the fourth of a chatflow is one too many
    env = queue_env(redis_url, TAILWINDS_QUEUE_MAX_PER_CHATFLOW="3")
    small = start_cluster(tmp_path_factory, postgres_url, env, apis=1, workers=0)
    try:
        api = small.apis[0]
        chatflow_id = api.model_chatflow(mock_llm.base_url)
        held = [
            requests.post(
                f"{api.url}/api/v1/predictions/{chatflow_id}",
                json={"question": "wait", "streaming": True},
                stream=True,
                timeout=10,
            )
            for _ in range(3)
        ]
        over = requests.post(
            f"{api.url}/api/v1/predictions/{chatflow_id}",
            json={"question": "one more", "streaming": True},
            timeout=10,
        )
        assert over.status_code == 429
        assert over.json()["code"] == "queue_full"
        assert metric(api, "tailwinds_queue_depth") == 3
        assert over.headers["retry-after"] == "1"
        for response in held:
            response.close()
        other = api.model_chatflow(mock_llm.base_url)
        ok = requests.post(
            f"{api.url}/api/v1/predictions/{other}",
            json={"question": "another chatflow", "streaming": True},
            stream=True,
            timeout=10,
        )
        assert ok.status_code == 200
        ok.close()

        # a worker over its memory bound takes no job; one under it does
        chatflow_id = api.model_chatflow(mock_llm.base_url, model="echo")
        small.workers.append(
            start_worker(api.home, postgres_url, **env, TAILWINDS_WORKER_MAX_RSS_MB="1")
        )
        question = f"memory bound {uuid.uuid4().hex[:6]}"
        result: dict[str, bytes] = {}
        thread = threading.Thread(
            target=lambda: result.update(raw=stream(api, chatflow_id, question))
        )
        thread.start()
        time.sleep(1.5)
        assert mock_llm.count_prefix(question) == 0, "a worker over its bound took the job"
        small.workers.append(start_worker(api.home, postgres_url, **env))
        thread.join(20)
        frames = parse_numbered(result["raw"])
        assert numbered_tokens(frames) == f"You said: {question}"
    finally:
        small.stop()


def replace_worker(cluster: Cluster, home: Path, database_url: str) -> None:
    """SIGKILL the first worker (no goodbye of any kind), start a new one."""
    cluster.workers[0].process.send_signal(signal.SIGKILL)
    cluster.workers[0].process.wait(5)
    cluster.workers.append(start_worker(home, database_url, **cluster.env))


@pytest.fixture
def pair(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, redis_url: str
) -> Iterator[Cluster]:
    """One API node and one worker with a one-second lease, for tests that kill it."""
    env = queue_env(redis_url, TAILWINDS_WORKER_LEASE_S="1")
    running = start_cluster(tmp_path_factory, postgres_url, env, apis=1, workers=1)
    yield running
    running.stop()


def test_a_killed_worker_is_replaced_and_nothing_hangs(
    pair: Cluster, postgres_url: str, mock_llm: MockOpenAI
) -> None:
    api = pair.apis[0]
    chatflow_id = api.model_chatflow(mock_llm.base_url, model="paced:0.05")
    results: dict[int, bytes] = {}
    under_way = [threading.Event() for _ in range(6)]

    def one(i: int) -> None:
        tokens = [f"k{i}-{j} " for j in range(60)]
        response = requests.post(
            f"{api.url}/api/v1/predictions/{chatflow_id}",
            json={"question": "tokens:" + json.dumps(tokens), "streaming": True, "chatId": f"k{i}"},
            stream=True,
            timeout=60,
        )
        body = b""
        for chunk in response.iter_content(None):
            body += chunk
            if body.count(b"event: token") >= 3:  # a few tokens are out
                under_way[i].set()
        results[i] = body

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for event in under_way:
        assert event.wait(20), "a stream sent no tokens before its worker was killed"
    replace_worker(pair, api.home, postgres_url)
    for thread in threads:
        thread.join(30)
        assert not thread.is_alive(), "a stream hung after its worker died"
    for i in range(6):
        frames = parse_numbered(results[i])
        check_order([(name, data) for _, name, data in frames])
        assert frames[-2][2]["code"] == "worker_lost"
        said = numbered_tokens(frames)
        stored = wait_for_answer(api, chatflow_id, f"k{i}")
        assert stored["status"] == "error"
        assert stored["content"] == said
    # the new worker takes new jobs
    fresh = parse_numbered(stream(api, chatflow_id, 'tokens:["alive"]'))
    assert [d["token"] for _, n, d in fresh if n == "token"] == ["alive"]


def test_a_job_whose_worker_died_before_answering_runs_again(
    pair: Cluster, postgres_url: str, mock_llm: MockOpenAI
) -> None:
    api = pair.apis[0]
    # the model is slow to start: the worker dies before the first token
    chatflow_id = api.model_chatflow(mock_llm.base_url, model="slowstart:1.5")
    result: dict[str, bytes] = {}
    thread = threading.Thread(
        target=lambda: result.update(raw=stream(api, chatflow_id, "again please"))
    )
    thread.start()
    deadline = time.monotonic() + 10
    while mock_llm.count_prefix("again please") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    replace_worker(pair, api.home, postgres_url)
    thread.join(30)
    frames = parse_numbered(result["raw"])
    check_order([(name, data) for _, name, data in frames])
    assert numbered_tokens(frames) == "You said: again please"
    assert mock_llm.count_prefix("again please") == 2


@pytest.fixture
def own_redis(tmp_path: Any, redis_url: str) -> Iterator[tuple[str, Any]]:
    """A redis-server of this test's own, on another port, that the test may restart."""
    import subprocess

    binary = require_command(
        "redis-server", "`apt-get install redis-server` (scripts/install-test-deps)"
    )
    from tests.conftest import free_port

    port = free_port()
    command = [binary, "--port", str(port), "--save", "", "--appendonly", "no"]

    def launch() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL)
        import redis

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with redis.Redis(port=port) as probe:
                    probe.ping()
                return process
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    holder = {"process": launch()}

    def restart(down_s: float) -> None:
        holder["process"].terminate()
        holder["process"].wait(10)
        time.sleep(down_s)
        holder["process"] = launch()

    yield f"redis://127.0.0.1:{port}/0", restart
    holder["process"].terminate()
    holder["process"].wait(10)


def test_a_redis_restart_ends_streams_cleanly_and_service_comes_back(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,
    own_redis: tuple[str, Any],
    mock_llm: MockOpenAI,
) -> None:
    url, restart = own_redis
    pair = start_cluster(tmp_path_factory, postgres_url, queue_env(url), apis=1, workers=1)
    try:
        api = pair.apis[0]
        chatflow_id = api.model_chatflow(mock_llm.base_url, model="paced:0.05")
        results: dict[int, bytes] = {}

        tag = uuid.uuid4().hex[:8]

        def one(i: int) -> None:
            tokens = [f"rr{i}-{j} " for j in range(100)]
            question = "tokens:" + json.dumps(tokens)
            results[i] = stream(api, chatflow_id, question, chatId=f"{tag}-{i}")

        threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while mock_llm.count_prefix('tokens:["rr') < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        restart(0.5)
        for thread in threads:
            thread.join(15)
            assert not thread.is_alive(), "a stream hung when Redis went away"
        for i in range(3):
            frames = parse_numbered(results[i])
            check_order([(name, data) for _, name, data in frames])
            assert frames[-2][2]["code"] == "transport_lost"
        # API node and worker reconnect by themselves: the next request works
        frames = parse_numbered(stream(api, chatflow_id, 'tokens:["back"]'))
        assert [d["token"] for _, n, d in frames if n == "token"] == ["back"], frames
        assert metric(api, "tailwinds_event_subscriptions") == 0
        # Redis lost the runs' streams: the worker stopped the runs, it did not let them
        # finish unseen (they would have, 5 s after they began)
        for i in range(3):
            turn = stored_turn(api.url, chatflow_id, f"{tag}-{i}", timeout=15)
            assert turn[1][2] == "error", turn
    finally:
        pair.stop()


@pytest.fixture
def nginx_in_front(cluster: Cluster, tmp_path: Path) -> Iterator[str]:
    """deploy/nginx.conf as shipped, its upstreams pointed at the cluster's API nodes."""
    nginx = require_command("nginx", "`apt-get install nginx-light` (scripts/install-test-deps)")
    from tests.conftest import free_port

    port = free_port()
    site = (Path(__file__).parents[2] / "deploy" / "nginx.conf").read_text()
    a, b = (api.url.removeprefix("http://") for api in cluster.apis)
    site = site.replace("server api1:3000;", f"server {a};")
    site = site.replace("server api2:3000;", f"server {b};")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    assert a in site and b in site and str(port) in site
    temp = "\n".join(
        f"{kind}_temp_path {tmp_path / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"daemon off;\npid {tmp_path / 'nginx.pid'};\nerror_log {tmp_path / 'error.log'};\n"
        f"events {{}}\nhttp {{\naccess_log off;\n{temp}\n{site}\n}}\n"
    )
    process = subprocess.Popen([nginx, "-c", str(conf), "-p", str(tmp_path)])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/api/v1/ping", timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(10)


def test_through_the_shipped_nginx_tokens_are_not_buffered_and_streams_resume(
    cluster: Cluster, nginx_in_front: str, mock_llm: MockOpenAI
) -> None:
    chatflow_id = cluster.apis[0].model_chatflow(mock_llm.base_url, model="paced:0.05")
    tokens = [f"n{i} " for i in range(20)]
    question = "tokens:" + json.dumps(tokens)
    first_at = None
    raw = bytearray()
    with requests.post(
        f"{nginx_in_front}/api/v1/predictions/{chatflow_id}",
        json={"question": question, "streaming": True},
        stream=True,
        timeout=20,
    ) as response:
        assert response.status_code == 200
        for chunk in response.iter_content(chunk_size=None):
            raw += chunk
            if first_at is None and b"event: token" in raw:
                first_at = time.monotonic()
    record = mock_llm.find(question)
    assert first_at is not None and record.last_token_at is not None
    assert first_at < record.last_token_at, "nginx held the tokens back"
    assert "".join(d["token"] for _, n, d in parse_numbered(bytes(raw)) if n == "token") == (
        "".join(tokens)
    )

    # the SDK resumes through the balancer, on whichever node it lands
    proxy = CuttingProxy(int(nginx_in_front.rsplit(":", 1)[1]), cut_after=4)
    answer = [f"m{i} " for i in range(20)]
    try:
        with (
            Tailwinds(proxy.url) as client,
            client.stream(chatflow_id, "tokens:" + json.dumps(answer)) as stream,
        ):
            assert stream.text() == "".join(answer)
        assert proxy.connections == 2
    finally:
        proxy.close()


def test_rate_limits_are_counted_across_api_nodes(cluster: Cluster, mock_llm: MockOpenAI) -> None:
    a, b = cluster.apis
    node = {
        "id": "m",
        "type": "chatOpenAI",
        "inputs": {"model": "echo", "baseUrl": mock_llm.base_url},
    }
    windowed = a.create_chatflow({"nodes": [node]}, rateLimit={"requests": 2, "windowS": 60})["id"]
    for api in (a, b):
        assert requests.post(
            f"{api.url}/api/v1/predictions/{windowed}", json={"question": "n"}, timeout=10
        ).ok
    refused = requests.post(
        f"{a.url}/api/v1/predictions/{windowed}", json={"question": "n"}, timeout=10
    )
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60

    slow = dict(node, inputs={"model": "paced:0.05", "baseUrl": mock_llm.base_url})
    single = a.create_chatflow({"nodes": [slow]}, rateLimit={"concurrent": 1})["id"]
    with requests.post(
        f"{a.url}/api/v1/predictions/{single}",
        json={"question": 'tokens:["a","b","c","d"]', "streaming": True},
        stream=True,
        timeout=10,
    ) as first:
        assert first.status_code == 200
        second = requests.post(
            f"{b.url}/api/v1/predictions/{single}", json={"question": "two"}, timeout=10
        )
        assert second.status_code == 429, "the running slot is held on node A, seen on B"
        first.content  # noqa: B018  (read to the end)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        after = requests.post(
            f"{b.url}/api/v1/predictions/{single}", json={"question": "three"}, timeout=10
        )
        if after.status_code == 200:
            break
        time.sleep(0.1)
    assert after.status_code == 200, "the slot came back when the stream ended"


def test_the_request_id_reaches_the_worker_log(cluster: Cluster, mock_llm: MockOpenAI) -> None:
    api = cluster.apis[0]
    chatflow_id = api.model_chatflow(mock_llm.base_url)
    answer = requests.post(
        f"{api.url}/api/v1/predictions/{chatflow_id}",
        json={"question": "trace me"},
        headers={"X-Request-ID": "queue-trace-7"},
        timeout=10,
    )
    assert answer.headers["x-request-id"] == "queue-trace-7"
    message_id = answer.json()["messageId"]
    deadline = time.monotonic() + 5
    found: list[str] = []
    while not found and time.monotonic() < deadline:
        found = [
            line
            for worker in cluster.workers
            for line in worker.log().splitlines()
            if message_id in line
        ]
        time.sleep(0.05)
    assert found and "[queue-trace-7]" in found[0], found


def test_an_api_node_shutting_down_ends_its_streams_and_the_runs_go_on(
    cluster: Cluster, mock_llm: MockOpenAI, tmp_path: Path, postgres_url: str
) -> None:
    leaving = start_server(
        tmp_path, postgres_url, "leaving.log", **cluster.env, TAILWINDS_SHUTDOWN_GRACE_S="0.5"
    )
    chatflow_id = leaving.model_chatflow(mock_llm.base_url, model="paced:0.05")
    tokens = [f"s{i} " for i in range(40)]
    raw = bytearray()
    with requests.post(
        f"{leaving.url}/api/v1/predictions/{chatflow_id}",
        json={"question": "tokens:" + json.dumps(tokens), "streaming": True, "chatId": "leaving"},
        stream=True,
        timeout=20,
    ) as response:
        for chunk in response.iter_content(chunk_size=None):
            raw += chunk
            if raw.count(b"event: token") >= 3 and leaving.process.returncode is None:
                leaving.process.send_signal(signal.SIGTERM)
    assert leaving.process.wait(15) == 0
    frames = parse_numbered(bytes(raw))
    check_order([(name, data) for _, name, data in frames])
    assert frames[-2][2]["code"] == "server_shutdown"
    # the run was on a worker: it finishes and is stored whole
    stored = wait_for_answer(cluster.apis[0], chatflow_id, "leaving")
    deadline = time.monotonic() + 10
    while stored["content"] != "".join(tokens) and time.monotonic() < deadline:
        time.sleep(0.2)
        stored = wait_for_answer(cluster.apis[0], chatflow_id, "leaving")
    assert stored["status"] == "complete" and stored["content"] == "".join(tokens)
