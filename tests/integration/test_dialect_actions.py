"""A tool call waiting for a person reaches clients of the other dialects (issue 24 with
issue 21): the OpenAI-compatible chunk's `tailwinds.action`, AG-UI's `CUSTOM` `action`
event and the AI SDK's `data-action` part carry the action id, so the client can post
its decision and the same stream goes on. Without it the run waited out its whole expiry
with nobody able to decide. A real server, the mock model asking for the call."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tests.conftest import RunningServer
from tests.integration.test_approvals import approval_chatflow, calls
from tests.integration.test_queue_mode import Cluster, queue_env, start_cluster
from tests.mock_openai import MockOpenAI


def _openai(chatflow_id: str, question: str) -> tuple[str, dict[str, Any]]:
    body = {
        "model": chatflow_id,
        "stream": True,
        "messages": [{"role": "user", "content": question}],
    }
    return "/v1/chat/completions", body


def _agui(chatflow_id: str, question: str) -> tuple[str, dict[str, Any]]:
    body = {
        "threadId": "actions-agui",
        "runId": "r1",
        "messages": [{"id": "1", "role": "user", "content": question}],
    }
    return f"/api/v1/agui/{chatflow_id}", body


def _ai_sdk(chatflow_id: str, question: str) -> tuple[str, dict[str, Any]]:
    body = {
        "id": "actions-ai-sdk",
        "messages": [{"id": "1", "role": "user", "parts": [{"type": "text", "text": question}]}],
    }
    return f"/api/v1/ai-sdk/{chatflow_id}", body


def _openai_action(chunk: dict[str, Any]) -> dict[str, Any] | None:
    action: dict[str, Any] | None = (chunk.get("tailwinds") or {}).get("action")
    return action


def _agui_action(event: dict[str, Any]) -> dict[str, Any] | None:
    if event.get("type") == "CUSTOM" and event.get("name") == "action":
        value: dict[str, Any] = event["value"]
        return value
    return None


def _ai_sdk_action(chunk: dict[str, Any]) -> dict[str, Any] | None:
    if chunk.get("type") == "data-action":
        data: dict[str, Any] = chunk["data"]
        return data
    return None


Dialect = tuple[
    Callable[[str, str], tuple[str, dict[str, Any]]],
    Callable[[dict[str, Any]], dict[str, Any] | None],
]
DIALECTS: dict[str, Dialect] = {
    "openai": (_openai, _openai_action),
    "agui": (_agui, _agui_action),
    "ai-sdk": (_ai_sdk, _ai_sdk_action),
}


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_the_action_reaches_the_dialect_and_its_decision_lets_the_stream_go_on(
    sqlite_server: RunningServer, mock_llm: MockOpenAI, dialect: str
) -> None:
    run_and_approve(sqlite_server, sqlite_server, mock_llm, dialect)


@pytest.fixture(scope="module")
def two_nodes(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, redis_url: str
) -> Iterator[Cluster]:
    running = start_cluster(tmp_path_factory, postgres_url, queue_env(redis_url), apis=2, workers=1)
    yield running
    running.stop()


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_queue_mode_the_action_is_relayed_and_decided_on_the_other_node(
    two_nodes: Cluster, mock_llm: MockOpenAI, dialect: str
) -> None:
    a, b = two_nodes.apis
    run_and_approve(a, b, mock_llm, dialect)


def run_and_approve(
    streaming: RunningServer, deciding: RunningServer, mock_llm: MockOpenAI, dialect: str
) -> None:
    """Stream an approval chatflow in `dialect` from `streaming`, approve each action it
    carries on `deciding`, and check the same stream went on with the tool's result."""
    request_of, action_of = DIALECTS[dialect]
    # a short expiry: were the action not carried, the stream would end declined (expired)
    chatflow_id = approval_chatflow(streaming, mock_llm, approvalTimeoutS=20)
    path, body = request_of(chatflow_id, calls("6 * 7"))
    frames: list[str] = []
    actions: list[dict[str, Any]] = []
    with requests.post(f"{streaming.url}{path}", json=body, stream=True, timeout=30) as r:
        assert r.status_code == 200, r.text
        for raw in r.iter_lines():
            line = raw.decode()
            if not line.startswith("data: "):
                continue
            frames.append(line[6:])
            if line == "data: [DONE]":
                continue
            action = action_of(json.loads(line[6:]))
            if action is not None:
                actions.append(action)
                decided = requests.post(
                    f"{deciding.url}/api/v1/predictions/{chatflow_id}/actions/{action['actionId']}",
                    json={"decision": "approve"},
                    timeout=10,
                )
                assert decided.status_code == 200, decided.text
    [action] = actions
    assert action["tool"] == "calculator"
    assert action["toolInput"] == {"expression": "6 * 7"}
    assert action["expiresAt"].endswith("Z")
    # the same stream went on: the tool ran (approved) and the answer carries its result
    assert any("Result:" in f for f in frames)
    assert any('"42"' in f or " 42" in f for f in frames)
