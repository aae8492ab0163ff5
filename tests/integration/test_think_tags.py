"""`<think>` in an OpenAI-compatible answer's text, through a real server: reasoning only
at the answer's start (as llama.cpp's, vLLM's and Ollama's reasoning parsers read it);
once the answer has begun, a `<think>` in it is the answer's own text, streamed and stored
whole, never swallowed as reasoning."""

from __future__ import annotations

import json
from typing import Any

import requests

from tests.conftest import RunningServer
from tests.mock_openai import MockOpenAI
from tests.sse_frames import streamed, thinking_of, tokens_of


def ask(server: RunningServer, chatflow_id: str, tokens: list[str]) -> Any:
    return streamed(server.url, chatflow_id, {"question": "tokens:" + json.dumps(tokens)})


def test_a_think_tag_inside_the_answer_is_the_answers_text(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = sqlite_server.model_chatflow(mock_llm.base_url)
    tokens = ["R1 wraps its reasoning in ", "<th", "ink>", " tags: strip ", "<think>.*?</think>"]
    frames = ask(sqlite_server, chatflow_id, tokens)
    assert tokens_of(frames) == "".join(tokens)
    assert "thinking" not in [name for name, _ in frames]
    (start,) = [data for name, data in frames if name == "start"]
    history = requests.get(
        f"{sqlite_server.url}/api/v1/chatmessage/{chatflow_id}",
        params={"chatId": start["chatId"]},
        timeout=10,
    ).json()
    assert history[-1]["content"] == "".join(tokens)


def test_a_think_block_at_the_start_is_reasoning(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    chatflow_id = sqlite_server.model_chatflow(mock_llm.base_url)
    frames = ask(sqlite_server, chatflow_id, ["\n<thi", "nk>Why", " not</th", "ink>\n\nHi"])
    assert thinking_of(frames) == "Why not"
    assert tokens_of(frames) == "Hi"
