"""The OpenAI-compatible Chat Completions API through the official `openai` Python SDK, over
a real server and the mock model: streaming and not, usage, the conversation, errors as the
SDK's own exception types, a tool agent and a retrieval chatflow through the same route."""

from __future__ import annotations

import json
import time
from typing import Any

import openai
import pytest
import requests

from tests.conftest import RunningServer
from tests.integration.test_agents import CALC, agent_flow
from tests.mock_openai import MockOpenAI

QUESTION = "how are the tulips"
ANSWER = f"You said: {QUESTION}"


def client(server: RunningServer, key: str = "unused", **headers: str) -> openai.OpenAI:
    # no retries: a refusal is the test's subject, not something to wait out
    return openai.OpenAI(
        base_url=f"{server.url}/v1", api_key=key, max_retries=0, default_headers=headers
    )


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def model_request(mock_llm: MockOpenAI, question: str) -> dict[str, Any]:
    """The body of the mock's last chat request whose last message is `question`."""
    for record in reversed(mock_llm.records):
        messages = record.body.get("messages") or []
        if messages and messages[-1].get("content") == question:
            return record.body
    raise AssertionError(f"the model was never asked {question!r}")


def test_a_completion_without_streaming(sqlite_server: RunningServer, mock_llm: MockOpenAI) -> None:
    chatflow_id = sqlite_server.model_chatflow(mock_llm.base_url)
    completion = client(sqlite_server).chat.completions.create(
        model=chatflow_id, messages=[user(QUESTION)]
    )
    assert completion.object == "chat.completion"
    assert completion.model == chatflow_id
    assert completion.choices[0].message.content == ANSWER
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    extension = (completion.model_extra or {})["tailwinds"]
    assert extension["chatflowId"] == chatflow_id and extension["chatId"]


def test_a_streamed_completion_token_by_token_with_usage(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = sqlite_server.model_chatflow(mock_llm.base_url, model="paced:0.05")
    question = "tokens arrive one by one"
    stream = client(sqlite_server).chat.completions.create(
        model=chatflow_id,
        messages=[user(question)],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = []
    model_done_at_first_token: bool | None = None
    for chunk in stream:
        chunks.append(chunk)
        if model_done_at_first_token is None and chunk.choices and chunk.choices[0].delta.content:
            # the first token is here while the model is still writing the rest
            model_done_at_first_token = mock_llm.records[-1].completed
    assert model_done_at_first_token is False
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"You said: {question}"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0
    assert all(c.id == chunks[0].id for c in chunks)
    assert all(c.usage is None for c in chunks[:-1])


def test_without_include_usage_no_usage_chunk(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = sqlite_server.model_chatflow(mock_llm.base_url)
    chunks = list(
        client(sqlite_server).chat.completions.create(
            model=chatflow_id, messages=[user(QUESTION)], stream=True
        )
    )
    assert all(c.choices for c in chunks) and all(c.usage is None for c in chunks)


def test_the_messages_are_the_history_and_the_system_message_where_allowed(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    history = [
        {"role": "system", "content": "You are a gardener."},
        user("first question"),
        {"role": "assistant", "content": "first answer"},
        user("second question"),
    ]
    plain = sqlite_server.model_chatflow(mock_llm.base_url, systemMessage="Saved prompt.")
    client(sqlite_server).chat.completions.create(model=plain, messages=history)
    sent = model_request(mock_llm, "second question")["messages"]
    # the system message is not allowed by this chatflow: its own is used, no refusal
    assert sent == [
        {"role": "system", "content": "Saved prompt."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"},
    ]
    node = {
        "id": "chat_0",
        "type": "chatOpenAI",
        "inputs": {"model": "echo", "baseUrl": mock_llm.base_url, "systemMessage": "Saved."},
    }
    open_flow = sqlite_server.create_chatflow(
        {"nodes": [node], "edges": []}, allowedOverrides=["systemMessage"]
    )["id"]
    history[-1] = user("third question")
    client(sqlite_server).chat.completions.create(model=open_flow, messages=history)
    sent = model_request(mock_llm, "third question")["messages"]
    assert sent[0] == {"role": "system", "content": "You are a gardener."}


def test_a_chat_id_header_uses_the_servers_memory(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = sqlite_server.model_chatflow(mock_llm.base_url)
    sdk = client(sqlite_server, **{"X-Tailwinds-Chat-Id": "chat-7"})
    sdk.chat.completions.create(model=chatflow_id, messages=[user("remember me")])
    sdk.chat.completions.create(model=chatflow_id, messages=[user("who am I")])
    sent = model_request(mock_llm, "who am I")["messages"]
    assert [m["content"] for m in sent] == ["remember me", "You said: remember me", "who am I"]
    stored = requests.get(
        f"{sqlite_server.url}/api/v1/chatmessage/{chatflow_id}",
        params={"chatId": "chat-7"},
        timeout=5,
    ).json()
    assert [m["content"] for m in stored][-1] == "You said: who am I"
    # `user` is the end user's id (LibreChat sends one for all their chats): not a chat id
    plain = client(sqlite_server)
    plain.chat.completions.create(model=chatflow_id, messages=[user("and now")], user="chat-7")
    sent = model_request(mock_llm, "and now")["messages"]
    assert [m["content"] for m in sent] == ["and now"]


def test_model_by_unique_name_and_the_model_list(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    node = {
        "id": "m",
        "type": "chatOpenAI",
        "inputs": {"model": "echo", "baseUrl": mock_llm.base_url},
    }
    flow = {"nodes": [node], "edges": []}
    unique = sqlite_server.create_chatflow(flow, name="unique-gardener")["id"]
    twins = [sqlite_server.create_chatflow(flow, name="twin")["id"] for _ in range(2)]
    sdk = client(sqlite_server)
    answer = sdk.chat.completions.create(model="unique-gardener", messages=[user(QUESTION)])
    assert answer.choices[0].message.content == ANSWER
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.chat.completions.create(model="twin", messages=[user(QUESTION)])
    assert all(twin in refused.value.message for twin in twins)
    assert refused.value.code == "invalid_request" and refused.value.param == "model"
    listed = {m.id: m for m in sdk.models.list()}
    assert {unique, *twins} <= set(listed)
    assert (listed[unique].model_extra or {})["name"] == "unique-gardener"


def test_errors_are_the_sdks_exceptions_with_our_message(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    sdk = client(sqlite_server)
    with pytest.raises(openai.NotFoundError) as missing:
        sdk.chat.completions.create(model="no-such-chatflow", messages=[user(QUESTION)])
    assert "no-such-chatflow" in missing.value.message
    assert missing.value.code == "chatflow_not_found"
    chatflow_id = sqlite_server.model_chatflow(mock_llm.base_url)
    with pytest.raises(openai.BadRequestError) as bad:
        sdk.chat.completions.create(
            model=chatflow_id, messages=[user(QUESTION), {"role": "assistant", "content": "x"}]
        )
    assert "last message" in bad.value.message
    # a failure before the stream: the status, not a stream
    failing = sqlite_server.model_chatflow(mock_llm.base_url, model="status:401")
    with pytest.raises(openai.APIStatusError) as upstream:
        sdk.chat.completions.create(model=failing, messages=[user(QUESTION)])
    assert upstream.value.status_code == 502


def test_a_failure_mid_stream_raises_in_the_sdk(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = sqlite_server.model_chatflow(mock_llm.base_url, model="midstream-error")
    stream = client(sqlite_server).chat.completions.create(
        model=chatflow_id, messages=[user(QUESTION)], stream=True
    )
    text = []
    with pytest.raises(openai.APIError) as failed:
        for chunk in stream:
            text.append(chunk.choices[0].delta.content or "")
    assert "".join(text)  # the tokens before the failure came through
    assert failed.value.body["code"].startswith("provider")  # type: ignore[index]


def test_an_api_key_applies_as_on_predictions(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    key = requests.post(f"{sqlite_server.url}/api/v1/apikeys", json={"name": "oa"}, timeout=5)
    assert key.status_code in (200, 201), key.text
    node = {
        "id": "m",
        "type": "chatOpenAI",
        "inputs": {"model": "echo", "baseUrl": mock_llm.base_url},
    }
    guarded = sqlite_server.create_chatflow(
        {"nodes": [node], "edges": []}, apiKeyId=key.json()["id"]
    )["id"]
    with pytest.raises(openai.AuthenticationError):
        client(sqlite_server, "wrong").chat.completions.create(
            model=guarded, messages=[user(QUESTION)]
        )
    right = client(sqlite_server, key.json()["key"])
    answer = right.chat.completions.create(model=guarded, messages=[user(QUESTION)])
    assert answer.choices[0].message.content == ANSWER
    assert guarded in {m.id for m in right.models.list()}


def test_a_tool_agent_streams_its_tool_steps_in_the_extension(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = sqlite_server.create_chatflow(agent_flow(mock_llm, [CALC]))["id"]
    question = "call:" + json.dumps([["calculator", {"expression": "6 * 7"}]])
    chunks = list(
        client(sqlite_server).chat.completions.create(
            model=chatflow_id, messages=[user(question)], stream=True
        )
    )
    steps = [
        step
        for c in chunks
        for step in ((c.model_extra or {}).get("tailwinds") or {}).get("usedTools", [])
    ]
    assert [s["tool"] for s in steps] == ["calculator"] and steps[0]["toolOutput"] == "42"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Result: 42"


def test_a_retrieval_chatflow_sends_its_sources(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    store_id = sqlite_server.create_document_store(mock_llm.base_url, name="oa-facts")
    upserted = requests.post(
        f"{sqlite_server.url}/api/v1/document-stores/{store_id}/upsert",
        json={
            "documents": [
                {"pageContent": "Tulips bloom in spring.", "metadata": {"source": "t.md"}}
            ]
        },
        timeout=10,
    )
    assert upserted.status_code == 200, upserted.text
    chatflow_id = sqlite_server.retrieval_chatflow(mock_llm.base_url, store_id)
    sdk = client(sqlite_server)
    chunks = list(
        sdk.chat.completions.create(
            model=chatflow_id, messages=[user("when do tulips bloom")], stream=True
        )
    )
    sources = [
        doc
        for c in chunks
        for doc in ((c.model_extra or {}).get("tailwinds") or {}).get("sourceDocuments", [])
    ]
    assert [s["metadata"]["source"] for s in sources] == ["t.md"]
    answer = sdk.chat.completions.create(model=chatflow_id, messages=[user("when do tulips bloom")])
    extension = (answer.model_extra or {})["tailwinds"]
    assert extension["sourceDocuments"][0]["metadata"]["source"] == "t.md"


def test_abort_ends_the_stream_with_the_sdks_error(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = sqlite_server.model_chatflow(mock_llm.base_url, model="paced:0.05")
    question = "tokens:" + json.dumps([f"a{i} " for i in range(100)])
    stream = client(sqlite_server).chat.completions.create(
        model=chatflow_id,
        messages=[user(question)],
        stream=True,
        extra_headers={"X-Tailwinds-Chat-Id": "chat-to-abort"},
    )
    aborted = None
    with pytest.raises(openai.APIError) as failed:
        for chunk in stream:
            if aborted is None and chunk.choices and chunk.choices[0].delta.content:
                aborted = requests.post(
                    f"{sqlite_server.url}/api/v1/predictions/{chatflow_id}/abort",
                    json={"chatId": "chat-to-abort"},
                    timeout=5,
                ).json()
    assert aborted == {"chatId": "chat-to-abort", "aborted": 1}
    assert failed.value.body["code"] == "aborted"  # type: ignore[index]
    assert not mock_llm.find(question).completed


def test_leaving_the_stream_stops_the_run(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = sqlite_server.model_chatflow(mock_llm.base_url, model="paced:0.05")
    question = "tokens:" + json.dumps([f"b{i} " for i in range(100)])
    stream = client(sqlite_server).chat.completions.create(
        model=chatflow_id, messages=[user(question)], stream=True
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    stream.close()
    record = mock_llm.find(question)
    deadline = time.monotonic() + 10
    while record.closed_at is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert record.closed_at is not None and not record.completed


def test_rate_limits_apply_as_on_predictions(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    node = {
        "id": "m",
        "type": "chatOpenAI",
        "inputs": {"model": "echo", "baseUrl": mock_llm.base_url},
    }
    limited = sqlite_server.create_chatflow(
        {"nodes": [node], "edges": []}, rateLimit={"requests": 1}
    )["id"]
    sdk = client(sqlite_server)
    sdk.chat.completions.create(model=limited, messages=[user(QUESTION)])
    with pytest.raises(openai.RateLimitError) as refused:
        sdk.chat.completions.create(model=limited, messages=[user(QUESTION)])
    assert refused.value.code == "rate_limited"
    assert refused.value.response.headers["retry-after"]
