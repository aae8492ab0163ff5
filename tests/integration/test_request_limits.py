"""Limits before work, over real sockets: bodies refused whatever their framing before any
route reads them, request heads bounded in size and time, connections bounded."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests

from tests.conftest import RunningServer, start_server
from tests.mock_openai import MockOpenAI
from tests.raw_http import closed_by_server, connect, read_answer, send_unfinished

MAX_BODY = 4096
MAX_UPLOAD = 16384
JSON = "Content-Type: application/json\r\n"
CHUNKED = "Transfer-Encoding: chunked\r\n"
NODE = {
    "id": "m",
    "type": "chatOpenAI",
    "inputs": {"model": "m", "baseUrl": "http://127.0.0.1:9/v1"},
}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("limits")
    running = start_server(
        home,
        f"sqlite+aiosqlite:///{home / 'tailwinds.db'}",
        TAILWINDS_MAX_BODY_BYTES=str(MAX_BODY),
        TAILWINDS_MAX_UPLOAD_BYTES=str(MAX_UPLOAD),
        TAILWINDS_MAX_HEAD_BYTES="8192",
        TAILWINDS_HEADER_TIMEOUT_S="1",
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """At most 40 connections, and a header timeout too long to be what closes them."""
    home = tmp_path_factory.mktemp("capped")
    running = start_server(
        home,
        f"sqlite+aiosqlite:///{home / 'tailwinds.db'}",
        TAILWINDS_MAX_CONNECTIONS="40",
        TAILWINDS_HEADER_TIMEOUT_S="60",
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def routes(limited: RunningServer, mock_llm: MockOpenAI) -> dict[str, str]:
    """One path of every route family that takes a body."""
    store_id = limited.create_document_store(mock_llm.base_url)
    chatflow_id = limited.retrieval_chatflow(mock_llm.base_url, store_id)
    return {
        "management": "/api/v1/chatflows",
        "prediction": f"/api/v1/predictions/{chatflow_id}",
        "flowise prediction": f"/api/v1/prediction/{chatflow_id}",
        "abort": f"/api/v1/predictions/{chatflow_id}/abort",
        "flowise abort": f"PUT /api/v1/chatmessage/abort/{chatflow_id}/chat-1",
        "resume": f"GET /api/v1/predictions/{chatflow_id}/stream/m-1",
        "export": "/api/v1/export",
        "store upsert": f"/api/v1/document-stores/{store_id}/upsert",
        "flowise upsert": f"/api/v1/vector/upsert/{chatflow_id}",
        "import": "/api/v1/import",
    }


UPLOADS = {"store upsert", "flowise upsert", "import"}


def route(routes: dict[str, str], family: str) -> tuple[str, str]:
    """(method, path) of a family: POST unless the path says otherwise."""
    method, _, path = routes[family].rpartition(" ")
    return method or "POST", path


def limit_of(family: str) -> int:
    return MAX_UPLOAD if family in UPLOADS else MAX_BODY


FAMILIES = [
    "management",
    "prediction",
    "flowise prediction",
    "abort",
    "flowise abort",
    "resume",
    "export",
    "store upsert",
    "flowise upsert",
    "import",
]


@pytest.mark.parametrize("family", FAMILIES)
def test_a_declared_length_over_the_limit_is_refused_before_the_body(
    limited: RunningServer, routes: dict[str, str], family: str
) -> None:
    length = limit_of(family) + 1
    method, path = route(routes, family)
    status, raw = send_unfinished(
        limited.url, path, f"{JSON}Content-Length: {length}\r\n", [], method
    )
    assert status == 413, raw
    body = json.loads(raw.split(b"\r\n\r\n", 1)[1])
    assert body["code"] == "payload_too_large"
    assert str(limit_of(family)) in body["error"]


# routes that take no body answer without reading one: nothing to refuse
@pytest.mark.parametrize("family", [f for f in FAMILIES if f not in ("flowise abort", "resume")])
def test_a_chunked_body_is_refused_once_it_passes_the_limit(
    limited: RunningServer, routes: dict[str, str], family: str
) -> None:
    part = b'{"documents":[' + b" " * 1000
    parts = [part] * (limit_of(family) // len(part) + 2)
    method, path = route(routes, family)
    status, raw = send_unfinished(limited.url, path, JSON + CHUNKED, parts, method)
    assert status == 413, raw
    assert json.loads(raw.split(b"\r\n\r\n", 1)[1])["code"] == "payload_too_large"


def test_a_chunked_body_under_the_limit_is_read(
    limited: RunningServer, routes: dict[str, str]
) -> None:
    sock = connect(limited.url)
    body = json.dumps({"name": "chunked", "flowData": {"nodes": [NODE]}}).encode()
    sock.sendall(
        f"POST {routes['management']} HTTP/1.1\r\nHost: 127.0.0.1\r\n{JSON}{CHUNKED}\r\n".encode()
        + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    )
    status, raw = read_answer(sock)
    sock.close()
    assert status == 201, raw


def test_a_refused_body_leaves_the_connection_usable(
    limited: RunningServer, routes: dict[str, str]
) -> None:
    """The unread rest is discarded by the server: a client that sends it whole reads its
    413, then asks again on the same connection."""
    sock = connect(limited.url)
    big = b"x" * (MAX_BODY * 4)
    sock.sendall(
        f"POST {routes['management']} HTTP/1.1\r\nHost: 127.0.0.1\r\n{JSON}"
        f"Content-Length: {len(big)}\r\n\r\n".encode()
        + big
    )
    assert read_answer(sock)[0] == 413
    sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert read_answer(sock)[0] == 200
    sock.close()


def test_an_endless_body_nobody_reads_is_not_drained_for_ever(
    limited: RunningServer, routes: dict[str, str]
) -> None:
    """The resume route reads no body and answers at once; what the client goes on sending
    is dropped up to a bound (64 MiB), then the connection is closed."""
    _, path = route(routes, "resume")
    sock = connect(limited.url)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{CHUNKED}\r\n".encode())
    block = b"%x\r\n%s\r\n" % (1 << 20, b"z" * (1 << 20))
    sent = 0
    with pytest.raises(OSError):
        for _ in range(256):  # 256 MiB at most
            sock.sendall(block)
            sent += 1
    sock.close()
    assert 64 <= sent < 256


def test_an_endless_header_is_cut_at_the_head_limit(limited: RunningServer) -> None:
    sock = connect(limited.url)
    sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: ")
    answered = b""
    try:
        for _ in range(64):  # up to 4 MiB; the server answers after 8 KiB
            sock.sendall(b"a" * 65536)
    except OSError:
        pass  # closed while we were still sending: the answer may be lost, the point holds
    try:
        answered = read_answer(sock)[1]
    except OSError:
        answered = b""
    sock.close()
    assert answered == b"" or answered.startswith(b"HTTP/1.1 431"), answered[:200]
    assert requests.get(f"{limited.url}/api/v1/health", timeout=5).status_code == 200


def test_a_long_request_line_is_cut_too(limited: RunningServer) -> None:
    sock = connect(limited.url)
    sock.sendall(b"GET /" + b"a" * 9000)
    status, raw = read_answer(sock)
    assert status == 431, raw
    assert json.loads(raw.split(b"\r\n\r\n", 1)[1])["code"] == "head_too_large"
    assert closed_by_server(sock)
    sock.close()


def test_a_head_under_the_limit_with_a_body_in_the_same_packet_is_served(
    limited: RunningServer, routes: dict[str, str]
) -> None:
    """The head is counted, not the body bytes that came with it."""
    body = json.dumps({"name": "p" * 3000, "flowData": {"nodes": [NODE]}}).encode()
    head = (
        f"POST {routes['management']} HTTP/1.1\r\nHost: 127.0.0.1\r\n{JSON}X-Pad: {'p' * 6000}\r\n"
    )
    sock = connect(limited.url)
    sock.sendall(head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    status, raw = read_answer(sock)
    sock.close()
    assert status == 400, raw  # name is too long: the route read it, the head was fine


def test_a_head_not_finished_in_time_is_answered_408_and_closed(limited: RunningServer) -> None:
    sock = connect(limited.url)
    sock.sendall(b"POST /api/v1/predictions/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    started = time.monotonic()
    status, raw = read_answer(sock)  # blocks until the server's header timeout (1 s)
    assert status == 408, raw
    assert json.loads(raw.split(b"\r\n\r\n", 1)[1])["code"] == "header_timeout"
    assert closed_by_server(sock)
    assert time.monotonic() - started < 10
    sock.close()


def test_a_connection_that_sends_nothing_is_closed(limited: RunningServer) -> None:
    sock = connect(limited.url)
    assert closed_by_server(sock)  # within the 10 s socket timeout: the header timeout
    sock.close()


def test_half_open_connections_past_the_cap_do_not_lock_clients_out(
    capped: RunningServer,
) -> None:
    held = []
    try:
        for _ in range(80):  # twice the cap of 40
            sock = connect(capped.url, timeout_s=5)
            sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            held.append(sock)
        # each new connection past the cap closed the oldest half-open one
        for sock in held[:40]:
            assert closed_by_server(sock)
        assert requests.get(f"{capped.url}/api/v1/health", timeout=5).status_code == 200
        # and the legitimate request displaced the oldest still held
        assert closed_by_server(held[40])
    finally:
        for sock in held:
            sock.close()
