"""Azure OpenAI and Google Gemini end to end: chatflows through the Prediction API against
`mock_clouds.py`, which speaks their wire formats; their embeddings with the real HTTP
client; bad settings refused at save with the field named."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tailwinds.errors import ProviderError
from tailwinds.providers.azure_openai import azure_embeddings
from tailwinds.providers.base import ProviderLimits
from tailwinds.providers.gemini import GeminiEmbeddings
from tailwinds.wire import WireClient
from tests.conftest import RunningServer
from tests.mock_clouds import AZURE_KEY, GEMINI_KEY, SIGNATURE, MockClouds
from tests.sse_frames import streamed, thinking_of, tokens_of


@pytest.fixture(scope="module")
def clouds() -> Iterator[MockClouds]:
    mock = MockClouds().start()
    yield mock
    mock.stop()


def azure_node(clouds: MockClouds, deployment: str = "gpt-4o", **inputs: Any) -> dict[str, Any]:
    inputs = {"endpoint": clouds.url, "deployment": deployment, "apiKey": AZURE_KEY, **inputs}
    return {"id": "m", "type": "chatAzureOpenAI", "inputs": inputs}


def gemini_node(clouds: MockClouds, model: str = "gemini-2.5-flash", **inputs: Any) -> Any:
    inputs = {"model": model, "baseUrl": clouds.url + "/v1beta", "apiKey": GEMINI_KEY, **inputs}
    return {"id": "m", "type": "chatGoogleGemini", "inputs": inputs}


def flow_of(server: RunningServer, node: dict[str, Any], **fields: Any) -> str:
    return server.create_chatflow({"nodes": [node], "edges": []}, **fields)["id"]


def agent_of(server: RunningServer, model: dict[str, Any]) -> str:
    nodes = [
        {**model, "id": "chat_0"},
        {"id": "agent_0", "type": "toolAgent", "inputs": {}},
        {"id": "calc", "type": "calculator", "inputs": {}},
    ]
    edges = [
        {"source": "chat_0", "target": "agent_0", "targetInput": "model"},
        {"source": "calc", "target": "agent_0", "targetInput": "tools"},
    ]
    return server.create_chatflow({"nodes": nodes, "edges": edges})["id"]


def ask(server: RunningServer, chatflow_id: str, question: str, **body: Any) -> Any:
    return streamed(server.url, chatflow_id, {"question": question, **body}, timeout_s=20)


# Azure OpenAI


def test_azure_streams_at_its_deployment_with_usage(
    sqlite_server: RunningServer, clouds: MockClouds
) -> None:
    chatflow_id = flow_of(sqlite_server, azure_node(clouds, temperature=0.2))
    frames = ask(sqlite_server, chatflow_id, "hello azure")
    assert tokens_of(frames) == "You said: hello azure"
    assert frames[-2][1]["usage"] == {"promptTokens": 9, "completionTokens": 4, "totalTokens": 13}
    seen = clouds.find("hello azure")
    assert seen.path == "/openai/deployments/gpt-4o/chat/completions"
    assert seen.query == {"api-version": "2024-10-21"}
    assert seen.headers["api-key"] == AZURE_KEY and "Authorization" not in seen.headers
    assert seen.body["model"] == "gpt-4o" and seen.body["temperature"] == 0.2


def test_azure_bearer_token_and_reasoning_usage(
    sqlite_server: RunningServer, clouds: MockClouds
) -> None:
    node = azure_node(
        clouds, "reasoner", auth="bearer", apiVersion="2025-01-01-preview", reasoningEffort="low"
    )
    frames = ask(sqlite_server, flow_of(sqlite_server, node), "think azure")
    assert frames[-2][1]["usage"]["reasoningTokens"] == 64
    seen = clouds.find("think azure")
    assert seen.headers["Authorization"] == f"Bearer {AZURE_KEY}"
    assert "api-key" not in seen.headers
    assert seen.query == {"api-version": "2025-01-01-preview"}
    assert seen.body["reasoning_effort"] == "low"


@pytest.mark.parametrize(
    ("deployment", "inputs", "code", "words", "text"),
    [
        ("gpt-4o", {"apiKey": "wrong"}, "provider_auth", "Access denied", ""),
        ("missing", {}, "provider_rejected", "deployment for this resource does not exist", ""),
        ("status:400", {}, "provider_rejected", "mock Azure status 400", ""),
        ("filtered", {}, "provider_rejected", "content filter", "You said:"),
    ],
)
def test_azure_errors(
    sqlite_server: RunningServer,
    clouds: MockClouds,
    deployment: str,
    inputs: dict[str, Any],
    code: str,
    words: str,
    text: str,
) -> None:
    chatflow_id = flow_of(sqlite_server, azure_node(clouds, deployment, **inputs))
    frames = ask(sqlite_server, chatflow_id, f"azure error {deployment}")
    assert frames[-2][0] == "error", frames
    assert frames[-2][1]["code"] == code
    assert words in frames[-2][1]["error"]
    assert tokens_of(frames) == text
    assert AZURE_KEY not in json.dumps(frames)


def test_azure_agent_calls_a_tool(sqlite_server: RunningServer, clouds: MockClouds) -> None:
    chatflow_id = agent_of(sqlite_server, azure_node(clouds, "agent"))
    question = "call:" + json.dumps([["calculator", {"expression": "6*7"}]])
    frames = ask(sqlite_server, chatflow_id, question)
    used = [data for name, data in frames if name == "usedTools"]
    assert used[0][0]["toolInput"] == {"expression": "6*7"}
    assert tokens_of(frames) == "Result: 42"


# Google Gemini


def test_gemini_streams_thinking_apart_with_usage(
    sqlite_server: RunningServer, clouds: MockClouds
) -> None:
    safety = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}]
    node = gemini_node(
        clouds,
        systemMessage="Be brief.",
        thinkingBudget=1024,
        safetySettings=safety,
        maxTokens=200,
    )
    frames = ask(sqlite_server, flow_of(sqlite_server, node), "hello gemini")
    names = [name for name, _ in frames]
    assert names.index("thinking") < names.index("token")
    assert thinking_of(frames) == "**Thinking**\n\nThe user wants an answer."
    assert tokens_of(frames) == "You said: hello gemini"
    # the completion counts the thinking, as OpenAI's does; reasoningTokens says how much
    assert frames[-2][1]["usage"] == {
        "promptTokens": 8,
        "completionTokens": 9,
        "totalTokens": 17,
        "reasoningTokens": 5,
    }
    seen = clouds.find("hello gemini")
    assert seen.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert seen.query == {"alt": "sse"}
    assert seen.headers["x-goog-api-key"] == GEMINI_KEY
    assert seen.body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert seen.body["safetySettings"] == safety
    assert seen.body["generationConfig"] == {
        "maxOutputTokens": 200,
        "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 1024},
    }
    assert seen.body["contents"] == [{"role": "user", "parts": [{"text": "hello gemini"}]}]


def test_thinking_dropped_by_setting_or_by_request(
    sqlite_server: RunningServer, clouds: MockClouds
) -> None:
    """The node's `thinking: false` does not ask Gemini for its thoughts; `overrideConfig.thinking`
    does the same per request where the chatflow allows it."""
    off = flow_of(sqlite_server, gemini_node(clouds, thinking=False))
    frames = ask(sqlite_server, off, "no thoughts please")
    assert "thinking" not in [name for name, _ in frames]
    # thoughts not asked for (Gemini sends none unless includeThoughts is set)
    assert "generationConfig" not in clouds.find("no thoughts please").body
    allowed = flow_of(sqlite_server, gemini_node(clouds), allowedOverrides=["thinking"])
    frames = ask(sqlite_server, allowed, "overridden thoughts", overrideConfig={"thinking": False})
    assert "thinking" not in [name for name, _ in frames]
    assert tokens_of(frames) == "You said: overridden thoughts"


def test_non_streaming_answer_has_thinking_apart(
    sqlite_server: RunningServer, clouds: MockClouds
) -> None:
    chatflow_id = flow_of(sqlite_server, gemini_node(clouds))
    response = requests.post(
        f"{sqlite_server.url}/api/v1/predictions/{chatflow_id}",
        json={"question": "whole answer"},
        timeout=20,
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["text"] == "You said: whole answer"
    assert answer["thinking"] == "**Thinking**\n\nThe user wants an answer."
    # the history holds the answer alone, never the reasoning
    messages = requests.get(
        f"{sqlite_server.url}/api/v1/chatmessage/{chatflow_id}",
        params={"chatId": answer["chatId"]},
        timeout=10,
    ).json()
    assert [m["content"] for m in messages if m["role"] == "apiMessage"][-1] == answer["text"]


@pytest.mark.parametrize(
    ("model", "inputs", "code", "words", "text"),
    [
        ("gemini-2.5-flash", {"apiKey": "wrong"}, "provider_auth", "API key not valid", ""),
        ("blocked", {}, "provider_rejected", "blockReason SAFETY", ""),
        ("unsafe", {"thinking": False}, "provider_rejected", "finishReason SAFETY", "You said:"),
        ("midstream-error", {}, "provider_unavailable", "overloaded", "Hel"),
        ("status-403", {}, "provider_auth", "mock Gemini status 403", ""),
    ],
)
def test_gemini_errors(
    sqlite_server: RunningServer,
    clouds: MockClouds,
    model: str,
    inputs: dict[str, Any],
    code: str,
    words: str,
    text: str,
) -> None:
    node = gemini_node(clouds, **inputs)
    node["inputs"]["model"] = model
    chatflow_id = flow_of(sqlite_server, node)
    frames = ask(sqlite_server, chatflow_id, f"gemini error {model}")
    assert frames[-2][0] == "error", frames
    assert frames[-2][1]["code"] == code
    assert words in frames[-2][1]["error"]
    assert tokens_of(frames) == text
    assert GEMINI_KEY not in json.dumps(frames)


def test_gemini_agent_sends_the_thought_signature_back(
    sqlite_server: RunningServer, clouds: MockClouds
) -> None:
    chatflow_id = agent_of(sqlite_server, gemini_node(clouds, "agent"))
    question = "call:" + json.dumps([["calculator", {"expression": "6*7"}]])
    frames = ask(sqlite_server, chatflow_id, question)
    assert tokens_of(frames) == "Result: 42", frames
    # each round's reasoning is shown; none of it goes back to the model
    assert thinking_of(frames) == 2 * "**Thinking**\n\nThe user wants an answer."
    second = clouds.seen[-1].body
    assert "Thinking" not in json.dumps(second["contents"])
    assert second["tools"][0]["functionDeclarations"][0]["name"] == "calculator"
    model_turn, results = second["contents"][-2:]
    assert model_turn["parts"][0]["thoughtSignature"] == SIGNATURE
    assert results["parts"][0]["functionResponse"]["name"] == "calculator"


# saving


@pytest.mark.parametrize(
    ("node", "field"),
    [
        (
            {"type": "chatGoogleGemini", "inputs": {"model": "g", "safetySettings": [{}]}},
            "nodes[m].inputs.safetySettings.0.category",
        ),
        (
            {"type": "chatGoogleGemini", "inputs": {"model": "g", "thinkingBudget": 40000}},
            "nodes[m].inputs.thinkingBudget",
        ),
        (
            {"type": "chatAzureOpenAI", "inputs": {"endpoint": "https://x", "deployment": "a/b"}},
            "nodes[m].inputs.deployment",
        ),
        (
            {
                "type": "chatAzureOpenAI",
                "inputs": {"endpoint": "https://x", "deployment": "d", "apiVersion": "latest"},
            },
            "nodes[m].inputs.apiVersion",
        ),
        (
            {"type": "chatAnthropic", "inputs": {"model": "c", "thinkingBudget": 4096}},
            "nodes[m].inputs.thinkingBudget",
        ),
    ],
)
def test_bad_settings_refused_at_save(
    sqlite_server: RunningServer, node: dict[str, Any], field: str
) -> None:
    response = requests.post(
        f"{sqlite_server.url}/api/v1/chatflows",
        json={"name": "bad", "flowData": {"nodes": [{"id": "m", **node}], "edges": []}},
        timeout=10,
    )
    assert response.status_code == 400, response.text
    assert field in response.text


@pytest.mark.parametrize(
    ("embedding", "words"),
    [
        ({"type": "azureOpenAIEmbeddings", "model": "ada"}, "needs baseUrl"),
        (
            {
                "type": "azureOpenAIEmbeddings",
                "model": "a",
                "baseUrl": "https://x",
                "deployment": "",
            },
            "deployment",
        ),
    ],
)
def test_bad_embedding_settings_refused(
    sqlite_server: RunningServer, embedding: dict[str, Any], words: str
) -> None:
    response = requests.post(
        f"{sqlite_server.url}/api/v1/document-stores",
        json={"name": "bad", "embedding": embedding},
        timeout=10,
    )
    assert response.status_code == 400, response.text
    assert words in response.text


def test_embeddings_of_both(clouds: MockClouds) -> None:
    """Each embedding client against its mock, over real HTTP: the vectors in order, and
    a bad key an auth failure."""
    limits = ProviderLimits(retries=0)

    async def main() -> None:
        wire = WireClient()
        texts = ["a kite", "the wind", "a kite in the wind"]
        azure = azure_embeddings(wire, clouds.url, "ada", "2024-10-21", AZURE_KEY, limits, 2)
        gemini = GeminiEmbeddings(
            wire, clouds.url + "/v1beta", GEMINI_KEY, "text-embedding-004", limits
        )
        for client in (azure, gemini):
            vectors = await client.embed(texts)
            assert len(vectors) == 3 and len(vectors[0]) == 16
            assert vectors[0] != vectors[1]
        assert clouds.seen[-1].body["requests"][0] == {
            "model": "models/text-embedding-004",
            "content": {"parts": [{"text": "a kite"}]},
        }
        for bad in (
            azure_embeddings(wire, clouds.url, "ada", "2024-10-21", "nope", limits),
            GeminiEmbeddings(wire, clouds.url + "/v1beta", "nope", "text-embedding-004", limits),
        ):
            with pytest.raises(ProviderError) as caught:
                await bad.embed(["x"])
            assert caught.value.code == "provider_auth"

    asyncio.run(main())
