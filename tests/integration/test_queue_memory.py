"""Queue mode: what a worker reads back as memory, and what it stores, follow the same
rules as local mode (an Anthropic chat goes on after an empty answer, a client's history
is made well-formed on the worker, text PostgreSQL refuses is stored)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.integration.test_memory_and_storage import (
    anthropic_flow,
    errors,
    messages_sent,
    stored,
    stream,
)
from tests.integration.test_queue_mode import Cluster, queue_env, start_cluster
from tests.mock_openai import MockOpenAI


@pytest.fixture(scope="module")
def small_cluster(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, redis_url: str
) -> Iterator[Cluster]:
    running = start_cluster(tmp_path_factory, postgres_url, queue_env(redis_url), apis=1, workers=1)
    yield running
    running.stop()


def test_a_worker_sends_anthropic_a_well_formed_history(
    small_cluster: Cluster, mock_llm: MockOpenAI
) -> None:
    api = small_cluster.apis[0]
    flow = anthropic_flow(api, mock_llm)
    assert not errors(stream(api, flow, "tokens:[]", chatId="queued-empty"))
    for question in ("queued second", "queued third"):
        assert not errors(stream(api, flow, question, chatId="queued-empty"))
    assert messages_sent(mock_llm, "queued third") == [
        {"role": "user", "content": "queued second"},
        {"role": "assistant", "content": "You said: queued second"},
        {"role": "user", "content": "queued third"},
    ]
    history = [
        {"role": "userMessage", "content": "h1"},
        {"role": "apiMessage", "content": ""},
        {"role": "userMessage", "content": "h2"},
    ]
    assert not errors(stream(api, flow, "queued with history", history=history))
    assert messages_sent(mock_llm, "queued with history") == [
        {"role": "user", "content": "queued with history"}
    ]


def test_a_worker_stores_text_postgresql_refuses(
    small_cluster: Cluster, mock_llm: MockOpenAI
) -> None:
    api = small_cluster.apis[0]
    flow = api.model_chatflow(mock_llm.base_url)
    assert not errors(stream(api, flow, "queued \x00 NUL", chatId="queued-nul"))
    assert [m["content"] for m in stored(api, flow, "queued-nul")] == [
        "queued \ufffd NUL",
        "You said: queued \ufffd NUL",
    ]
    refused = requests.post(
        f"{api.url}/api/v1/predictions/{anthropic_flow(api, mock_llm)}",
        json={"question": "q", "overrideConfig": {"sessionId": "s" * 1025}},
        timeout=10,
    )
    assert refused.status_code == 400
    assert refused.json()["error"] == (
        "overrideConfig.sessionId: expected at most 1024 characters, got 1025"
    )
