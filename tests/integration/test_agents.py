"""The tool agent end to end: streamed tool-call deltas assembled, tools run in parallel,
`usedTools` as each finishes, guards, and tools' own behaviour."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import RunningServer, start_server
from tests.mock_openai import MockOpenAI
from tests.sse_frames import streamed, tokens_of


def agent_flow(mock_llm: MockOpenAI, tools: list[dict[str, Any]], **inputs: Any) -> dict[str, Any]:
    nodes = [
        {
            "id": "chat_0",
            "type": "chatOpenAI",
            "inputs": {"model": "agent", "baseUrl": mock_llm.base_url},
        },
        {"id": "agent_0", "type": "toolAgent", "inputs": inputs},
        *tools,
    ]
    edges = [{"source": "chat_0", "target": "agent_0", "targetInput": "model"}]
    edges += [{"source": t["id"], "target": "agent_0", "targetInput": "tools"} for t in tools]
    return {"nodes": nodes, "edges": edges}


CALC = {"id": "calc", "type": "calculator", "inputs": {}}
CLOCK = {"id": "clock", "type": "currentDateTime", "inputs": {"defaultTimezone": "Asia/Tokyo"}}


def ask(server: RunningServer, chatflow_id: str, question: str) -> list[tuple[str, Any]]:
    return streamed(server.url, chatflow_id, {"question": question}, timeout_s=15)


def test_parallel_calls_stream_used_tools_then_the_answer(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = sqlite_server.create_chatflow(agent_flow(mock_llm, [CALC, CLOCK]))["id"]
    question = "call:" + json.dumps(
        [
            ["calculator", {"expression": "(2 + 3) * 4 / 6"}],
            ["current_date_time", {"timezone": "Europe/Paris"}],
        ]
    )
    frames = ask(sqlite_server, chatflow_id, question)
    names = [name for name, _ in frames]
    used = [data for name, data in frames if name == "usedTools"]
    assert len(used) == 2 and names.index("usedTools") < names.index("token")
    by_tool = {u[0]["tool"]: u[0] for u in used}
    assert by_tool["calculator"]["toolInput"] == {"expression": "(2 + 3) * 4 / 6"}
    assert by_tool["calculator"]["toolOutput"] == "10/3 (≈ 3.33333333333)"
    assert "Europe/Paris" in by_tool["current_date_time"]["toolOutput"]
    assert tokens_of(frames).startswith("Result: ")
    assert "10/3" in tokens_of(frames)
    # the second model call saw the assistant's tool calls and both results
    second = [
        r
        for r in mock_llm.records
        if r.body.get("tools") and r.body["messages"][-1]["role"] == "tool"
    ][-1]
    roles = [m["role"] for m in second.body["messages"]]
    assert roles[-3:] == ["assistant", "tool", "tool"]
    assert len(second.body["messages"][-3]["tool_calls"]) == 2
    assert frames[-2][1]["usage"]["totalTokens"] == 30  # two model calls, summed
    assert all(isinstance(u[0]["durationMs"], int) and u[0]["durationMs"] >= 0 for u in used)

    # the traces are stored with the answer, and come back with the chat's messages
    chat_id = frames[0][1]["chatId"]
    stored = requests.get(
        f"{sqlite_server.url}/api/v1/chatmessage/{chatflow_id}",
        params={"chatId": chat_id},
        timeout=5,
    ).json()
    answer = next(m for m in stored if m["role"] == "apiMessage")
    assert {t["tool"] for t in answer["usedTools"]} == {"calculator", "current_date_time"}
    assert {t["tool"]: t for t in answer["usedTools"]}["calculator"]["toolOutput"] == (
        "10/3 (≈ 3.33333333333)"
    )
    assert [m["usedTools"] for m in stored if m["role"] == "userMessage"] == [[]]

    # the JSON answer carries them too
    whole = requests.post(
        f"{sqlite_server.url}/api/v1/predictions/{chatflow_id}",
        json={"question": "call:" + json.dumps([["calculator", {"expression": "1+1"}]])},
        timeout=15,
    ).json()
    assert [(t["tool"], t["toolOutput"]) for t in whole["usedTools"]] == [("calculator", "2")]


def test_tool_errors_are_results_and_repeats_are_stopped(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = sqlite_server.create_chatflow(agent_flow(mock_llm, [CALC], maxIterations=3))["id"]
    frames = ask(
        sqlite_server,
        chatflow_id,
        "call:"
        + json.dumps(
            [
                ["calculator", {"expression": "1/0"}],
                ["nope", {}],
                # minutes of the event loop's time, if it were computed
                ["calculator", {"expression": "((10**1000)**1000)**10"}],
            ]
        ),
    )
    outputs = sorted(d[0]["toolOutput"] for n, d in frames if n == "usedTools")
    assert outputs == [
        "error: division by zero",
        "error: the result is too large (over 4000 digits)",
        "error: there is no tool 'nope'; tools: calculator",
    ]
    assert frames[-2][0] == "metadata"

    looping = ask(
        sqlite_server, chatflow_id, "loop:" + json.dumps(["calculator", {"expression": "2**10"}])
    )
    used = [d[0]["toolOutput"] for n, d in looping if n == "usedTools"]
    assert used[0] == "1024"
    assert all(u.startswith("error: this exact call was made already") for u in used[1:])
    assert looping[-2] == (
        "error",
        {"error": "the agent made 3 rounds of tool calls without answering", "code": "agent_limit"},
    )


def test_agent_needs_a_tool_calling_model(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    flow = agent_flow(mock_llm, [CALC])
    flow["nodes"][0] = {"id": "chat_0", "type": "chatLocal", "inputs": {}}
    response = requests.post(
        f"{sqlite_server.url}/api/v1/chatflows", json={"name": "a", "flowData": flow}, timeout=5
    )
    assert response.status_code == 400
    assert "cannot call tools" in response.json()["error"]


def test_retriever_tool_sends_sources(sqlite_server: RunningServer, mock_llm: MockOpenAI) -> None:
    store_id = sqlite_server.create_document_store(mock_llm.base_url, "s")
    requests.post(
        f"{sqlite_server.url}/api/v1/document-stores/{store_id}/upsert",
        json={
            "documents": [
                {"pageContent": "Penguins live in Antarctica.", "metadata": {"source": "p"}}
            ]
        },
        timeout=5,
    )
    tool = {
        "id": "docs",
        "type": "retrieverTool",
        "inputs": {"documentStoreId": store_id, "name": "animal_facts"},
    }
    chatflow_id = sqlite_server.create_chatflow(agent_flow(mock_llm, [tool]))["id"]
    frames = ask(
        sqlite_server, chatflow_id, "call:" + json.dumps([["animal_facts", {"query": "penguins"}]])
    )
    names = [n for n, _ in frames]
    assert names.index("sourceDocuments") < names.index("usedTools") < names.index("token")
    assert (
        frames[names.index("sourceDocuments")][1][0]["pageContent"]
        == "Penguins live in Antarctica."
    )


@pytest.mark.parametrize(("node_type", "root"), [("chatAnthropic", True), ("chatOllama", True)])
def test_agent_on_anthropic_and_ollama(
    sqlite_server: RunningServer, mock_llm: MockOpenAI, node_type: str, root: bool
) -> None:
    flow = agent_flow(mock_llm, [CALC, CLOCK])
    flow["nodes"][0] = {
        "id": "chat_0",
        "type": node_type,
        "inputs": {"model": "agent", "baseUrl": mock_llm.root_url},
    }
    chatflow_id = sqlite_server.create_chatflow(flow)["id"]
    question = "call:" + json.dumps(
        [["calculator", {"expression": "6 * 7"}], ["current_date_time", {"timezone": "UTC"}]]
    )
    frames = ask(sqlite_server, chatflow_id, question)
    used = {d[0]["tool"]: d[0]["toolOutput"] for n, d in frames if n == "usedTools"}
    assert used["calculator"] == "42"
    assert "UTC" in used["current_date_time"]
    assert tokens_of(frames).startswith("Result: ")
    assert "42" in tokens_of(frames)


def test_a_chatflow_as_a_tool(sqlite_server: RunningServer, mock_llm: MockOpenAI) -> None:
    echo = sqlite_server.model_chatflow(mock_llm.base_url)
    tool = {"id": "sub", "type": "chatflowTool", "inputs": {"chatflowId": echo, "name": "ask_echo"}}
    chatflow_id = sqlite_server.create_chatflow(agent_flow(mock_llm, [tool]))["id"]
    frames = ask(
        sqlite_server, chatflow_id, "call:" + json.dumps([["ask_echo", {"question": "hi there"}]])
    )
    used = [d[0] for n, d in frames if n == "usedTools"]
    assert [(u["tool"], u["toolOutput"]) for u in used] == [("ask_echo", "You said: hi there")]
    # the called chatflow kept the exchange, in a chat of its own
    chat_id = frames[0][1]["chatId"]
    own = requests.get(
        f"{sqlite_server.url}/api/v1/chatmessage/{echo}",
        params={"chatId": f"{chat_id}:sub"},
        timeout=5,
    ).json()
    assert [m["content"] for m in own] == ["hi there", "You said: hi there"]

    # a chatflow that calls itself is stopped a few levels down, with a result, not a hang
    looping = sqlite_server.create_chatflow(agent_flow(mock_llm, [tool]))["id"]
    itself = {
        "id": "sub",
        "type": "chatflowTool",
        "inputs": {"chatflowId": looping, "name": "ask_echo"},
    }
    requests.put(
        f"{sqlite_server.url}/api/v1/chatflows/{looping}",
        json={"flowData": agent_flow(mock_llm, [itself])},
        timeout=5,
    ).raise_for_status()
    question = "done"
    for _ in range(5):
        question = "call:" + json.dumps([["ask_echo", {"question": question}]])
    frames = ask(sqlite_server, looping, question)
    assert "more than 3 deep" in tokens_of(frames)

    bad = dict(tool, inputs={"chatflowId": "no-such-chatflow"})
    refused = requests.post(
        f"{sqlite_server.url}/api/v1/chatflows",
        json={"name": "x", "flowData": agent_flow(mock_llm, [bad])},
        timeout=5,
    )
    assert refused.status_code == 400
    assert "nodes[sub].inputs.chatflowId" in refused.json()["error"]


MCP_SERVER = Path(__file__).parents[1] / "fixtures" / "mcp_server.py"


@pytest.fixture(scope="module")
def mcp_server_allowed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("mcp")
    server = start_server(
        home, f"sqlite+aiosqlite:///{home / 't.db'}", TAILWINDS_MCP_COMMANDS=sys.executable
    )
    yield server
    server.stop()


def test_the_tools_of_a_real_mcp_server(
    mcp_server_allowed: RunningServer, mock_llm: MockOpenAI
) -> None:
    server = mcp_server_allowed
    mcp = {
        "id": "mcp",
        "type": "mcpTools",
        "inputs": {"command": [sys.executable, str(MCP_SERVER)], "include": ["add", "fail"]},
    }
    chatflow_id = server.create_chatflow(agent_flow(mock_llm, [mcp]))["id"]
    frames = ask(
        server,
        chatflow_id,
        "call:" + json.dumps([["add", {"a": 2, "b": 40}], ["fail", {"reason": "on purpose"}]]),
    )
    used = {d[0]["tool"]: d[0]["toolOutput"] for n, d in frames if n == "usedTools"}
    assert used["add"] == "42"
    assert used["fail"].startswith("error:") and "on purpose" in used["fail"]
    # the model was offered the server's tools, as the server describes them, minus `shout`
    offered = [r for r in mock_llm.records if r.body.get("tools")][-1].body["tools"]
    assert sorted(t["function"]["name"] for t in offered) == ["add", "fail"]
    assert offered[0]["function"]["parameters"]["properties"]
    # a second run reuses the session (the server process stays the same)
    again = ask(server, chatflow_id, "call:" + json.dumps([["add", {"a": 1, "b": 1}]]))
    assert [d[0]["toolOutput"] for n, d in again if n == "usedTools"] == ["2"]
    assert len(_processes_running(str(MCP_SERVER))) == 1


def _processes_running(script: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if script.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found


def test_mcp_commands_must_be_allowed(sqlite_server: RunningServer, mock_llm: MockOpenAI) -> None:
    mcp = {"id": "mcp", "type": "mcpTools", "inputs": {"command": ["rm", "-rf", "/"]}}
    refused = requests.post(
        f"{sqlite_server.url}/api/v1/chatflows",
        json={"name": "x", "flowData": agent_flow(mock_llm, [mcp])},
        timeout=5,
    )
    assert refused.status_code == 400
    assert "TAILWINDS_MCP_COMMANDS" in refused.json()["error"]
    assert "nodes[mcp].inputs.command" in refused.json()["error"]
    neither = dict(mcp, inputs={})
    refused = requests.post(
        f"{sqlite_server.url}/api/v1/chatflows",
        json={"name": "x", "flowData": agent_flow(mock_llm, [neither])},
        timeout=5,
    )
    assert refused.status_code == 400 and "either" in refused.json()["error"]
