"""The httpRequest tool's guard: allow-list, and no private, loopback, link-local or
metadata address, by literal, by name, or by redirect."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import requests

from tailwinds.providers import safe_http
from tailwinds.providers.safe_http import PublicOnlyResolver, Refused, check_url, public_address
from tests.conftest import RunningServer
from tests.mock_openai import MockOpenAI
from tests.sse_frames import parse_frames

ALLOW = ["http://", "https://"]


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "::1",
        "fd00:ec2::254",
        "::ffff:127.0.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "100.64.0.1",
    ],
)
def test_non_public_addresses(address: str) -> None:
    assert not public_address(address)


def test_public_addresses() -> None:
    assert public_address("93.184.216.34") and public_address("2606:4700::1111")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/",
        "ftp://example.com/",
        "http://user:pass@example.com/",
        "file:///etc/passwd",
    ],
)
def test_check_url_refuses(url: str) -> None:
    with pytest.raises(Refused):
        check_url(url, ALLOW)


def test_allow_list() -> None:
    assert check_url("https://api.example.com/v1/x", ["https://api.example.com/"])
    with pytest.raises(Refused, match="allow-list"):
        check_url("https://api.example.com.evil.io/", ["https://api.example.com/"])


def test_names_that_resolve_to_loopback_are_refused() -> None:
    async def resolve(host: str) -> Any:
        return await PublicOnlyResolver().resolve(host, 80)

    with pytest.raises(Refused, match="not a public address"):
        asyncio.run(resolve("localhost"))


def test_fetch_refuses_localhost_and_a_redirect_to_loopback(mock_llm: MockOpenAI) -> None:
    with pytest.raises(Refused):
        asyncio.run(safe_http.fetch("http://localhost:1/", allow_list=ALLOW))
    with pytest.raises(Refused):
        asyncio.run(safe_http.fetch(mock_llm.base_url + "/models", allow_list=ALLOW))


def test_every_redirect_hop_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """A public first hop that redirects to a loopback address stops at the second hop."""
    hops: list[str] = []
    real_check = safe_http.check_url

    def recording_check(url: str, allow_list: list[str], public_only: bool = True) -> str:
        hops.append(url)
        return real_check(url, allow_list, public_only)

    class Redirecting:
        status = 302
        headers = {"Location": "http://127.0.0.1:9/secret"}

        async def __aenter__(self) -> Redirecting:
            return self

        async def __aexit__(self, *exc: object) -> None:
            return None

    monkeypatch.setattr(safe_http, "check_url", recording_check)
    monkeypatch.setattr(safe_http.aiohttp.ClientSession, "request", lambda *a, **k: Redirecting())
    with pytest.raises(Refused, match="not a public address"):
        asyncio.run(safe_http.fetch("http://93.184.216.34/start", allow_list=ALLOW))
    assert hops == ["http://93.184.216.34/start", "http://127.0.0.1:9/secret"]


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
    assert used[0]["toolOutput"].startswith("error: 169.254.169.254 is not a public address")
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
    assert used[0]["toolOutput"] == "error: 127.0.0.1 is not a public address"
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

    async def fake_fetch(url: str, **kwargs: Any) -> safe_http.Fetched:
        sent.update(url=url, **kwargs)
        return safe_http.Fetched(url, 200, '{"temp": 3, "echo": "tok-123"}', False)

    monkeypatch.setattr(safe_http, "fetch", fake_fetch)
    inputs = CustomTool.Inputs.model_validate(
        {
            "name": "w",
            "description": "d",
            "url": "https://hooks.example.com/w",
            "headers": {"Authorization": "tok-123"},
        }
    )
    tool = CustomTool("w", inputs, {})
    result = asyncio.run(tool.run(None, {"city": "Oslo"}))  # type: ignore[arg-type]
    assert result.output == '{"temp": 3, "echo": "***"}'
    assert sent["method"] == "POST" and sent["body"] == {"city": "Oslo"}
    assert sent["allow_list"] == ["https://hooks.example.com/w"]

    async def failing(url: str, **kwargs: Any) -> safe_http.Fetched:
        return safe_http.Fetched(url, 500, "boom", False)

    monkeypatch.setattr(safe_http, "fetch", failing)
    with pytest.raises(ToolError, match="HTTP 500"):
        asyncio.run(tool.run(None, {}))  # type: ignore[arg-type]
