"""Flowise's dialect over real HTTP, against Tailwinds as its own process and the mock
model: the frames, both dialects from one chatflow, the bodies Flowise's clients send, the
routes they call first, CORS as the widget needs it, resume and abort."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.conftest import RunningServer, stream_then_leave
from tests.flowise.conftest import events_of, flowise_frames, text_of
from tests.integration.test_prediction_stream import messages
from tests.integration.test_queue_mode import Cluster, queue_env, start_cluster
from tests.integration.test_resume import complete_part
from tests.mock_openai import MockOpenAI
from tests.sse_frames import parse_frames, tokens_of

SITE = "https://shop.example.com"


def post(server: RunningServer, path: str, body: Any, **kwargs: Any) -> requests.Response:
    return requests.post(f"{server.url}{path}", json=body, timeout=30, **kwargs)


def test_frames_as_flowise_writes_them(sqlite_server: RunningServer, mock_llm: MockOpenAI) -> None:
    flow = sqlite_server.model_chatflow(mock_llm.base_url)
    response = post(
        sqlite_server, f"/api/v1/prediction/{flow}", {"question": "Hi there", "streaming": True}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = flowise_frames(response.content)
    names = events_of(frames)
    assert names[0] == "start" and names[-1] == "end"
    assert names[-3:] == ["usageMetadata", "metadata", "end"]
    assert set(names[1:-3]) == {"token"}
    assert all(isinstance(f["data"], str) for f in frames if f["event"] == "token")
    assert text_of(frames) == "You said: Hi there"
    start, usage, meta, end = frames[0], frames[-3], frames[-2], frames[-1]
    assert end["data"] == "[DONE]"
    assert usage["data"] == {"input_tokens": 9, "output_tokens": 4, "total_tokens": 13}
    assert meta["data"] == {
        "chatId": start["chatId"],
        "chatMessageId": start["chatMessageId"],
        "question": "Hi there",
        "sessionId": start["chatId"],
    }
    stored = messages(sqlite_server, flow, start["chatId"])
    assert stored[-1]["content"] == "You said: Hi there"


def test_a_token_holding_data_colon_never_shows_the_bytes(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    """The PyPI client strips every "data:" in a line: the frame's JSON holds none."""
    flow = sqlite_server.model_chatflow(mock_llm.base_url)
    tokens = ["metadata: ", "data:image/png;base64,AAAA"]
    body = {"question": "tokens:" + json.dumps(tokens), "streaming": True}
    raw = post(sqlite_server, f"/api/v1/prediction/{flow}", body).content
    for line in raw.decode().split("\n"):
        assert "data:" not in line.removeprefix("data: "), line
    assert text_of(flowise_frames(raw)) == "".join(tokens)


def test_both_dialects_from_one_chatflow(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    flow = sqlite_server.model_chatflow(mock_llm.base_url)
    body = {"question": "same words", "streaming": True}
    ours = parse_frames(post(sqlite_server, f"/api/v1/predictions/{flow}", body).content)
    assert tokens_of(ours) == "You said: same words"
    for path, headers in [
        (f"/api/v1/prediction/{flow}", {}),
        (f"/api/v1/predictions/{flow}?dialect=flowise", {}),
        (f"/api/v1/predictions/{flow}", {"Accept": "text/event-stream; dialect=flowise"}),
    ]:
        theirs = flowise_frames(post(sqlite_server, path, body, headers=headers).content)
        assert text_of(theirs) == "You said: same words", path
    back = post(sqlite_server, f"/api/v1/prediction/{flow}?dialect=tailwinds", body)
    assert tokens_of(parse_frames(back.content)) == "You said: same words"
    unknown = post(sqlite_server, f"/api/v1/prediction/{flow}?dialect=klingon", body)
    assert unknown.status_code == 400 and unknown.json()["error"].startswith("dialect:")


def test_bodies_as_flowise_clients_send_them(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    flow = sqlite_server.model_chatflow(mock_llm.base_url)
    body = {
        "chatflowId": flow,
        "question": "third",
        "overrideConfig": None,
        "chatId": None,
        "streaming": "true",
        "history": [
            {"message": "first", "type": "userMessage", "role": None, "content": None},
            {"role": "apiMessage", "content": "an answer", "message": None, "type": None},
            {"message": None, "type": "userMessage"},
        ],
        "uploads": [],
    }
    frames = flowise_frames(post(sqlite_server, f"/api/v1/prediction/{flow}", body).content)
    assert text_of(frames) == "You said: third"
    sent = mock_llm.find("third").body["messages"]
    assert [m["role"] for m in sent][:2] == ["user", "assistant"]
    assert sent[0]["content"] == "first" and sent[1]["content"] == "an answer"
    # anything else malformed is still a 400 naming the field
    bad = {"question": "q", "history": [{"type": "robotMessage", "message": "x"}]}
    refused = post(sqlite_server, f"/api/v1/prediction/{flow}", bad)
    assert refused.status_code == 400 and "history" in refused.text
    assert post(sqlite_server, f"/api/v1/prediction/{flow}", {"q": 1}).status_code == 400


def test_the_json_answer_carries_chat_message_id(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    flow = sqlite_server.model_chatflow(mock_llm.base_url)
    answer = post(sqlite_server, f"/api/v1/prediction/{flow}", {"question": "x"}).json()
    assert answer["text"] == "You said: x"
    assert answer["chatMessageId"] == answer["messageId"]


def test_routes_the_clients_call_first(sqlite_server: RunningServer, mock_llm: MockOpenAI) -> None:
    flow = sqlite_server.model_chatflow(mock_llm.base_url)
    url = sqlite_server.url
    assert requests.get(f"{url}/api/v1/chatflows-streaming/{flow}", timeout=5).json() == {
        "isStreaming": True
    }
    assert requests.get(f"{url}/api/v1/public-chatbotConfig/{flow}", timeout=5).json() == "OK"
    for path in ("chatflows-streaming", "public-chatbotConfig"):
        assert requests.get(f"{url}/api/v1/{path}/nope", timeout=5).status_code == 404


def test_cors_of_the_chatflow_and_readable_refusals(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    node = {
        "id": "m",
        "type": "chatOpenAI",
        "inputs": {"model": "echo", "baseUrl": mock_llm.base_url},
    }
    flow = sqlite_server.create_chatflow({"nodes": [node]}, allowedOrigins=[SITE])["id"]
    url = sqlite_server.url
    for path in (f"chatflows-streaming/{flow}", f"public-chatbotConfig/{flow}"):
        ok = requests.get(f"{url}/api/v1/{path}", headers={"Origin": SITE}, timeout=5)
        assert ok.headers["access-control-allow-origin"] == SITE
        refused = requests.get(
            f"{url}/api/v1/{path}", headers={"Origin": "https://evil.example"}, timeout=5
        )
        assert refused.status_code == 403
        assert refused.headers["access-control-allow-origin"] == "https://evil.example"
        assert refused.headers["content-type"].startswith("text/plain")
    preflight = requests.options(
        f"{url}/api/v1/prediction/{flow}",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=5,
    )
    assert preflight.status_code == 204  # so that the POST comes, and its 403 can be read
    refused_post = post(
        sqlite_server,
        f"/api/v1/prediction/{flow}",
        {"question": "x", "streaming": True},
        headers={"Origin": "https://evil.example"},
    )
    assert refused_post.status_code == 403
    assert refused_post.text == "this origin may not call this chatflow"


def test_refusals_the_widget_shows_are_plain_text(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    key = requests.post(f"{sqlite_server.url}/api/v1/apikeys", json={"name": "fw"}, timeout=5)
    assert key.status_code == 201, key.text
    key_id = key.json()["id"]
    node = {
        "id": "m",
        "type": "chatOpenAI",
        "inputs": {"model": "echo", "baseUrl": mock_llm.base_url},
    }
    flow = sqlite_server.create_chatflow({"nodes": [node]}, apiKeyId=key_id)["id"]
    refused = post(
        sqlite_server, f"/api/v1/prediction/{flow}", {"question": "x", "streaming": True}
    )
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("text/plain")
    assert not refused.text.startswith("{")


def test_errors_and_aborts_end_as_flowise_ends_them(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    failing = sqlite_server.model_chatflow(mock_llm.base_url, model="status:500")
    frames = flowise_frames(
        post(
            sqlite_server, f"/api/v1/prediction/{failing}", {"question": "x", "streaming": True}
        ).content
    )
    assert events_of(frames) == ["start", "error", "end"]
    assert isinstance(frames[1]["data"], str) and frames[1]["data"]

    slow = sqlite_server.model_chatflow(mock_llm.base_url, model="paced:0.2")
    chat = "flowise-abort-chat"
    got: dict[str, bytes] = {}

    def ask() -> None:
        body = {"question": "one two three four five six seven", "streaming": True, "chatId": chat}
        got["raw"] = post(sqlite_server, f"/api/v1/prediction/{slow}", body).content

    asker = threading.Thread(target=ask)
    asker.start()
    # the run is under way once the model was asked; then Flowise's abort route stops it
    deadline = time.monotonic() + 20
    while not mock_llm.count_prefix("one two three") and time.monotonic() < deadline:
        time.sleep(0.02)
    while time.monotonic() < deadline:
        aborted = requests.put(
            f"{sqlite_server.url}/api/v1/chatmessage/abort/{slow}/{chat}", timeout=5
        ).json()
        if aborted["aborted"]:
            break
        time.sleep(0.02)
    asker.join(30)
    assert events_of(flowise_frames(got["raw"]))[-2:] == ["abort", "end"]


def test_resume_in_flowise_dialect(sqlite_server: RunningServer, mock_llm: MockOpenAI) -> None:
    flow = sqlite_server.model_chatflow(mock_llm.base_url, model="paced:0.02")
    tokens = [f"w{i} " for i in range(30)]
    body = {"question": "tokens:" + json.dumps(tokens), "streaming": True, "resumeGraceSeconds": 10}
    path = f"/api/v1/prediction/{flow}"
    raw = stream_then_leave(sqlite_server.url, path, body, 2, marker=b'"event":"token"')
    first = flowise_frames(complete_part(raw))
    assert first[0]["event"] == "start" and all(f["id"] is not None for f in first)
    resumed = requests.get(
        f"{sqlite_server.url}/api/v1/predictions/{flow}/stream/{first[0]['chatMessageId']}"
        "?dialect=flowise",
        headers={"Last-Event-ID": str(first[-1]["id"])},
        timeout=30,
    )
    assert resumed.status_code == 200
    rest = flowise_frames(resumed.content)
    assert text_of(first + rest) == "".join(tokens)
    assert events_of(rest)[-1] == "end"


# ---- queue mode: the API node encodes the dialect from the worker's frames


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, redis_url: str
) -> Iterator[Cluster]:
    running = start_cluster(tmp_path_factory, postgres_url, queue_env(redis_url), workers=1)
    yield running
    running.stop()


def test_queue_mode_speaks_both_dialects_and_resumes(
    cluster: Cluster, mock_llm: MockOpenAI
) -> None:
    a, b = cluster.apis
    flow = a.model_chatflow(mock_llm.base_url, model="paced:0.02")
    tokens = [f"q{i} " for i in range(30)]
    question = "tokens:" + json.dumps(tokens)
    ours = parse_frames(
        post(a, f"/api/v1/predictions/{flow}", {"question": question, "streaming": True}).content
    )
    assert tokens_of(ours) == "".join(tokens)
    theirs = flowise_frames(
        post(b, f"/api/v1/prediction/{flow}", {"question": question, "streaming": True}).content
    )
    assert events_of(theirs)[0] == "start" and events_of(theirs)[-1] == "end"
    assert text_of(theirs) == "".join(tokens)
    answer = post(b, f"/api/v1/prediction/{flow}", {"question": "plain"}).json()
    assert answer["text"] == "You said: plain" and answer["chatMessageId"]

    body = {"question": question, "streaming": True, "resumeGraceSeconds": 10}
    raw = stream_then_leave(a.url, f"/api/v1/prediction/{flow}", body, 3, marker=b'"event":"token"')
    first = flowise_frames(complete_part(raw))
    resumed = requests.get(
        f"{b.url}/api/v1/predictions/{flow}/stream/{first[0]['chatMessageId']}?dialect=flowise",
        headers={"Last-Event-ID": str(first[-1]["id"])},
        timeout=30,
    )
    assert resumed.status_code == 200
    rest = flowise_frames(resumed.content)
    assert text_of(first + rest) == "".join(tokens)
    assert events_of(rest)[-1] == "end"


def test_follow_up_prompts_from_the_chatflow_model(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    node = {
        "id": "m",
        "type": "chatOpenAI",
        "inputs": {"model": "echo", "baseUrl": mock_llm.base_url},
    }
    config = {"followUpPrompts": True}
    flow = sqlite_server.create_chatflow({"nodes": [node]}, chatbotConfig=config)["id"]
    body = {"question": "next steps", "streaming": True}
    frames = flowise_frames(post(sqlite_server, f"/api/v1/prediction/{flow}", body).content)
    meta = next(f["data"] for f in frames if f["event"] == "metadata")
    # the echo model's reply to the follow-up request: its lines, one prompt each
    prompts = json.loads(meta["followUpPrompts"])
    assert prompts == ["You said: Question: next steps", "Answer: You said: next steps"]
    asked = mock_llm.find("Question: next steps").body["messages"]
    assert asked[0]["role"] == "system" and "follow-up questions" in asked[0]["content"]
    stored = messages(sqlite_server, flow, meta["chatId"])
    assert stored[-1]["followUpPrompts"] == prompts
    # ours carries them too, in its metadata
    ours = parse_frames(post(sqlite_server, f"/api/v1/predictions/{flow}", body).content)
    assert json.loads(dict(ours)["metadata"]["followUpPrompts"]) == prompts
