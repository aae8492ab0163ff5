"""The HTTP tools in a running server: refusals reach the model as tool errors, with no
secret in them; the custom tool's request and output. (The policy's own tables are in
tests/unit/outbound.)"""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tailwinds.config import Settings
from tailwinds.nodes import tools
from tailwinds.outbound import Fetched
from tests.conftest import RunningServer, start_server
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


@pytest.fixture(scope="module")
def page_server() -> Iterator[str]:
    """A page on this machine: the kind of service an operator opens on purpose."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f"page at {self.path}".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_operator_networks_open_a_private_service_within_the_allow_list(
    tmp_path: Path, mock_llm: MockOpenAI, page_server: str
) -> None:
    server = start_server(
        tmp_path,
        f"sqlite+aiosqlite:///{tmp_path / 'tailwinds.db'}",
        TAILWINDS_OUTBOUND_NETWORKS="127.0.0.1/32",
    )
    try:
        nodes = [
            {
                "id": "m",
                "type": "chatOpenAI",
                "inputs": {"model": "agent", "baseUrl": mock_llm.base_url},
            },
            {"id": "h", "type": "httpRequest", "inputs": {"allowList": [page_server + "/public/"]}},
            {"id": "a", "type": "toolAgent", "inputs": {}},
        ]
        edges = [
            {"source": "m", "target": "a", "targetInput": "model"},
            {"source": "h", "target": "a", "targetInput": "tools"},
        ]
        chatflow_id = server.create_chatflow({"nodes": nodes, "edges": edges})["id"]

        def tool_says(url: str) -> str:
            question = "call:" + json.dumps([["http_request", {"url": url}]])
            response = requests.post(
                f"{server.url}/api/v1/predictions/{chatflow_id}",
                json={"question": question, "streaming": True},
                timeout=15,
            )
            used = [d[0] for n, d in parse_frames(response.content) if n == "usedTools"]
            return str(used[0]["toolOutput"])

        assert tool_says(page_server + "/public/doc").endswith("page at /public/doc")
        assert "allow-list" in tool_says(page_server + "/public/../private")
        local = page_server.replace("127.0.0.1", "localhost") + "/public/doc"
        assert "allow-list" in tool_says(local)  # another host name, even if the same place
        bad = {"id": "h", "type": "httpRequest", "inputs": {"allowList": ["ftp://x/"]}}
        refused = requests.post(
            f"{server.url}/api/v1/chatflows",
            json={"name": "x", "flowData": {"nodes": [nodes[0], bad, nodes[2]], "edges": edges}},
            timeout=10,
        )
        assert refused.status_code == 400
        assert refused.json()["error"].startswith("nodes[h].inputs.allowList[0]:")
    finally:
        server.stop()
