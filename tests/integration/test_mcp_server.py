"""Chatflows as MCP tools, through the `mcp` SDK's own clients: streamable HTTP at `/mcp`,
and the stdio bridge `tailwinds mcp` started as a subprocess. Listing, a retrieval call
with its sources and progress, a wrong key, and a cancelled call that stops the model."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
import requests
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import RunningServer, start_server
from tests.integration.test_retrieval import CORPUS, qa_flow, store, upsert
from tests.mock_openai import MockOpenAI

ClientFactory = Callable[[str | None], Any]


def vars_flow(mock_llm: MockOpenAI, model: str = "echo") -> dict[str, Any]:
    return {
        "nodes": [
            {
                "id": "m",
                "type": "chatOpenAI",
                "inputs": {"model": model, "baseUrl": mock_llm.base_url},
            },
            {
                "id": "p",
                "type": "promptTemplate",
                "inputs": {
                    "template": "As a {persona} in {place}: {question}",
                    "variables": {"place": "Paris"},
                },
            },
            {"id": "c", "type": "conversationChain", "inputs": {}},
        ],
        "edges": [
            {"source": "m", "target": "c", "targetInput": "model"},
            {"source": "p", "target": "c", "targetInput": "prompt"},
        ],
    }


@dataclass
class Setup:
    server: RunningServer
    key: str  # the API key of `guarded`
    qa: str  # chatflow ids
    guarded: str
    hidden: str
    slow: str


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, mock_llm: MockOpenAI) -> Iterator[Setup]:
    home = tmp_path_factory.mktemp("mcp")
    server = start_server(home, f"sqlite+aiosqlite:///{home / 't.db'}")
    try:
        store_id = store(server, mock_llm)
        upsert(server, store_id, CORPUS)
        key = requests.post(f"{server.url}/api/v1/apikeys", json={"name": "mcp"}, timeout=5).json()
        qa = server.create_chatflow(
            qa_flow(mock_llm, store_id),
            name="Facts Q&A",
            mcpTool={"exposed": True, "description": "Answers from the facts."},
        )["id"]
        guarded = server.create_chatflow(
            vars_flow(mock_llm),
            name="persona",
            apiKeyId=key["id"],
            allowedOverrides=["vars"],
            mcpTool={"exposed": True, "name": "ask_persona"},
        )["id"]
        hidden = server.create_chatflow(vars_flow(mock_llm), name="hidden")["id"]
        slow = server.create_chatflow(
            {
                "nodes": [
                    {
                        "id": "m",
                        "type": "chatOpenAI",
                        "inputs": {"model": "paced:0.3", "baseUrl": mock_llm.base_url},
                    }
                ],
                "edges": [],
            },
            name="slow",
            mcpTool={"exposed": True},
        )["id"]
        node = {
            "id": "m",
            "type": "chatOpenAI",
            "inputs": {"model": "status:429", "baseUrl": mock_llm.base_url},
        }
        server.create_chatflow(
            {"nodes": [node], "edges": []}, name="broken", mcpTool={"exposed": True}
        )
        yield Setup(server, key["key"], qa, guarded, hidden, slow)
    finally:
        server.stop()


def http_client(server: RunningServer, mode: str = "auto") -> ClientFactory:
    """`auto`: the SDK's per-request 2026 protocol; `legacy`: the initialize handshake and
    a session, as most clients today."""

    def connect(key: str | None) -> Any:
        headers = {"Authorization": f"Bearer {key}"} if key else None
        http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60))
        transport = streamable_http_client(f"{server.url}/mcp", http_client=http)
        return _owning(http, Client(transport, mode=mode))

    return connect


def stdio_client(server: RunningServer) -> ClientFactory:
    def connect(key: str | None) -> Any:
        args = ["-m", "tailwinds", "mcp", "--url", server.url]
        if key:
            args += ["--key", key]
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAILWINDS_")}
        return Client(StdioServerParameters(command=sys.executable, args=args, env=env))

    return connect


@asynccontextmanager
async def _owning(http: httpx2.AsyncClient, client: Client) -> AsyncIterator[Client]:
    async with http, client:
        yield client


@pytest.fixture(params=["http", "http-legacy", "stdio"])
def connect(request: pytest.FixtureRequest, setup: Setup) -> ClientFactory:
    if request.param == "stdio":
        return stdio_client(setup.server)
    return http_client(setup.server, "legacy" if request.param == "http-legacy" else "auto")


def test_lists_exactly_the_exposed_chatflows_that_the_key_opens(
    setup: Setup, connect: ClientFactory
) -> None:
    async def names(key: str | None) -> dict[str, Any]:
        async with connect(key) as client:
            return {tool.name: tool for tool in (await client.list_tools()).tools}

    anonymous = asyncio.run(names(None))
    assert set(anonymous) == {"Facts_Q_A", "slow", "broken"}  # the guarded one needs its key
    qa = anonymous["Facts_Q_A"]
    assert qa.description == "Answers from the facts."
    assert qa.input_schema["required"] == ["question"]
    assert set(qa.input_schema["properties"]) == {"question", "chatId"}

    keyed = asyncio.run(names(setup.key))
    assert set(keyed) == {"Facts_Q_A", "slow", "broken", "ask_persona"}
    persona = keyed["ask_persona"].input_schema
    assert persona["required"] == ["question", "vars"]
    assert persona["properties"]["vars"]["required"] == ["persona"]
    assert persona["properties"]["vars"]["properties"]["place"]["default"] == "Paris"
    assert keyed["slow"].description == "Ask the Tailwinds chatflow 'slow'."


def test_call_answers_with_sources_after_streaming_progress(
    setup: Setup, connect: ClientFactory, mock_llm: MockOpenAI
) -> None:
    question = f"How does a bishop move in chess? {uuid.uuid4().hex[:6]}"
    seen: list[str] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        seen.append(f"progress {done:.0f} {message}")

    async def call() -> tuple[Any, Any]:
        async with connect(None) as client:
            first = await client.call_tool(
                "Facts_Q_A", {"question": question}, progress_callback=progress
            )
            seen.append("result")
            chat_id = first.structured_content["chatId"]
            again = await client.call_tool(
                "Facts_Q_A", {"question": "And the rook?", "chatId": chat_id}
            )
            return first, again

    first, again = asyncio.run(call())
    assert not first.is_error, first.content
    text = first.content[0].text
    assert text == f"You said: {question}"
    sources = first.structured_content["sourceDocuments"]
    assert sources[0]["metadata"]["source"] == "chess.md"
    assert "chess.md" in first.content[1].text
    # every token came as progress, in order, before the result
    tokens = [s for s in seen[: seen.index("result")] if s.startswith("progress")]
    assert len(tokens) == len(text.split(" ")) and seen[-1] == "result"
    assert "".join(s.split(" ", 2)[2] for s in tokens) == text
    # the follow-up continued the same chat, stored like any prediction
    assert (
        not again.is_error
        and again.structured_content["chatId"] == first.structured_content["chatId"]
    )
    stored = requests.get(
        f"{setup.server.url}/api/v1/chatmessage/{setup.qa}",
        params={"chatId": first.structured_content["chatId"]},
        timeout=5,
    ).json()
    assert [m["role"] for m in stored] == ["userMessage", "apiMessage"] * 2


def test_wrong_key_and_bad_arguments_are_tool_errors_with_the_api_codes(
    setup: Setup, connect: ClientFactory
) -> None:
    async def calls() -> list[Any]:
        async with connect("tw_wrong") as client:
            listed = {tool.name for tool in (await client.list_tools()).tools}
            assert "ask_persona" not in listed
            wrong = await client.call_tool(
                "ask_persona", {"question": "hi", "vars": {"persona": "x"}}
            )
        async with connect(setup.key) as client:
            missing = await client.call_tool("ask_persona", {"question": "hi"})
            unknown = await client.call_tool("Facts_Q_A", {"question": "hi", "colour": "red"})
            failed = await client.call_tool("broken", {"question": "hi"})
            ok = await client.call_tool(
                "ask_persona", {"question": "hi", "vars": {"persona": "pirate"}}
            )
        return [wrong, missing, unknown, failed, ok]

    wrong, missing, unknown, failed, ok = asyncio.run(calls())
    assert wrong.is_error and wrong.structured_content["error"]["code"] == "unauthorized"
    assert wrong.structured_content["error"]["status"] == 401
    assert missing.is_error and missing.structured_content["error"]["code"] == "invalid_request"
    assert "overrideConfig.vars.persona" in missing.content[0].text
    assert unknown.is_error and "arguments.colour" in unknown.content[0].text
    # a failure once the run began: the code its stream's `error` event would carry
    assert failed.is_error
    assert failed.structured_content["error"]["code"] == "provider_rate_limited"
    assert not ok.is_error and "As a pirate in Paris: hi" in ok.content[0].text


def test_cancelled_call_stops_the_model_request(
    setup: Setup, connect: ClientFactory, mock_llm: MockOpenAI
) -> None:
    question = f"cancel me please {uuid.uuid4().hex[:6]}"

    async def call_then_cancel() -> None:
        started = asyncio.Event()

        async def progress(done: float, total: float | None, message: str | None) -> None:
            started.set()

        async with connect(None) as client:
            call = asyncio.ensure_future(
                client.call_tool("slow", {"question": question}, progress_callback=progress)
            )
            await started.wait()
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            await wait_closed(mock_llm, question)

    asyncio.run(asyncio.wait_for(call_then_cancel(), 30))
    record = mock_llm.find(question)
    assert record.closed_at is not None and not record.completed


async def wait_closed(mock_llm: MockOpenAI, question: str, timeout_s: float = 10.0) -> None:
    """Until the mock sees the model request closed (it would run 0.3 s a token)."""
    deadline = time.monotonic() + timeout_s
    while mock_llm.find(question).closed_at is None:
        assert time.monotonic() < deadline, "the model request was not closed"
        await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
def queue_api(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, redis_url: str
) -> Iterator[RunningServer]:
    """One API node and one worker in queue mode."""
    from tests.integration.test_queue_mode import queue_env, start_cluster

    cluster = start_cluster(tmp_path_factory, postgres_url, queue_env(redis_url), apis=1, workers=1)
    yield cluster.apis[0]
    cluster.stop()


def test_queue_mode_call_streams_progress_and_cancels(
    queue_api: RunningServer, mock_llm: MockOpenAI
) -> None:
    def chatflow(name: str, model: str) -> None:
        node = {
            "id": "m",
            "type": "chatOpenAI",
            "inputs": {"model": model, "baseUrl": mock_llm.base_url},
        }
        queue_api.create_chatflow(
            {"nodes": [node], "edges": []}, name=name, mcpTool={"exposed": True}
        )

    suffix = uuid.uuid4().hex[:6]
    chatflow(f"echo_{suffix}", "echo")
    chatflow(f"slow_{suffix}", "paced:0.3")
    question = f"queued question {suffix}"
    seen: list[str] = []

    async def run() -> Any:
        started = asyncio.Event()

        async def progress(done: float, total: float | None, message: str | None) -> None:
            seen.append(message or "")
            started.set()

        async with http_client(queue_api)(None) as client:
            answer = await client.call_tool(
                f"echo_{suffix}", {"question": question}, progress_callback=progress
            )
            started.clear()
            call = asyncio.ensure_future(
                client.call_tool(
                    f"slow_{suffix}", {"question": "slow " + question}, progress_callback=progress
                )
            )
            await started.wait()
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            await wait_closed(mock_llm, "slow " + question)
            return answer

    answer = asyncio.run(asyncio.wait_for(run(), 60))
    assert not answer.is_error, answer.content
    assert answer.content[0].text == f"You said: {question}"
    assert "".join(seen).startswith(
        answer.content[0].text
    )  # the echo's tokens, then the slow one's
    assert not mock_llm.find("slow " + question).completed


def test_tool_settings_are_checked_and_kept_on_save(setup: Setup) -> None:
    url = f"{setup.server.url}/api/v1/chatflows/{setup.hidden}"
    bad = requests.put(url, json={"mcpTool": {"exposed": True, "name": "two words"}}, timeout=5)
    assert bad.status_code == 400 and "mcpTool.name" in bad.json()["error"]
    assert requests.get(url, timeout=5).json()["mcpTool"] is None  # off by default
    taken = requests.put(url, json={"mcpTool": {"exposed": True, "name": "ask_persona"}}, timeout=5)
    assert taken.status_code == 400 and "mcpTool.name" in taken.json()["error"]
    # nor by a rename onto an exposed chatflow's derived name
    renamed = requests.put(url, json={"name": "slow", "mcpTool": {"exposed": True}}, timeout=5)
    assert renamed.status_code == 400 and "'slow'" in renamed.json()["error"]
    tool = {"exposed": False, "name": "later", "description": "Not yet."}
    saved = requests.put(url, json={"mcpTool": tool}, timeout=5).json()
    assert saved["mcpTool"] == tool


def test_listing_is_not_guessing_keys_and_mcp_takes_the_servers_host_names(
    tmp_path: Path, mock_llm: MockOpenAI
) -> None:
    server = start_server(
        tmp_path, f"sqlite+aiosqlite:///{tmp_path / 't.db'}", TAILWINDS_ALLOWED_HOSTS="tw.test"
    )
    try:
        keys = [
            requests.post(f"{server.url}/api/v1/apikeys", json={"name": n}, timeout=5).json()
            for n in ("one", "two")
        ]
        flows = [
            server.create_chatflow(
                vars_flow(mock_llm),
                name=f"keyed {n}",
                apiKeyId=key["id"],
                mcpTool={"exposed": True, "name": f"keyed_{n}"},
            )["id"]
            for n, key in enumerate(keys)
        ]

        async def names(key: str) -> set[str]:
            async with http_client(server)(key) as client:
                return {tool.name for tool in (await client.list_tools()).tools}

        # key one does not open chatflow two: listing often is no wrong key, nor a lockout
        for _ in range(12):
            assert asyncio.run(names(keys[0]["key"])) == {"keyed_0"}
        assert asyncio.run(names(keys[1]["key"])) == {"keyed_1"}
        # a token that opens nothing is one failed key a list, as on a prediction
        for _ in range(10):
            assert asyncio.run(names("tw_" + "x" * 43)) == set()
        refused = requests.post(
            f"{server.url}/api/v1/predictions/{flows[0]}",
            json={"question": "q"},
            headers={"Authorization": "Bearer tw_" + "y" * 43},
            timeout=10,
        )
        assert refused.status_code == 429

        # /mcp answers the names the rest of the API answers, and refuses the others alike
        def probe(host: str) -> requests.Response:
            return requests.post(
                f"{server.url}/mcp",
                json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                headers={"Host": host, "Accept": "application/json, text/event-stream"},
                timeout=10,
            )

        listed = probe("tw.test")  # reaches the MCP layer (which may refuse the bare ping)
        assert listed.status_code != 421 and "host_not_allowed" not in listed.text
        foreign = probe("evil.test")
        assert foreign.status_code == 400 and foreign.json()["code"] == "host_not_allowed"
    finally:
        server.stop()
