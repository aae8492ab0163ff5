"""The dialects in queue mode: the run happens on a worker, the API node relays its frames,
and each dialect's encoder gets the events decoded back from them (`transcode`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
import requests

from tests.integration.test_queue_mode import Cluster, queue_env, start_cluster
from tests.mock_openai import MockOpenAI


@pytest.fixture(scope="module")
def one_node(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, redis_url: str
) -> Iterator[Cluster]:
    running = start_cluster(tmp_path_factory, postgres_url, queue_env(redis_url), 1, 1)
    yield running
    running.stop()


def data_frames(body: bytes) -> list[Any]:
    """The JSON of each `data:` frame (`[DONE]` as the string)."""
    frames = []
    for block in body.decode().split("\n\n"):
        for line in block.split("\n"):
            if line.startswith("data: "):
                payload = line[len("data: ") :]
                frames.append(payload if payload == "[DONE]" else json.loads(payload))
    return frames


def test_each_dialect_through_a_worker(one_node: Cluster, mock_llm: MockOpenAI) -> None:
    [api] = one_node.apis
    chatflow_id = api.model_chatflow(mock_llm.base_url, model="paced:0.01")
    sdk = openai.OpenAI(base_url=f"{api.url}/v1", api_key="unused", max_retries=0)
    messages: Any = [{"role": "user", "content": "queued"}]
    chunks = list(
        sdk.chat.completions.create(
            model=chatflow_id,
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: queued" and chunks[-1].usage is not None
    answer = sdk.chat.completions.create(model=chatflow_id, messages=messages)
    assert answer.choices[0].message.content == "You said: queued"

    agui = requests.post(
        f"{api.url}/api/v1/agui/{chatflow_id}",
        json={
            "threadId": "t-queued",
            "runId": "r1",
            "messages": [{"id": "1", "role": "user", "content": "queued"}],
        },
        timeout=30,
    )
    events = data_frames(agui.content)
    assert events[0]["type"] == "RUN_STARTED"
    assert events[-1]["type"] == "RUN_FINISHED"
    assert "".join(e["delta"] for e in events if e["type"] == "TEXT_MESSAGE_CONTENT") == text

    ai = requests.post(
        f"{api.url}/api/v1/ai-sdk/{chatflow_id}",
        json={
            "id": "c-queued",
            "messages": [
                {"id": "1", "role": "user", "parts": [{"type": "text", "text": "queued"}]}
            ],
        },
        timeout=30,
    )
    assert ai.headers["x-vercel-ai-ui-message-stream"] == "v1"
    parts = data_frames(ai.content)
    assert parts[-1] == "[DONE]" and parts[-2]["type"] == "finish"
    assert "".join(p["delta"] for p in parts[:-1] if p["type"] == "text-delta") == text


def test_ai_sdk_reconnect_through_a_worker(one_node: Cluster, mock_llm: MockOpenAI) -> None:
    """A `useChat` whose stream dropped mid-answer reconnects (`GET …/{chatId}/stream`, the
    AI SDK's `reconnectToStream`) and reads the whole answer from the run's Redis stream;
    a chat with nothing running answers 204."""
    [api] = one_node.apis
    chatflow_id = api.model_chatflow(mock_llm.base_url, model="paced:0.05")
    question = " ".join(f"word{n}" for n in range(60))  # about 3 s of answer
    body = {
        "id": "c-dropped",
        "messages": [{"id": "1", "role": "user", "parts": [{"type": "text", "text": question}]}],
    }
    url = f"{api.url}/api/v1/ai-sdk/{chatflow_id}"
    with requests.post(url, json=body, stream=True, timeout=30) as first:
        assert first.status_code == 200
        seen = b""
        for piece in first.iter_content(chunk_size=None):
            seen += piece
            if b'"text-delta"' in seen:
                break  # the client leaves mid-answer
    assert b'"finish"' not in seen
    again = requests.get(f"{url}/c-dropped/stream", timeout=30)
    assert again.status_code == 200
    assert again.headers["x-vercel-ai-ui-message-stream"] == "v1"
    parts = data_frames(again.content)
    assert parts[0]["type"] == "start" and parts[-1] == "[DONE]"
    assert parts[-2]["type"] == "finish"
    text = "".join(p["delta"] for p in parts[:-1] if p["type"] == "text-delta")
    assert text == f"You said: {question}"
    assert requests.get(f"{url}/never-asked/stream", timeout=5).status_code == 204
