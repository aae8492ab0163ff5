"""A tool call's input nested very deep, from the model or from the person approving it:
bounded where it comes in, so the events and the stored turn that wrap it can always be
written. Before, 252 levels broke the stream mid-way (no `error`, no `end`) and the turn
was not stored; 300 levels in a decision's `toolInput` was a 500."""

from __future__ import annotations

import json
from typing import Any

import requests

from tests.conftest import RunningServer
from tests.integration.test_agents import CALC, agent_flow
from tests.integration.test_approvals import approval_chatflow, calls
from tests.mock_openai import MockOpenAI
from tests.sse_frames import check_order, parse_frames


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def test_a_models_arguments_nested_too_deep_are_an_invalid_call_not_a_broken_stream(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = sqlite_server.create_chatflow(agent_flow(mock_llm, [CALC]))["id"]
    question = "call:" + json.dumps([["calculator", {"expression": "1+1", "a": nested(252)}]])
    response = requests.post(
        f"{sqlite_server.url}/api/v1/predictions/{chatflow_id}",
        json={"question": question, "streaming": True, "chatId": "deep-args"},
        timeout=30,
    )
    assert response.status_code == 200
    frames = parse_frames(response.content)
    check_order(frames)  # start first, end last and once
    names = [name for name, _ in frames]
    assert names[-1] == "end" and "error" not in names
    [tools] = [data for name, data in frames if name == "usedTools"]
    assert "nested more than" in json.dumps(tools[0]["toolInput"])
    stored = requests.get(
        f"{sqlite_server.url}/api/v1/chatmessage/{chatflow_id}",
        params={"chatId": "deep-args"},
        timeout=10,
    ).json()
    assert stored[-1]["status"] == "complete"


def test_a_decisions_tool_input_nested_too_deep_is_a_400_naming_it(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = approval_chatflow(sqlite_server, mock_llm)
    url = f"{sqlite_server.url}/api/v1/predictions/{chatflow_id}"
    with requests.post(
        url, json={"question": calls("1+1"), "streaming": True}, stream=True, timeout=30
    ) as stream:
        action_id = None
        lines = stream.iter_lines()
        for raw in lines:
            line = raw.decode()
            if line.startswith('data: {"actionId"'):
                action_id = json.loads(line[6:])["actionId"]
                break
        assert action_id is not None
        for depth in (63, 300):
            refused = requests.post(
                f"{url}/actions/{action_id}",
                json={
                    "decision": "approve",
                    "toolInput": {"expression": "2+2", "a": nested(depth)},
                },
                timeout=10,
            )
            assert refused.status_code == 400, refused.text
            assert refused.json()["error"].startswith("toolInput: ")
        # the action still waits: a sound decision is taken and the stream goes on
        approved = requests.post(
            f"{url}/actions/{action_id}",
            json={"decision": "approve", "toolInput": {"expression": "2+2"}},
            timeout=10,
        )
        assert approved.status_code == 200
        rest = b"\n".join(lines).decode()
    assert "event: end" in rest and "event: error" not in rest


def test_a_documents_metadata_nested_too_deep_is_refused_at_the_upsert(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    """Stored, it would have broken every stream that retrieves it (the `sourceDocuments`
    event wraps it three levels more than the upsert's JSON)."""
    store_id = sqlite_server.create_document_store(mock_llm.base_url)
    document = {"pageContent": "deep", "metadata": {"source": "a", "x": nested(252)}}
    refused = requests.post(
        f"{sqlite_server.url}/api/v1/document-stores/{store_id}/upsert",
        json={"documents": [{"pageContent": "fine", "metadata": {"source": "b"}}, document]},
        timeout=10,
    )
    assert refused.status_code == 400
    assert refused.json()["error"].startswith("documents.1.metadata: ")
