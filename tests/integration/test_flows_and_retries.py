"""Chains with a prompt and memory, and the provider client's retries, end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import RunningServer, start_server
from tests.mock_openai import MockOpenAI
from tests.sse_frames import check_order, parse_frames, tokens_of


def chain_flow(base_url: str, template: str, k: int) -> dict[str, Any]:
    return {
        "nodes": [
            {
                "id": "chat_0",
                "type": "chatOpenAI",
                "inputs": {"model": "echo", "baseUrl": base_url, "systemMessage": "sys"},
            },
            {
                "id": "prompt_0",
                "type": "promptTemplate",
                "inputs": {"template": template, "variables": {"tone": "dry"}},
            },
            {"id": "memory_0", "type": "bufferWindowMemory", "inputs": {"k": k}},
            {"id": "chain_0", "type": "conversationChain", "inputs": {}},
        ],
        "edges": [
            {"source": "chat_0", "target": "chain_0", "targetInput": "model"},
            {"source": "prompt_0", "target": "chain_0", "targetInput": "prompt"},
            {"source": "memory_0", "target": "chain_0", "targetInput": "memory"},
        ],
    }


def ask(server: RunningServer, chatflow_id: str, question: str, **body: Any) -> requests.Response:
    return requests.post(
        f"{server.url}/api/v1/predictions/{chatflow_id}",
        json={"question": question, **body},
        timeout=10,
    )


def test_chain_renders_prompt_and_windows_memory(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    flow = chain_flow(mock_llm.base_url, "Tone: {tone}. {history}\nQ: {question}", k=1)
    chatflow_id = sqlite_server.create_chatflow(flow, allowedOverrides=["vars"])["id"]
    first = ask(sqlite_server, chatflow_id, "chain one").json()
    chat_id = first["chatId"]
    ask(sqlite_server, chatflow_id, "chain two", chatId=chat_id)
    ask(
        sqlite_server,
        chatflow_id,
        "chain three",
        chatId=chat_id,
        overrideConfig={"vars": {"tone": "warm"}},
    )
    sent = mock_llm.find("chain three").body["messages"]
    # k=1: only the last turn, rendered into the prompt's {history}
    assert sent == [
        {"role": "system", "content": "sys"},
        {
            "role": "user",
            "content": "Tone: warm. Human: chain two\nAI: You said: Tone: dry. Human: chain one\n"
            "AI: You said: Tone: dry. \nQ: chain one\nQ: chain two\nQ: chain three",
        },
    ]


def test_chain_without_history_in_template_sends_history_as_messages(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = sqlite_server.create_chatflow(chain_flow(mock_llm.base_url, "[{question}]", k=5))[
        "id"
    ]
    chat_id = ask(sqlite_server, chatflow_id, "msg one").json()["chatId"]
    ask(sqlite_server, chatflow_id, "msg two", chatId=chat_id)
    sent = mock_llm.find("[msg two]").body["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[1]["content"] == "msg one"  # stored history holds the question as asked


def test_missing_template_variable_is_400_before_the_stream(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = sqlite_server.create_chatflow(
        chain_flow(mock_llm.base_url, "{question} {topic}", k=1)
    )["id"]
    response = ask(sqlite_server, chatflow_id, "x", streaming=True)
    assert response.status_code == 400
    assert response.json()["error"].startswith("overrideConfig.vars.topic:")


@pytest.fixture(scope="module")
def retrying_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    home: Path = tmp_path_factory.mktemp("retrying")
    server = start_server(
        home,
        f"sqlite+aiosqlite:///{home / 't.db'}",
        TAILWINDS_PROVIDER_RETRIES="2",
        TAILWINDS_PROVIDER_RETRY_BACKOFF_S="0.01",
    )
    yield server
    server.stop()


def test_retries_before_the_first_token(
    retrying_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = retrying_server.model_chatflow(mock_llm.base_url, model="flaky:2")
    response = ask(retrying_server, chatflow_id, "retry me", streaming=True)
    frames = parse_frames(response.content)
    check_order(frames)
    assert tokens_of(frames) == "You said: retry me"
    assert sum(1 for r in mock_llm.records if r.body["messages"][-1]["content"] == "retry me") == 3


def test_retries_give_up(retrying_server: RunningServer, mock_llm: MockOpenAI) -> None:
    chatflow_id = retrying_server.model_chatflow(mock_llm.base_url, model="flaky:5")
    frames = parse_frames(ask(retrying_server, chatflow_id, "give up", streaming=True).content)
    assert frames[-2][1]["code"] == "provider_unavailable"
    assert sum(1 for r in mock_llm.records if r.body["messages"][-1]["content"] == "give up") == 3


def test_server_without_usage_support(retrying_server: RunningServer, mock_llm: MockOpenAI) -> None:
    chatflow_id = retrying_server.model_chatflow(mock_llm.base_url, model="no-usage")
    answer = ask(retrying_server, chatflow_id, "no usage here").json()
    assert answer["text"] == "You said: no usage here"
    assert answer["usage"] == {"promptTokens": None, "completionTokens": None, "totalTokens": None}
    assert "stream_options" not in mock_llm.find("no usage here").body
    assert json.dumps(answer)
