"""A server-side cap on an answer's length (TAILWINDS_MAX_ANSWER_CHARS), whatever the node's
maxTokens says: what fits is streamed and stored, then `answer_too_long` and `end`, and the
turn is stored failed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import RunningServer, start_server
from tests.mock_openai import MockOpenAI
from tests.sse_frames import check_order, parse_frames, tokens_of


@pytest.fixture
def capped_server(tmp_path: Path) -> Iterator[RunningServer]:
    server = start_server(
        tmp_path / "home",
        f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        TAILWINDS_MAX_ANSWER_CHARS="10",
    )
    yield server
    server.stop()


def test_an_answer_past_the_cap_ends_with_an_error(
    capped_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    for node_type in ("chatOpenAI", "chatAnthropic", "chatOllama"):
        base = mock_llm.base_url if node_type == "chatOpenAI" else mock_llm.root_url
        node = {"id": "m", "type": node_type, "inputs": {"model": "m", "baseUrl": base}}
        chatflow_id = capped_server.create_chatflow({"nodes": [node]})["id"]
        question = "tokens:" + json.dumps(["Hello ", "wörld, ", "again"])
        response = requests.post(
            f"{capped_server.url}/api/v1/predictions/{chatflow_id}",
            json={"question": question, "streaming": True, "chatId": node_type},
            timeout=10,
        )
        frames = parse_frames(response.content)
        check_order(frames)
        assert tokens_of(frames) == "Hello wörl", node_type
        assert frames[-2][0] == "error"
        assert frames[-2][1]["code"] == "answer_too_long"
        stored = requests.get(
            f"{capped_server.url}/api/v1/chatmessage/{chatflow_id}",
            params={"chatId": node_type},
            timeout=10,
        ).json()
        answer = [m for m in stored if m["role"] == "apiMessage"]
        assert [(m["status"], m["content"]) for m in answer] == [("error", "Hello wörl")]
