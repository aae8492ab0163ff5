"""The dialects through their real JavaScript clients, run with Node against a real server
on the mock model: the `openai` npm package (OpenAI-compatible API), `@ag-ui/client`'s
`HttpAgent` with `@ag-ui/core`'s schemas (AG-UI), and the `ai` package's
`DefaultChatTransport` and `readUIMessageStream` (the AI SDK's UI message stream).

The clients are in tests/dialects/js (its package-lock.json committed); `node_modules` is
installed by `npm ci` and kept while the lockfile, package.json and Node's version are
unchanged (a stamp file holds their hash), as tests/web does."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import RunningServer
from tests.integration.test_agents import CALC, agent_flow
from tests.mock_openai import MockOpenAI
from tests.requirements import require_command

JS = Path(__file__).parent / "js"
STAMP = JS / "node_modules" / ".tailwinds-installed"
NPM_CI_TIMEOUT_S = 480
CLIENT_TIMEOUT_S = 60
HOW = "`apt-get install nodejs npm` (scripts/install-test-deps): Node.js 20 or later"

pytestmark = pytest.mark.timeout(NPM_CI_TIMEOUT_S + 120)

TOOL_QUESTION = "call:" + json.dumps([["calculator", {"expression": "6 * 7"}]])


@pytest.fixture(scope="module")
def node() -> str:
    """Node, with tests/dialects/js/node_modules installed from the lockfile."""
    node = require_command("node", HOW)
    npm = require_command("npm", HOW)
    digest = hashlib.sha256()
    for name in ("package-lock.json", "package.json"):
        digest.update((JS / name).read_bytes())
    digest.update(subprocess.run([node, "--version"], capture_output=True).stdout)
    state = digest.hexdigest()
    if not (STAMP.exists() and STAMP.read_text() == state):
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=JS,
            capture_output=True,
            text=True,
            timeout=NPM_CI_TIMEOUT_S,
        )
        assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"
        STAMP.write_text(state)
    return node


def run(node: str, script: str, *args: str, **extra_env: str) -> dict[str, Any]:
    """Run one client script; its one line of JSON output."""
    env = {**os.environ, "NO_COLOR": "1", **extra_env}
    result = subprocess.run(
        [node, script, *args],
        cwd=JS,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT_S,
    )
    assert result.returncode == 0, f"{script} exited {result.returncode}:\n{result.stderr}"
    lines = result.stdout.strip().splitlines()
    assert lines, f"{script} printed nothing:\n{result.stderr}"
    return json.loads(lines[-1])  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def flows(sqlite_server: RunningServer, mock_llm: MockOpenAI) -> dict[str, str]:
    """An echo chatflow, a tool agent and a retrieval chatflow over one document."""
    store_id = sqlite_server.create_document_store(mock_llm.base_url, name="js-facts")
    document = {"pageContent": "Tulips bloom in spring.", "metadata": {"source": "tulips.md"}}
    upserted = requests.post(
        f"{sqlite_server.url}/api/v1/document-stores/{store_id}/upsert",
        json={"documents": [document]},
        timeout=10,
    )
    assert upserted.status_code == 200, upserted.text
    return {
        "echo": sqlite_server.model_chatflow(mock_llm.base_url),
        "paced": sqlite_server.model_chatflow(mock_llm.base_url, model="paced:0.02"),
        "failing": sqlite_server.model_chatflow(mock_llm.base_url, model="midstream-error"),
        # a second of silence first: keep-alive comments (every 0.3 s in the tests) come
        "slow": sqlite_server.model_chatflow(mock_llm.base_url, model="slowstart:1"),
        "agent": sqlite_server.create_chatflow(agent_flow(mock_llm, [CALC]))["id"],
        "retrieval": sqlite_server.retrieval_chatflow(mock_llm.base_url, store_id),
    }


# ---- the `openai` npm package


def test_openai_npm_streams_and_answers(
    node: str, sqlite_server: RunningServer, flows: dict[str, str]
) -> None:
    streamed = run(
        node, "openai_client.mjs", sqlite_server.url, flows["paced"], "hi there", "stream"
    )
    assert streamed.get("error") is None, streamed
    assert streamed["text"] == "You said: hi there"
    assert streamed["contentChunks"] == 4 and streamed["finish"] == "stop"
    assert streamed["usage"]["total_tokens"] > 0
    once = run(node, "openai_client.mjs", sqlite_server.url, flows["echo"], "hi there", "once")
    assert once["text"] == "You said: hi there" and once["usage"]["total_tokens"] > 0


def test_openai_npm_tools_sources_and_errors(
    node: str, sqlite_server: RunningServer, flows: dict[str, str]
) -> None:
    agent = run(
        node, "openai_client.mjs", sqlite_server.url, flows["agent"], TOOL_QUESTION, "stream"
    )
    assert agent["text"] == "Result: 42"
    steps = [s for e in agent["extensions"] for s in e.get("usedTools", [])]
    assert [s["tool"] for s in steps] == ["calculator"]
    found = run(
        node, "openai_client.mjs", sqlite_server.url, flows["retrieval"], "tulips?", "stream"
    )
    sources = [d for e in found["extensions"] for d in e.get("sourceDocuments", [])]
    assert [d["metadata"]["source"] for d in sources] == ["tulips.md"]
    missing = run(node, "openai_client.mjs", sqlite_server.url, "nope", "hi", "once")
    assert missing["error"]["name"] == "NotFoundError" and "nope" in missing["error"]["message"]
    failed = run(node, "openai_client.mjs", sqlite_server.url, flows["failing"], "hi", "stream")
    assert failed["error"]["name"] == "APIError", failed


# ---- AG-UI through @ag-ui/client


def agui_url(server: RunningServer, chatflow_id: str) -> str:
    return f"{server.url}/api/v1/agui/{chatflow_id}"


def assistant_text(messages: list[dict[str, Any]]) -> str:
    return "".join(m.get("content") or "" for m in messages if m["role"] == "assistant")


def test_agui_run_validates_and_assembles_the_answer(
    node: str, sqlite_server: RunningServer, flows: dict[str, str], mock_llm: MockOpenAI
) -> None:
    out = run(
        node, "agui_client.mjs", agui_url(sqlite_server, flows["echo"]), "second", "first", "one"
    )
    assert out.get("error") is None, out
    assert out["invalid"] == []
    assert out["types"] == [
        "RUN_STARTED",
        "TEXT_MESSAGE_START",
        *["TEXT_MESSAGE_CONTENT"] * 3,  # "You", " said:", " second"
        "TEXT_MESSAGE_END",
        "RUN_FINISHED",
    ]
    assert assistant_text(out["newMessages"]) == "You said: second"
    assert out["result"]["chatflowId"] == flows["echo"]
    # the thread the client sent is the history: nothing stored is read as well
    sent = [r for r in mock_llm.records if r.body["messages"][-1]["content"] == "second"]
    assert [m["content"] for m in sent[-1].body["messages"]] == ["first", "one", "second"]


def test_agui_tool_calls_and_sources(
    node: str, sqlite_server: RunningServer, flows: dict[str, str]
) -> None:
    out = run(node, "agui_client.mjs", agui_url(sqlite_server, flows["agent"]), TOOL_QUESTION)
    assert out.get("error") is None and out["invalid"] == [], out
    assert out["types"][1:5] == [
        "TOOL_CALL_START",
        "TOOL_CALL_ARGS",
        "TOOL_CALL_END",
        "TOOL_CALL_RESULT",
    ]
    calls = [c for m in out["messages"] if m["role"] == "assistant" for c in m.get("toolCalls", [])]
    assert [c["function"]["name"] for c in calls] == ["calculator"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"expression": "6 * 7"}
    results = [m for m in out["messages"] if m["role"] == "tool"]
    assert [r["content"] for r in results] == ["42"]
    assert assistant_text(out["messages"]) == "Result: 42"
    found = run(node, "agui_client.mjs", agui_url(sqlite_server, flows["retrieval"]), "tulips?")
    assert found["invalid"] == []
    [custom] = found["custom"]
    assert custom["name"] == "sourceDocuments"
    assert custom["value"][0]["metadata"]["source"] == "tulips.md"


def test_agui_failure_is_run_error(
    node: str, sqlite_server: RunningServer, flows: dict[str, str]
) -> None:
    out = run(node, "agui_client.mjs", agui_url(sqlite_server, flows["failing"]), "hi")
    assert out["invalid"] == []
    assert out["types"][-1] == "RUN_ERROR" and out["runError"]["code"].startswith("provider")


def test_agui_abort_run_stops_the_run(
    node: str, sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = sqlite_server.model_chatflow(mock_llm.base_url, model="paced:0.05")
    question = "tokens:" + json.dumps([f"c{i} " for i in range(100)])
    out = run(
        node, "agui_client.mjs", agui_url(sqlite_server, chatflow_id), question, AGUI_ABORT="1"
    )
    assert out["aborted"] and "RUN_FINISHED" not in out["types"]
    record = mock_llm.find(question)
    deadline = time.monotonic() + 10
    while record.closed_at is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert record.closed_at is not None and not record.completed


# ---- the AI SDK's UI message stream through the `ai` package


def ai_sdk_url(server: RunningServer, chatflow_id: str) -> str:
    return f"{server.url}/api/v1/ai-sdk/{chatflow_id}"


def test_ai_sdk_reader_assembles_the_answer(
    node: str, sqlite_server: RunningServer, flows: dict[str, str]
) -> None:
    out = run(node, "ai_sdk_client.mjs", ai_sdk_url(sqlite_server, flows["echo"]), "hello")
    assert out.get("error") is None and out["errors"] == [], out
    assert out["types"] == [
        "start",
        "text-start",
        *["text-delta"] * 3,  # "You", " said:", " hello"
        "text-end",
        "finish",
    ]
    message = out["message"]
    assert message["role"] == "assistant"
    text = "".join(p["text"] for p in message["parts"] if p["type"] == "text")
    assert text == "You said: hello"
    assert message["metadata"]["chatflowId"] == flows["echo"]


def test_ai_sdk_tool_and_source_parts(
    node: str, sqlite_server: RunningServer, flows: dict[str, str]
) -> None:
    out = run(node, "ai_sdk_client.mjs", ai_sdk_url(sqlite_server, flows["agent"]), TOOL_QUESTION)
    assert out.get("error") is None and out["errors"] == [], out
    [tool] = [p for p in out["message"]["parts"] if p["type"] == "dynamic-tool"]
    assert tool["toolName"] == "calculator" and tool["state"] == "output-available"
    assert tool["input"] == {"expression": "6 * 7"} and tool["output"] == "42"
    found = run(node, "ai_sdk_client.mjs", ai_sdk_url(sqlite_server, flows["retrieval"]), "tulips?")
    assert found.get("error") is None and found["errors"] == [], found
    parts = found["message"]["parts"]
    [source] = [p for p in parts if p["type"] == "source-document"]
    assert source["title"] == "tulips.md" and source["mediaType"] == "text/plain"
    [data] = [p for p in parts if p["type"] == "data-sourceDocuments"]
    assert data["data"][0]["pageContent"] == "Tulips bloom in spring."


def test_ai_sdk_failure_is_an_error_part(
    node: str, sqlite_server: RunningServer, flows: dict[str, str]
) -> None:
    out = run(node, "ai_sdk_client.mjs", ai_sdk_url(sqlite_server, flows["failing"]), "hi")
    assert out["errors"] and "error" in out["types"], out
    assert out["types"][-1] == "finish"


def test_keepalive_comments_are_skipped_by_every_client(
    node: str, sqlite_server: RunningServer, flows: dict[str, str]
) -> None:
    slow = flows["slow"]
    openai_out = run(node, "openai_client.mjs", sqlite_server.url, slow, "wait", "stream")
    assert openai_out.get("error") is None and openai_out["text"] == "You said: wait"
    agui_out = run(node, "agui_client.mjs", agui_url(sqlite_server, slow), "wait")
    assert agui_out.get("error") is None and agui_out["invalid"] == []
    assert assistant_text(agui_out["newMessages"]) == "You said: wait"
    ai_out = run(node, "ai_sdk_client.mjs", ai_sdk_url(sqlite_server, slow), "wait")
    assert ai_out.get("error") is None and ai_out["errors"] == []
    assert "".join(p["text"] for p in ai_out["message"]["parts"] if p["type"] == "text") == (
        "You said: wait"
    )
    raw = requests.post(
        ai_sdk_url(sqlite_server, slow),
        json={"messages": [{"role": "user", "parts": [{"type": "text", "text": "wait"}]}]},
        timeout=30,
    )
    assert b": ping\n\n" in raw.content  # the silence did carry keep-alives


def test_a_waiting_tool_call_passes_each_clients_schema(
    node: str, sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    """The `action` of a call waiting for approval (AG-UI's `CUSTOM` `action`, the AI SDK's
    `data-action` part) is taken by the real clients; left undecided, it expires and the
    run goes on to its end."""
    calc = {**CALC, "inputs": {"requireApproval": "always"}}
    flow = agent_flow(mock_llm, [calc], approvalTimeoutS=1)
    chatflow_id = sqlite_server.create_chatflow(flow)["id"]
    agui = run(
        node, "agui_client.mjs", f"{sqlite_server.url}/api/v1/agui/{chatflow_id}", TOOL_QUESTION
    )
    assert agui["invalid"] == [] and "runError" not in agui
    [action] = [c["value"] for c in agui["custom"] if c["name"] == "action"]
    assert action["tool"] == "calculator" and action["toolInput"] == {"expression": "6 * 7"}
    assert agui["types"][-1] == "RUN_FINISHED"
    ai = run(
        node, "ai_sdk_client.mjs", f"{sqlite_server.url}/api/v1/ai-sdk/{chatflow_id}", TOOL_QUESTION
    )
    assert ai["errors"] == [] and "error" not in ai
    [part] = [p for p in ai["message"]["parts"] if p["type"] == "data-action"]
    assert part["data"]["tool"] == "calculator" and ai["types"][-1] == "finish"


def test_ai_sdk_reconnects_to_a_dropped_stream(
    node: str, sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    """`DefaultChatTransport.reconnectToStream` after the POST's stream was aborted
    mid-answer gets the whole answer again from its start; the run went on meanwhile."""
    chatflow_id = sqlite_server.model_chatflow(mock_llm.base_url, model="paced:0.05")
    question = " ".join(f"word{n}" for n in range(60))  # about 3 s of answer
    out = run(node, "ai_sdk_resume.mjs", ai_sdk_url(sqlite_server, chatflow_id), question, "gone")
    assert out.get("error") is None and out["errors"] == [], out
    assert "text-delta" in out["before"] and "finish" not in out["before"]
    assert out["reconnected"] is True, out
    assert out["types"][0] == "start" and out["types"][-1] == "finish", out["types"]
    text = "".join(p["text"] for p in out["message"]["parts"] if p["type"] == "text")
    assert text == f"You said: {question}"
