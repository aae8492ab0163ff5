"""Request bodies bounded in time, over real sockets: a body that stalls or trickles is
answered 408 and closed; at the connection cap, connections still sending a body make
room like half-open heads, while a request being answered (a stream) is never closed."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time
from collections.abc import Iterator

import pytest
import requests

from tests.conftest import RunningServer, start_server
from tests.mock_openai import MockOpenAI
from tests.raw_http import closed_by_server, connect, read_answer

JSON = "Content-Type: application/json\r\n"
NODE = {
    "id": "m",
    "type": "chatOpenAI",
    "inputs": {"model": "m", "baseUrl": "http://127.0.0.1:9/v1"},
}
MIN_RATE = 2000  # bytes/s
CAP = 8


@pytest.fixture(scope="module")
def timed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("bodies")
    running = start_server(
        home,
        f"sqlite+aiosqlite:///{home / 'tailwinds.db'}",
        TAILWINDS_BODY_TIMEOUT_S="1",
        TAILWINDS_BODY_MIN_RATE=str(MIN_RATE),
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A few connections, and head and body timeouts too long to be what closes them."""
    home = tmp_path_factory.mktemp("bodies-capped")
    running = start_server(
        home,
        f"sqlite+aiosqlite:///{home / 'tailwinds.db'}",
        TAILWINDS_MAX_CONNECTIONS=str(CAP),
        TAILWINDS_HEADER_TIMEOUT_S="60",
        TAILWINDS_BODY_TIMEOUT_S="60",
        TAILWINDS_BODY_MIN_RATE="0",
        TAILWINDS_PROVIDER_IDLE_TIMEOUT_S="60",
    )
    yield running
    running.stop()


def post_head(sock: socket.socket, length: int, path: str = "/api/v1/chatflows") -> None:
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{JSON}".encode()
        + f"Content-Length: {length}\r\n\r\n".encode()
    )


def assert_body_timeout(sock: socket.socket) -> None:
    status, raw = read_answer(sock)
    assert status == 408, raw
    assert json.loads(raw.split(b"\r\n\r\n", 1)[1])["code"] == "body_timeout"
    assert closed_by_server(sock)


def test_a_body_that_never_comes_is_answered_408_and_closed(timed: RunningServer) -> None:
    sock = connect(timed.url)
    post_head(sock, 50)
    assert_body_timeout(sock)  # within the 10 s socket timeout: the 1 s body timeout
    sock.close()
    # the route waiting for the body learns the client is gone: no error of the server
    assert requests.get(f"{timed.url}/api/v1/health", timeout=5).status_code == 200
    assert "Traceback" not in timed.log(), timed.log()[-3000:]


def test_a_body_that_stops_midway_is_answered_408(timed: RunningServer) -> None:
    sock = connect(timed.url)
    post_head(sock, 50)
    sock.sendall(b'{"name": "half')
    assert_body_timeout(sock)
    sock.close()


def test_a_chunked_body_that_stalls_is_answered_408(timed: RunningServer) -> None:
    sock = connect(timed.url)
    sock.sendall(
        f"POST /api/v1/chatflows HTTP/1.1\r\nHost: 127.0.0.1\r\n{JSON}"
        'Transfer-Encoding: chunked\r\n\r\n5\r\n{"nam\r\n'.encode()
    )
    assert_body_timeout(sock)
    sock.close()


def test_a_body_trickled_below_the_minimum_rate_is_answered_408(timed: RunningServer) -> None:
    """One byte every 50 ms always progresses (no gap near the 1 s timeout) but far below
    the minimum rate: the allowance (1 s + bytes / rate) runs out within a few seconds."""
    sock = connect(timed.url)
    post_head(sock, 100_000)
    sent = 0
    for _ in range(400):  # 20 s at most
        if select.select([sock], [], [], 0.05)[0]:
            break  # the server answered
        try:
            sock.sendall(b" ")
        except OSError:
            break
        sent += 1
    assert sent < 400
    assert_body_timeout(sock)
    sock.close()


def test_a_body_sent_after_its_head_is_read(timed: RunningServer) -> None:
    """A body in its own packets after the head: the timer runs, the request is served."""
    body = json.dumps({"name": "later", "flowData": {"nodes": [NODE]}}).encode()
    sock = connect(timed.url)
    post_head(sock, len(body))
    for i in range(0, len(body), 16):
        sock.sendall(body[i : i + 16])
    status, raw = read_answer(sock)
    assert status == 201, raw
    # the connection goes on: the timer does not fire on the next (idle) wait as a body
    sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert read_answer(sock)[0] == 200
    sock.close()


def test_slow_bodies_at_the_cap_make_room_but_a_stream_is_never_closed(
    capped: RunningServer, mock_llm: MockOpenAI
) -> None:
    # the first token, then 8 s of silence (the mock must be done before its own stop,
    # which waits 10 s): a stream being answered all through the evictions
    chatflow_id = capped.model_chatflow(mock_llm.base_url, model="silent:8")
    stream = connect(capped.url)
    question = json.dumps({"question": "hold", "streaming": True}).encode()
    post_head(stream, len(question), f"/api/v1/predictions/{chatflow_id}")
    stream.sendall(question)
    received = b""
    while b"event:" not in received:  # its answer has begun
        chunk = stream.recv(65536)
        assert chunk, received
        received += chunk
    held: list[socket.socket] = []
    try:
        for _ in range(2 * CAP):
            sock = connect(capped.url, timeout_s=5)
            post_head(sock, 100)
            sock.sendall(b"{")  # its body begun, never finished
            held.append(sock)
        # each new connection past the cap closed the oldest one still sending its body
        for sock in held[: CAP + 1]:
            assert closed_by_server(sock)
        response = requests.get(f"{capped.url}/api/v1/health", timeout=5)
        assert response.status_code == 200
        assert closed_by_server(held[CAP + 1])  # the legitimate request made room too
        # evictions are made at once on admission: had the stream been chosen, it would be
        # closed by now; it is open (data or nothing, not the end)
        stream.settimeout(0.2)
        with contextlib.suppress(TimeoutError):
            assert stream.recv(65536) != b""
    finally:
        stream.close()
        for sock in held:
            sock.close()
    started = time.monotonic()
    assert requests.get(f"{capped.url}/api/v1/health", timeout=5).status_code == 200
    assert time.monotonic() - started < 5
