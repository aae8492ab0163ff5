"""Resumable streams in local mode: leave mid-answer, come back with `Last-Event-ID`, get
exactly the rest; nobody back within the grace period: the run stops, stored as aborted."""

from __future__ import annotations

import json
import time
from typing import Any

import requests

from tests.conftest import RunningServer, stream_then_leave
from tests.integration.test_prediction_stream import wait_for_answer
from tests.mock_openai import MockOpenAI
from tests.sse_frames import check_order, numbered_tokens, parse_numbered


def complete_part(raw: bytes) -> bytes:
    """The complete frames of a raw chunked HTTP response a client left mid-way."""
    rest = raw.split(b"\r\n\r\n", 1)[1]
    body = b""
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0 or len(rest) < size:
            break
        body += rest[:size]
        rest = rest[size + 2 :]
    return body[: body.rfind(b"\n\n") + 2]


def resume(server: RunningServer, chatflow_id: str, message_id: str, last: int | None):  # type: ignore[no-untyped-def]
    headers = {"Last-Event-ID": str(last)} if last is not None else {}
    return requests.get(
        f"{server.url}/api/v1/predictions/{chatflow_id}/stream/{message_id}",
        headers=headers,
        timeout=20,
    )


def test_resume_after_a_dropped_connection_gives_exactly_the_rest(
    server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = server.model_chatflow(mock_llm.base_url, model="paced:0.02")
    tokens = [f"r{i} " for i in range(40)]
    first = parse_numbered(
        complete_part(
            stream_then_leave(
                server.url,
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
    assert [n for n, _, _ in first] == list(range(1, len(first) + 1))
    start = first[0][2]
    last_id = first[-1][0]
    time.sleep(0.2)  # the run goes on meanwhile
    response = resume(server, chatflow_id, start["messageId"], last_id)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    rest = parse_numbered(response.content)
    assert rest[0][0] == last_id + 1, "the resumed stream starts right after Last-Event-ID"
    whole = first + rest
    assert [n for n, _, _ in whole] == list(range(1, len(whole) + 1))
    check_order([(name, data) for _, name, data in whole])
    assert numbered_tokens(whole) == "".join(tokens)
    stored = wait_for_answer(server, chatflow_id, start["chatId"])
    assert stored["status"] == "complete"

    # after the end it can still be read whole, from the beginning, within the retention
    again = parse_numbered(resume(server, chatflow_id, start["messageId"], None).content)
    assert [(name, data) for _, name, data in again] == [(name, data) for _, name, data in whole]


def test_nobody_back_within_the_grace_stops_the_run(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = sqlite_server.model_chatflow(mock_llm.base_url, model="paced:0.05")
    tokens = [f"g{i} " for i in range(100)]
    raw = stream_then_leave(
        sqlite_server.url,
        f"/api/v1/predictions/{chatflow_id}",
        {"question": "tokens:" + json.dumps(tokens), "streaming": True, "resumeGraceSeconds": 0.5},
        tokens=3,
    )
    left_at = time.monotonic()
    start = parse_numbered(complete_part(raw))[0][2]
    record = mock_llm.find("tokens:" + json.dumps(tokens))
    while record.closed_at is None and time.monotonic() < left_at + 5:
        time.sleep(0.02)
    assert record.closed_at is not None and not record.completed
    assert 0.4 < record.closed_at - left_at < 2.0, "cancelled after the grace, not before"
    stored = wait_for_answer(sqlite_server, chatflow_id, start["chatId"])
    assert stored["status"] == "aborted"
    # a late reader still gets the whole story: what was said, then why it stopped
    late = parse_numbered(resume(sqlite_server, chatflow_id, start["messageId"], 2).content)
    assert late[-2][1:] == ("error", {"error": late[-2][2]["error"], "code": "aborted"})
    assert late[-1][1] == "end"


def test_streams_without_a_grace_are_not_resumable(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = sqlite_server.model_chatflow(mock_llm.base_url)
    response = requests.post(
        f"{sqlite_server.url}/api/v1/predictions/{chatflow_id}",
        json={"question": "hi", "streaming": True},
        timeout=10,
    )
    frames = parse_numbered(response.content)
    assert all(number is None for number, _, _ in frames), "no id: lines on the fast path"
    missing = resume(sqlite_server, chatflow_id, frames[0][2]["messageId"], None)
    assert missing.status_code == 404
    assert missing.json()["code"] == "stream_not_found"


def test_bad_resume_requests_say_what_is_wrong(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = sqlite_server.model_chatflow(mock_llm.base_url)
    body: dict[str, Any] = {"question": "hi", "streaming": True, "resumeGraceSeconds": -1}
    response = requests.post(
        f"{sqlite_server.url}/api/v1/predictions/{chatflow_id}", json=body, timeout=10
    )
    assert response.status_code == 400
    assert "resumeGraceSeconds" in response.json()["error"]
    body["resumeGraceSeconds"] = 5
    response = requests.post(
        f"{sqlite_server.url}/api/v1/predictions/{chatflow_id}", json=body, timeout=10
    )
    message_id = parse_numbered(response.content)[0][2]["messageId"]
    bad = requests.get(
        f"{sqlite_server.url}/api/v1/predictions/{chatflow_id}/stream/{message_id}",
        headers={"Last-Event-ID": "seven"},
        timeout=10,
    )
    assert bad.status_code == 400
    assert "Last-Event-ID" in bad.json()["error"]
    other = sqlite_server.model_chatflow(mock_llm.base_url)
    assert resume(sqlite_server, other, message_id, None).status_code == 404


def test_a_chatflow_can_make_its_streams_resumable(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    node = {
        "id": "chat_0",
        "type": "chatOpenAI",
        "inputs": {"model": "echo", "baseUrl": mock_llm.base_url},
    }
    created = sqlite_server.create_chatflow({"nodes": [node], "edges": []}, resumeGraceSeconds=15)
    assert created["resumeGraceSeconds"] == 15
    url = f"{sqlite_server.url}/api/v1/predictions/{created['id']}"
    # the published page's request, unchanged, gets a numbered, resumable stream
    frames = parse_numbered(
        requests.post(url, json={"question": "hi", "streaming": True}, timeout=10).content
    )
    assert [n for n, _, _ in frames] == list(range(1, len(frames) + 1))
    replay = resume(sqlite_server, created["id"], frames[0][2]["messageId"], 1)
    assert [n for n, _, _ in parse_numbered(replay.content)] == list(range(2, len(frames) + 1))
    # and a request may still opt out
    plain = parse_numbered(
        requests.post(
            url, json={"question": "hi", "streaming": True, "resumeGraceSeconds": 0}, timeout=10
        ).content
    )
    assert all(n is None for n, _, _ in plain)
    too_long = requests.put(
        f"{sqlite_server.url}/api/v1/chatflows/{created['id']}",
        json={"resumeGraceSeconds": 99999},
        timeout=10,
    )
    assert too_long.status_code == 400
    assert "resumeGraceSeconds" in too_long.json()["error"]
