"""The HTTP tools in a running server: refusals reach the model as tool errors, with no
secret in them; the custom tool's request and output. (The policy's own tables are in
tests/unit/outbound.)"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import requests

from tailwinds.config import Settings
from tailwinds.nodes import tools
from tailwinds.outbound import Fetched
from tests.conftest import RunningServer
from tests.mock_openai import MockOpenAI
from tests.sse_frames import parse_frames


def test_agent_reports_a_refused_url(sqlite_server: RunningServer, mock_llm: MockOpenAI) -> None:
    nodes = [
        {
            "id": "m",
            "type": "chatOpenAI",
            "inputs": {"model": "agent", "baseUrl": mock_llm.base_url},
        },
        {
            "id": "h",
            "type": "httpRequest",
            "inputs": {"allowList": ["http://"], "headers": {"X-Token": "hdr-secret-123"}},
        },
        {"id": "a", "type": "toolAgent", "inputs": {}},
    ]
    edges = [
        {"source": "m", "target": "a", "targetInput": "model"},
        {"source": "h", "target": "a", "targetInput": "tools"},
    ]
    chatflow = sqlite_server.create_chatflow({"nodes": nodes, "edges": edges})
    assert chatflow["flowData"]["nodes"][1]["inputs"]["headers"] == "********"
    question = "call:" + json.dumps(
        [["http_request", {"url": "http://169.254.169.254/latest/meta-data/"}]]
    )
    response = requests.post(
        f"{sqlite_server.url}/api/v1/predictions/{chatflow['id']}",
        json={"question": question, "streaming": True},
        timeout=10,
    )
    used = [d[0] for n, d in parse_frames(response.content) if n == "usedTools"]
    assert used[0]["toolOutput"].startswith("error: 169.254.169.254 is a cloud metadata address")
    assert "hdr-secret-123" not in response.text and "hdr-secret-123" not in sqlite_server.log()
    # a masked round trip keeps the sealed headers
    url = f"{sqlite_server.url}/api/v1/chatflows/{chatflow['id']}"
    fetched = requests.get(url, timeout=5).json()
    assert requests.put(url, json={"flowData": fetched["flowData"]}, timeout=5).status_code == 200


def test_custom_tool_spec_and_refused_webhook(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    nodes = [
        {
            "id": "m",
            "type": "chatOpenAI",
            "inputs": {"model": "agent", "baseUrl": mock_llm.base_url},
        },
        {
            "id": "w",
            "type": "customTool",
            "inputs": {
                "name": "weather",
                "description": "Weather in a city",
                "schema": schema,
                "url": "http://127.0.0.1:9/hook",
            },
        },
        {"id": "a", "type": "toolAgent", "inputs": {}},
    ]
    edges = [
        {"source": "m", "target": "a", "targetInput": "model"},
        {"source": "w", "target": "a", "targetInput": "tools"},
    ]
    chatflow_id = sqlite_server.create_chatflow({"nodes": nodes, "edges": edges})["id"]
    question = "call:" + json.dumps([["weather", {"city": "Oslo"}]])
    response = requests.post(
        f"{sqlite_server.url}/api/v1/predictions/{chatflow_id}",
        json={"question": question, "streaming": True},
        timeout=10,
    )
    used = [d[0] for n, d in parse_frames(response.content) if n == "usedTools"]
    assert used[0]["toolOutput"] == "error: 127.0.0.1 is a loopback address"
    tools = mock_llm.find(question).body["tools"]
    assert tools == [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "Weather in a city",
                "parameters": schema,
            },
        }
    ]


def test_custom_tool_output(monkeypatch: pytest.MonkeyPatch) -> None:
    from tailwinds.nodes.tools import CustomTool, ToolError

    sent: dict[str, Any] = {}

    async def fake_fetch(url: str, **kwargs: Any) -> Fetched:
        sent.update(url=url, **kwargs)
        return Fetched(url, 200, '{"temp": 3, "echo": "tok-123"}', False)

    class Ctx:
        class resources:
            settings = Settings()

    monkeypatch.setattr(tools, "fetch", fake_fetch)
    inputs = CustomTool.Inputs.model_validate(
        {
            "name": "w",
            "description": "d",
            "url": "https://hooks.example.com/w",
            "headers": {"Authorization": "tok-123"},
        }
    )
    tool = CustomTool("w", inputs, {})
    result = asyncio.run(tool.run(Ctx(), {"city": "Oslo"}))  # type: ignore[arg-type]
    assert result.output == '{"temp": 3, "echo": "***"}'
    assert sent["method"] == "POST" and sent["body"] == {"city": "Oslo"}
    assert sent["policy"].private is False

    async def failing(url: str, **kwargs: Any) -> Fetched:
        return Fetched(url, 500, "boom", False)

    monkeypatch.setattr(tools, "fetch", failing)
    with pytest.raises(ToolError, match="HTTP 500"):
        asyncio.run(tool.run(Ctx(), {}))  # type: ignore[arg-type]
