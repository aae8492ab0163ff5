"""The embedded local model (the packaged default, through llama.cpp), for real: first start, a
streamed answer, a disconnect that stops generation, and the bounded queue."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tailwinds.providers.llama_cpp import local_model_available
from tests.conftest import RunningServer, start_server, stream_then_leave
from tests.integration.test_client_gone import wait_for
from tests.integration.test_prediction_stream import wait_for_answer
from tests.integration.test_queue_mode import metric
from tests.requirements import missing
from tests.sse_frames import check_order, parse_frames, tokens_of

COUNTING = "Count to one hundred: " + ", ".join(str(i) for i in range(1, 21)) + ","


@pytest.fixture(scope="module")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    if not local_model_available():
        missing("the local model extra", "pip install -e '.[local]'")
    home: Path = tmp_path_factory.mktemp("local")
    server = start_server(
        home, f"sqlite+aiosqlite:///{home / 't.db'}", TAILWINDS_LOCAL_MODEL_QUEUE="1"
    )
    yield server
    server.stop()


def local_chatflow(server: RunningServer, **inputs: Any) -> str:
    node = {"id": "local_0", "type": "chatLocal", "inputs": {"temperature": 0, **inputs}}
    return server.create_chatflow({"nodes": [node]})["id"]


def test_first_start_creates_a_local_chatflow_whose_curl_line_works(
    local_server: RunningServer,
) -> None:
    chatflows = requests.get(f"{local_server.url}/api/v1/chatflows", timeout=5).json()
    assert chatflows[0]["name"] == "Local assistant"
    assert chatflows[0]["flowData"]["nodes"][0]["type"] == "chatLocal"
    match = re.search(r"^\s+(curl -N .+)$", local_server.log(), flags=re.M)
    assert match, local_server.log()
    assert chatflows[0]["id"] in match.group(1)
    result = subprocess.run(
        ["bash", "-c", match.group(1)], capture_output=True, timeout=120, check=True
    )
    frames = parse_frames(result.stdout)
    check_order(frames)
    assert tokens_of(frames).strip()


def test_answer_streams_token_by_token(local_server: RunningServer) -> None:
    chatflow_id = local_chatflow(local_server, maxTokens=40)
    arrivals: list[float] = []
    raw = bytearray()
    with requests.post(
        f"{local_server.url}/api/v1/predictions/{chatflow_id}",
        json={"question": COUNTING, "streaming": True},
        stream=True,
        timeout=120,
    ) as response:
        for chunk in response.iter_content(chunk_size=None):
            raw += chunk
            arrivals.extend(time.monotonic() for _ in range(chunk.count(b"event: token")))
    frames = parse_frames(bytes(raw))
    check_order(frames)
    assert len(arrivals) >= 10
    # tokens arrived as they were made, over time, not in one burst at the end
    assert arrivals[-1] - arrivals[0] > 0.05
    usage = frames[-2][1]["usage"]
    assert usage["completionTokens"] >= len(arrivals)
    assert usage["promptTokens"] > 20


def test_disconnect_stops_generation(local_server: RunningServer) -> None:
    long_answer = local_chatflow(local_server, maxTokens=400)
    short_answer = local_chatflow(local_server, maxTokens=4)
    generated_before = metric(local_server, "tailwinds_local_model_tokens_total")
    received = stream_then_leave(
        local_server.url,
        f"/api/v1/predictions/{long_answer}",
        {"question": COUNTING, "streaming": True, "chatId": "leaves-early"},
        tokens=3,
    )
    assert received.count(b"event: token") >= 3
    # the model's place is given back when its generation has really stopped: long before
    # the 400 tokens it was asked for
    wait_for("the generation stopped", lambda: places(local_server) == 0, within_s=60)
    assert metric(local_server, "tailwinds_local_model_tokens_total") - generated_before < 400
    stored = wait_for_answer(local_server, long_answer, "leaves-early")
    assert stored["status"] == "aborted"
    # and the model takes the next question
    answer = requests.post(
        f"{local_server.url}/api/v1/predictions/{short_answer}", json={"question": "Hi"}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    assert places(local_server) == 0


def places(server: RunningServer) -> float:
    return metric(server, "tailwinds_local_model_places")


def test_queue_serves_two_and_refuses_the_third(local_server: RunningServer) -> None:
    chatflow_id = local_chatflow(local_server, maxTokens=60)
    url = f"{local_server.url}/api/v1/predictions/{chatflow_id}"
    body = {"question": COUNTING, "streaming": True}
    first = requests.post(url, json=body, stream=True, timeout=120)
    second = requests.post(url, json=body, stream=True, timeout=120)
    assert first.status_code == second.status_code == 200
    third = requests.post(url, json=body, timeout=10)
    assert third.status_code == 429
    assert third.headers["Retry-After"]
    assert "busy" in third.json()["error"]
    for response in (first, second):
        frames = parse_frames(response.content)
        check_order(frames)
        assert frames[-2][0] == "metadata"
        assert len(tokens_of(frames)) > 20
    # the line is free again
    assert requests.post(url, json={**body, "streaming": False}, timeout=120).status_code == 200


def test_a_client_gone_while_waiting_gives_its_place_back(local_server: RunningServer) -> None:
    """The queue holds one waiting request (TAILWINDS_LOCAL_MODEL_QUEUE=1): when its client
    leaves before its turn, the place is free at once, not when the answer ahead ends."""
    chatflow_id = local_chatflow(local_server, maxTokens=400)
    url = f"{local_server.url}/api/v1/predictions/{chatflow_id}"
    body = {"question": COUNTING, "streaming": True}
    with requests.post(url, json=body, stream=True, timeout=120) as first:
        assert first.status_code == 200
        received = stream_then_leave(
            local_server.url,
            f"/api/v1/predictions/{chatflow_id}",
            body,
            tokens=1,
            marker=b"event: start",
        )
        assert b"200 OK" in received.split(b"\r\n", 1)[0]
        wait_for("the waiting place given back", lambda: places(local_server) == 1, within_s=30)
        with requests.post(url, json=body, stream=True, timeout=120) as third:
            # the first answer still runs (400 tokens), yet the third has a place
            assert third.status_code == 200, third.text
            assert places(local_server) == 2


def test_no_network_needed(local_server: RunningServer) -> None:
    log = local_server.log()
    assert "huggingface" not in log.lower()
    assert json.dumps  # the server's log is the only place a download would show
