"""Clients that go without saying so, in local and queue mode: one that leaves while its
non-streaming answer is made, one that stops reading its stream, and the keep-alives that
tell a proxy a silent stream is alive (resumed streams too)."""

from __future__ import annotations

import itertools
import json
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
import requests

from tests.conftest import RunningServer, start_server, stream_then_leave
from tests.integration.test_prediction_stream import wait_for_answer
from tests.integration.test_queue_mode import metric, queue_env, start_cluster
from tests.integration.test_resume import complete_part
from tests.mock_openai import MockOpenAI, Record
from tests.sse_frames import parse_numbered

KEEPALIVE_S = 0.5
WRITE_TIMEOUT_S = 2.0
ENV = {
    "TAILWINDS_KEEPALIVE_S": str(KEEPALIVE_S),
    "TAILWINDS_WRITE_TIMEOUT_S": str(WRITE_TIMEOUT_S),
    # the silences of these tests are the model's own, not faults
    "TAILWINDS_PROVIDER_IDLE_TIMEOUT_S": "20",
    "TAILWINDS_PROVIDER_FIRST_TOKEN_TIMEOUT_S": "20",
    # the frozen client's flood (6 MB) is longer than an answer may be by default
    "TAILWINDS_MAX_ANSWER_CHARS": "20000000",
}

T = TypeVar("T")


@pytest.fixture(scope="module", params=["local", "queue"])
def node(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """The API node a client talks to: Tailwinds alone, or in front of a worker."""
    if request.param == "local":
        home = tmp_path_factory.mktemp("local")
        running = start_server(home, f"sqlite+aiosqlite:///{home / 'tailwinds.db'}", **ENV)
        yield running
        running.stop()
        return
    redis_url = request.getfixturevalue("redis_url")
    postgres_url = request.getfixturevalue("postgres_url")
    cluster = start_cluster(
        tmp_path_factory, postgres_url, queue_env(redis_url, **ENV), apis=1, workers=1
    )
    yield cluster.apis[0]
    cluster.stop()


def wait_for(what: str, check: Callable[[], T | None], within_s: float = 15) -> T:
    deadline = time.monotonic() + within_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within_s} s")
        time.sleep(0.02)


def record_of(mock: MockOpenAI, text: str) -> Callable[[], Record | None]:
    def find() -> Record | None:
        try:
            return mock.find(text)
        except LookupError:
            return None

    return find


def open_request(url: str, path: str, body: dict[str, Any], rcvbuf: int = 0) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect((host, int(port)))
    payload = json.dumps(body).encode()
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    return sock


@pytest.mark.parametrize("route", ["predictions", "prediction"])
def test_a_client_that_leaves_a_non_streaming_answer_stops_its_run(
    node: RunningServer, mock_llm: MockOpenAI, route: str
) -> None:
    model = {
        "id": "m",
        "type": "chatOpenAI",
        "inputs": {"model": "paced:0.1", "baseUrl": mock_llm.base_url},
    }
    # the chatflow's resume grace is for streams: an answer that is not one stops at once
    chatflow_id = node.create_chatflow({"nodes": [model], "edges": []}, resumeGraceSeconds=30)["id"]
    marker = uuid.uuid4().hex[:8]
    tokens = [f"{marker}-{i} " for i in range(100)]
    question = "tokens:" + json.dumps(tokens)
    chat_id = f"left-{marker}"
    sock = open_request(
        node.url, f"/api/v1/{route}/{chatflow_id}", {"question": question, "chatId": chat_id}
    )
    record = wait_for("the model asked", record_of(mock_llm, marker))
    wait_for("a first token", lambda: record.last_token_at)
    sock.close()
    left_at = time.monotonic()
    wait_for("the model's request closed", lambda: record.closed_at or record.completed)
    assert not record.completed, "the model ran to its end for nobody"
    assert record.closed_at is not None and record.closed_at - left_at < 2.0
    stored = wait_for_answer(node, chatflow_id, chat_id)
    assert stored["status"] == "aborted"
    assert stored["content"].startswith(tokens[0])
    assert len(stored["content"]) < len("".join(tokens))


def test_a_client_that_stays_gets_its_non_streaming_answer(
    node: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = node.model_chatflow(mock_llm.base_url, model="paced:0.01")
    response = requests.post(
        f"{node.url}/api/v1/predictions/{chatflow_id}", json={"question": "stay"}, timeout=20
    )
    assert response.status_code == 200, response.text
    assert response.json()["text"] == "You said: stay"


def test_a_client_that_stops_reading_is_dropped_and_its_slot_freed(
    node: RunningServer, mock_llm: MockOpenAI
) -> None:
    # ~6 MB at once, more than every buffer on the way holds, then a run that goes on
    node_def = {
        "id": "m",
        "type": "chatOpenAI",
        "inputs": {"model": "flood:6000:60", "baseUrl": mock_llm.base_url},
    }
    chatflow_id = node.create_chatflow(
        {"nodes": [node_def], "edges": []}, rateLimit={"concurrent": 1}
    )["id"]
    marker = uuid.uuid4().hex[:8]
    chat_id = f"frozen-{marker}"
    dropped_before = metric(node, "tailwinds_write_timeouts_total")
    sock = open_request(
        node.url,
        f"/api/v1/predictions/{chatflow_id}",
        {"question": f"frozen {marker}", "streaming": True, "chatId": chat_id},
        rcvbuf=4096,
    )
    try:
        assert sock.recv(12) == b"HTTP/1.1 200"  # and not one byte more from now on
        record = wait_for("the model asked", record_of(mock_llm, marker))
        wait_for(
            "the frozen client dropped",
            lambda: metric(node, "tailwinds_write_timeouts_total") > dropped_before,
            within_s=40,
        )
        # the slot is free: the chatflow takes its one prediction again
        with requests.post(
            f"{node.url}/api/v1/predictions/{chatflow_id}",
            json={"question": "next", "streaming": True},
            stream=True,
            timeout=20,
        ) as other:
            assert other.status_code == 200, other.text
        stored = wait_for_answer(node, chatflow_id, chat_id)
        assert stored["status"] == "aborted"
        wait_for("the model's request closed", lambda: record.closed_at or record.completed)
        assert not record.completed
        wait_for("no stream left open", lambda: metric(node, "tailwinds_active_streams") == 0)
        # the connection was reset, not left waiting for the client to read the rest
        sock.settimeout(10)
        with pytest.raises(ConnectionResetError):
            while sock.recv(1 << 20):
                pass
    finally:
        sock.close()


def arrivals(response: requests.Response) -> list[tuple[float, bytes]]:
    """Each piece of the body with the time it came."""
    return [(time.monotonic(), chunk) for chunk in response.iter_content(chunk_size=None)]


def check_keepalives(pieces: list[tuple[float, bytes]], silence_s: float) -> None:
    """From the first token on, the silence is filled with pings, the first within about
    one keep-alive period, none further apart than that."""
    first_token = next(i for i, (_, chunk) in enumerate(pieces) if b"event: token" in chunk)
    times = [t for t, chunk in pieces[first_token:] if chunk == b": ping\n\n"]
    assert len(times) >= int(silence_s / KEEPALIVE_S) - 1, pieces
    gaps = [times[0] - pieces[first_token][0]] + [b - a for a, b in itertools.pairwise(times)]
    # the interval, with room for a busy machine; the first came 1 to 2 periods in before
    assert max(gaps) < 1.5 * KEEPALIVE_S, gaps


def test_keepalives_come_one_period_into_a_silence(
    node: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = node.model_chatflow(mock_llm.base_url, model="silent:2.5")
    with requests.post(
        f"{node.url}/api/v1/predictions/{chatflow_id}",
        json={"question": "hush", "streaming": True},
        stream=True,
        timeout=20,
    ) as response:
        assert response.status_code == 200
        pieces = arrivals(response)
    check_keepalives(pieces, 2.5)
    body = b"".join(chunk for _, chunk in pieces).decode()
    assert body.rstrip().endswith("event: end\ndata: {}")


def test_a_resumed_stream_gets_keepalives_too(node: RunningServer, mock_llm: MockOpenAI) -> None:
    chatflow_id = node.model_chatflow(mock_llm.base_url, model="silent:3")
    marker = uuid.uuid4().hex[:8]
    first = complete_part(
        stream_then_leave(
            node.url,
            f"/api/v1/predictions/{chatflow_id}",
            {"question": f"resume {marker}", "streaming": True, "resumeGraceSeconds": 10},
            tokens=1,
        )
    )
    numbered = parse_numbered(first)
    message_id = numbered[0][2]["messageId"]
    with requests.get(
        f"{node.url}/api/v1/predictions/{chatflow_id}/stream/{message_id}",
        headers={"Last-Event-ID": "1"},  # the token again, then the silence
        stream=True,
        timeout=20,
    ) as response:
        assert response.status_code == 200
        pieces = arrivals(response)
    check_keepalives(pieces, 2.0)
    assert re.search(rb"event: end\n", b"".join(chunk for _, chunk in pieces))
