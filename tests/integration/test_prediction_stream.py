"""The Prediction API's event stream, against Tailwinds running as its own process and a
mock model server speaking OpenAI's wire format."""

from __future__ import annotations

import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.conftest import RunningServer, free_port, stream_then_leave
from tests.mock_openai import LEAKED_KEY, REDIRECTED_TO, MockOpenAI, answer_tokens
from tests.sse_frames import check_order, parse_frames, tokens_of


def predict(
    server: RunningServer, chatflow_id: str, question: str, **body: Any
) -> requests.Response:
    return requests.post(
        f"{server.url}/api/v1/predictions/{chatflow_id}",
        json={"question": question, "streaming": True, **body},
        timeout=30,
    )


def messages(server: RunningServer, chatflow_id: str, chat_id: str) -> list[dict[str, Any]]:
    response = requests.get(
        f"{server.url}/api/v1/chatmessage/{chatflow_id}", params={"chatId": chat_id}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()


def wait_for_answer(server: RunningServer, chatflow_id: str, chat_id: str) -> dict[str, Any]:
    """The stored answer; after a disconnect it is written in the background."""
    deadline = time.monotonic() + 5
    while True:
        stored = [m for m in messages(server, chatflow_id, chat_id) if m["role"] == "apiMessage"]
        if stored or time.monotonic() > deadline:
            assert stored, "no answer stored"
            return stored[-1]
        time.sleep(0.05)


def test_stream_headers_framing_and_order(server: RunningServer, mock_llm: MockOpenAI) -> None:
    chatflow_id = server.model_chatflow(mock_llm.base_url)
    response = predict(server, chatflow_id, "Hello world!")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert response.headers["transfer-encoding"] == "chunked"
    assert "content-encoding" not in response.headers

    frames = parse_frames(response.content)
    check_order(frames)
    assert tokens_of(frames) == "You said: Hello world!"
    start = frames[0][1]
    metadata = frames[-2][1]
    assert set(start) == {"chatId", "messageId"}
    assert metadata["chatId"] == start["chatId"]
    assert metadata["messageId"] == start["messageId"]
    assert metadata["question"] == "Hello world!"
    assert metadata["sessionId"] == start["chatId"]
    assert metadata["usage"] == {"promptTokens": 9, "completionTokens": 4, "totalTokens": 13}
    assert frames[-1] == ("end", {})

    stored = messages(server, chatflow_id, start["chatId"])
    assert [(m["role"], m["content"], m["status"]) for m in stored] == [
        ("userMessage", "Hello world!", "complete"),
        ("apiMessage", "You said: Hello world!", "complete"),
    ]
    assert stored[1]["id"] == start["messageId"]
    assert stored[1]["usage"]["totalTokens"] == 13


TRICKY_TOKENS = [
    "line one\nline two",
    "\n\nevent: end\ndata: {}\n\n",
    "carriage\rreturn",
    "crlf\r\n",
    "😀🚀",
    "漢字とかな",
    'say "quoted" \\ backslash',
    "para\u2028sep\u2029x\x85y",
    "\t tab",
]


def test_tricky_token_texts_arrive_intact(server: RunningServer, mock_llm: MockOpenAI) -> None:
    # "split" writes every provider event in two pieces, cut inside a multi-byte character
    chatflow_id = server.model_chatflow(mock_llm.base_url, model="split")
    response = predict(server, chatflow_id, "tokens:" + json.dumps(TRICKY_TOKENS))
    frames = parse_frames(response.content)
    check_order(frames)
    assert [data["token"] for name, data in frames if name == "token"] == TRICKY_TOKENS


def test_a_long_answer_is_stored_whole(server: RunningServer, mock_llm: MockOpenAI) -> None:
    tokens = [f"t{i} " for i in range(150)]  # past two of the runner's joins of its pieces
    chatflow_id = server.model_chatflow(mock_llm.base_url)
    frames = parse_frames(predict(server, chatflow_id, "tokens:" + json.dumps(tokens)).content)
    assert [data["token"] for name, data in frames if name == "token"] == tokens
    stored = wait_for_answer(server, chatflow_id, frames[0][1]["chatId"])
    assert stored["content"] == "".join(tokens)


def test_non_streaming_answer(server: RunningServer, mock_llm: MockOpenAI) -> None:
    chatflow_id = server.model_chatflow(mock_llm.base_url)
    response = requests.post(
        f"{server.url}/api/v1/predictions/{chatflow_id}", json={"question": "Hi there"}, timeout=10
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert answer["text"] == "You said: Hi there"
    assert answer["question"] == "Hi there"
    assert answer["sessionId"] == answer["chatId"]
    assert answer["messageId"]
    assert answer["usage"]["completionTokens"] == 4


def test_flowise_spelling_of_the_route(server: RunningServer, mock_llm: MockOpenAI) -> None:
    chatflow_id = server.model_chatflow(mock_llm.base_url)
    response = requests.post(
        f"{server.url}/api/v1/prediction/{chatflow_id}", json={"question": "x"}, timeout=10
    )
    assert response.json()["text"] == "You said: x"


def test_chat_id_continuity_sends_history(server: RunningServer, mock_llm: MockOpenAI) -> None:
    chatflow_id = server.model_chatflow(mock_llm.base_url, systemMessage="Be brief.")
    first = parse_frames(predict(server, chatflow_id, "first question").content)
    chat_id = first[0][1]["chatId"]
    second = parse_frames(predict(server, chatflow_id, "second question", chatId=chat_id).content)
    assert second[0][1]["chatId"] == chat_id
    sent = mock_llm.find("second question").body["messages"]
    assert sent == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "You said: first question"},
        {"role": "user", "content": "second question"},
    ]
    assert len(messages(server, chatflow_id, chat_id)) == 4


def test_history_from_the_request_replaces_stored_history(
    server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = server.model_chatflow(mock_llm.base_url)
    history = [
        {"role": "userMessage", "content": "my name is Ada"},
        {"role": "apiMessage", "content": "Hello Ada"},
    ]
    predict(server, chatflow_id, "what is my name (client history)", history=history)
    sent = mock_llm.find("what is my name (client history)").body["messages"]
    assert [m["content"] for m in sent] == [
        "my name is Ada",
        "Hello Ada",
        "what is my name (client history)",
    ]


def closed_port() -> int:
    return free_port()  # nothing listens there


# the test server's idle timeout is 1 s and its first-token timeout 3 s
FAULTS = [
    ("refused", "provider_unavailable", 1),
    ("status:401", "provider_auth", 1),
    ("status:429", "provider_rate_limited", 1),
    ("status:500", "provider_unavailable", 1),
    ("cut:2", "provider_unavailable", 1),
    ("malformed", "provider_bad_response", 1),
    ("midstream-error", "provider_unavailable", 1),
    ("eof", "provider_bad_response", 1),
    ("silent:5", "provider_timeout", 2),
    ("slowstart:6", "provider_timeout", 4),
    ("redirect", "provider_rejected", 1),
]


@pytest.mark.parametrize(("model", "code", "within_s"), FAULTS)
def test_provider_faults_end_with_error_then_end(
    server: RunningServer, mock_llm: MockOpenAI, model: str, code: str, within_s: float
) -> None:
    base_url = f"http://127.0.0.1:{closed_port()}/v1" if model == "refused" else mock_llm.base_url
    chatflow_id = server.model_chatflow(base_url, model=model)
    started = time.monotonic()
    response = predict(server, chatflow_id, f"fault {model}")
    elapsed = time.monotonic() - started
    frames = parse_frames(response.content)
    check_order(frames)
    assert frames[-2][0] == "error"
    error = frames[-2][1]
    assert error["code"] == code, error
    assert error["error"]
    assert LEAKED_KEY not in response.text
    assert elapsed < within_s, elapsed
    stored = wait_for_answer(server, chatflow_id, frames[0][1]["chatId"])
    assert stored["status"] == "error"
    assert stored["error"] == error["error"]
    assert stored["content"] == tokens_of(frames)
    produced = {"cut:2": 2, "malformed": 1, "midstream-error": 2, "silent:5": 1, "eof": 4}.get(
        model, 0
    )
    # what the provider sent before failing is delivered, even from the same chunk
    assert tokens_of(frames) == "".join(answer_tokens(f"fault {model}")[:produced])
    assert LEAKED_KEY not in server.log()
    if model == "redirect":  # not followed: the error says where the model server went
        assert REDIRECTED_TO in error["error"]


def test_keepalive_comments_during_silence(server: RunningServer, mock_llm: MockOpenAI) -> None:
    chatflow_id = server.model_chatflow(mock_llm.base_url, model="slowstart:1")
    response = predict(server, chatflow_id, "wait for it")
    body = response.content.decode()
    assert ": ping\n\n" in body, body
    assert "event: token" in body, body
    assert body.index(": ping") < body.index("event: token")
    assert tokens_of(parse_frames(response.content)) == "You said: wait for it"


def test_disconnect_closes_the_provider_request(
    server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = server.model_chatflow(mock_llm.base_url, model="paced:0.05")
    tokens = [f"t{i} " for i in range(100)]
    received = stream_then_leave(
        server.url,
        f"/api/v1/predictions/{chatflow_id}",
        {"question": "tokens:" + json.dumps(tokens), "streaming": True},
        tokens=3,
    )
    left_at = time.monotonic()
    match = re.search(rb'"chatId":"([^"]+)"', received)
    assert match is not None, received
    chat_id = match.group(1).decode()
    record = mock_llm.find("tokens:" + json.dumps(tokens))
    deadline = left_at + 3
    while record.closed_at is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert record.closed_at is not None, "the mock never saw its request closed"
    assert record.closed_at - left_at < 1.0
    assert not record.completed
    assert chat_id is not None
    stored = wait_for_answer(server, chatflow_id, chat_id)
    assert stored["status"] == "aborted"
    assert stored["content"].startswith("t0 t1 t2 ")
    assert len(stored["content"]) < len("".join(tokens))


def test_abort_ends_the_stream_with_aborted(server: RunningServer, mock_llm: MockOpenAI) -> None:
    chatflow_id = server.model_chatflow(mock_llm.base_url, model="paced:0.05")
    tokens = [f"a{i} " for i in range(100)]
    chat_id = "chat-to-abort"
    raw = bytearray()
    aborted = None
    with requests.post(
        f"{server.url}/api/v1/predictions/{chatflow_id}",
        json={"question": "tokens:" + json.dumps(tokens), "streaming": True, "chatId": chat_id},
        stream=True,
        timeout=10,
    ) as response:
        for chunk in response.iter_content(chunk_size=None):
            raw += chunk
            if aborted is None and raw.count(b"event: token") >= 3:
                aborted = requests.post(
                    f"{server.url}/api/v1/predictions/{chatflow_id}/abort",
                    json={"chatId": chat_id},
                    timeout=5,
                ).json()
    assert aborted == {"chatId": chat_id, "aborted": 1}
    frames = parse_frames(bytes(raw))
    check_order(frames)
    assert frames[-2] == ("error", {"error": "The prediction was aborted.", "code": "aborted"})
    stored = wait_for_answer(server, chatflow_id, chat_id)
    assert stored["status"] == "aborted"
    assert stored["content"] == tokens_of(frames)
    record = mock_llm.find("tokens:" + json.dumps(tokens))
    assert not record.completed


def test_flowise_abort_route(sqlite_server: RunningServer, mock_llm: MockOpenAI) -> None:
    chatflow_id = sqlite_server.model_chatflow(mock_llm.base_url, model="paced:0.05")
    chat_id = "flowise-abort"
    result: dict[str, Any] = {}

    def run() -> None:
        result["response"] = predict(
            sqlite_server, chatflow_id, "tokens:" + json.dumps(["x"] * 100), chatId=chat_id
        )

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 5
    aborted = 0
    while not aborted and time.monotonic() < deadline:
        time.sleep(0.1)
        aborted = requests.put(
            f"{sqlite_server.url}/api/v1/chatmessage/abort/{chatflow_id}/{chat_id}", timeout=5
        ).json()["aborted"]
    thread.join(10)
    assert aborted == 1
    frames = parse_frames(result["response"].content)
    assert frames[-2][1]["code"] == "aborted"


def test_fifty_concurrent_streams_get_their_own_tokens(
    server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = server.model_chatflow(mock_llm.base_url, model="paced:0.01")
    # two of them share a chat: the second waits for the first (by default it is refused)
    requests.put(
        f"{server.url}/api/v1/chatflows/{chatflow_id}",
        json={"concurrentTurns": "queue"},
        timeout=10,
    ).raise_for_status()

    def one(i: int) -> tuple[int, list[tuple[str, Any]]]:
        tokens = [f"s{i}-t{j} " for j in range(20)]
        body: dict[str, Any] = {}
        if i in (0, 1):
            body["chatId"] = "shared-chat"
        response = predict(server, chatflow_id, "tokens:" + json.dumps(tokens), **body)
        return i, parse_frames(response.content)

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(one, range(50)))
    for i, frames in results:
        check_order(frames)
        assert [d["token"] for n, d in frames if n == "token"] == [f"s{i}-t{j} " for j in range(20)]
    shared = [frames for i, frames in results if i in (0, 1)]
    assert {f[0][1]["chatId"] for f in shared} == {"shared-chat"}
    assert shared[0][0][1]["messageId"] != shared[1][0][1]["messageId"]
