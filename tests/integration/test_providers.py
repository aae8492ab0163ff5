"""Anthropic Messages and Ollama's native chat, through the Prediction API, against a mock
that replays their streaming formats."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from tests.conftest import RunningServer
from tests.mock_openai import MockOpenAI
from tests.sse_frames import check_order, parse_frames, tokens_of


def chatflow(
    server: RunningServer, node_type: str, base_url: str, model: str, **inputs: Any
) -> str:
    node = {"id": "m", "type": node_type, "inputs": {"model": model, "baseUrl": base_url, **inputs}}
    return server.create_chatflow({"nodes": [node]})["id"]


def stream(
    server: RunningServer, chatflow_id: str, question: str, **body: Any
) -> list[tuple[str, Any]]:
    response = requests.post(
        f"{server.url}/api/v1/predictions/{chatflow_id}",
        json={"question": question, "streaming": True, **body},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    frames = parse_frames(response.content)
    check_order(frames)
    return frames


def test_anthropic_streams_with_usage_and_system(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = chatflow(
        sqlite_server,
        "chatAnthropic",
        mock_llm.root_url,
        "claude-test",
        apiKey="sk-ant-secret1",
        systemMessage="S",
    )
    tokens = ["Hé", "llo\n", "😀"]
    frames = stream(sqlite_server, chatflow_id, "tokens:" + json.dumps(tokens))
    assert tokens_of(frames) == "".join(tokens)
    assert frames[-2][1]["usage"] == {"promptTokens": 11, "completionTokens": 3, "totalTokens": 14}
    record = mock_llm.find("tokens:" + json.dumps(tokens))
    assert record.headers["x-api-key"] == "sk-ant-secret1"
    assert record.headers["anthropic-version"] == "2023-06-01"
    assert record.body["system"] == "S"
    assert record.body["max_tokens"] == 1024
    assert record.body["messages"] == [{"role": "user", "content": "tokens:" + json.dumps(tokens)}]


def test_anthropic_history_alternates(sqlite_server: RunningServer, mock_llm: MockOpenAI) -> None:
    chatflow_id = chatflow(sqlite_server, "chatAnthropic", mock_llm.root_url, "claude-test")
    history = [
        {"role": "apiMessage", "content": "greeting first"},
        {"role": "userMessage", "content": "a"},
        {"role": "userMessage", "content": "b"},
        {"role": "apiMessage", "content": "c"},
    ]
    stream(sqlite_server, chatflow_id, "alternate please", history=history)
    assert mock_llm.find("alternate please").body["messages"] == [
        {"role": "user", "content": "a\n\nb"},
        {"role": "assistant", "content": "c"},
        {"role": "user", "content": "alternate please"},
    ]


@pytest.mark.parametrize(
    ("model", "code"),
    [
        ("status:401", "provider_auth"),
        ("status:429", "provider_rate_limited"),
        ("status:529", "provider_unavailable"),
        ("overloaded", "provider_unavailable"),
        ("nostop", "provider_bad_response"),
    ],
)
def test_anthropic_errors(
    sqlite_server: RunningServer, mock_llm: MockOpenAI, model: str, code: str
) -> None:
    chatflow_id = chatflow(sqlite_server, "chatAnthropic", mock_llm.root_url, model)
    frames = stream(sqlite_server, chatflow_id, f"anthropic {model}")
    assert frames[-2][0] == "error"
    assert frames[-2][1]["code"] == code
    if model == "overloaded":
        assert "Overloaded" in frames[-2][1]["error"]
        assert tokens_of(frames) == "You said:"


def test_ollama_streams_with_usage(sqlite_server: RunningServer, mock_llm: MockOpenAI) -> None:
    chatflow_id = chatflow(
        sqlite_server,
        "chatOllama",
        mock_llm.root_url,
        "llama3.2",
        temperature=0.3,
        keepAlive="5m",
        maxTokens=50,
    )
    frames = stream(sqlite_server, chatflow_id, "hello ollama")
    assert tokens_of(frames) == "You said: hello ollama"
    assert frames[-2][1]["usage"] == {"promptTokens": 7, "completionTokens": 4, "totalTokens": 11}
    body = mock_llm.find("hello ollama").body
    assert body["options"] == {"temperature": 0.3, "num_predict": 50}
    assert body["keep_alive"] == "5m"
    assert body["stream"] is True


@pytest.mark.parametrize(
    ("model", "code", "text"),
    [
        ("missing", "provider_rejected", "not found, try pulling it first"),
        ("midstream-error", "provider_unavailable", "an error was encountered"),
    ],
)
def test_ollama_errors(
    sqlite_server: RunningServer, mock_llm: MockOpenAI, model: str, code: str, text: str
) -> None:
    chatflow_id = chatflow(sqlite_server, "chatOllama", mock_llm.root_url, model)
    frames = stream(sqlite_server, chatflow_id, f"ollama {model}")
    assert frames[-2][1]["code"] == code
    assert text in frames[-2][1]["error"]
