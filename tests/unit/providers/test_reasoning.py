"""The reasoning channel apart from the answer: `<think>` tags split on the fly wherever
the pieces are cut, and the reasoning that must go back with a tool call (Anthropic's
signed thinking blocks, Gemini's thought signatures) in the next request's body."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from tailwinds.engine.events import ThinkingEvent
from tailwinds.messages import ChatMessage, ToolCall
from tailwinds.providers.anthropic_messages import _body as anthropic_body
from tailwinds.providers.base import ChatRequest
from tailwinds.providers.gemini import contents
from tailwinds.providers.reasoning import ThinkSplitter
from tests.unit.providers.transcript_replay import FakeWire, provider, transcript


def split(pieces: list[str]) -> tuple[str, str]:
    splitter = ThinkSplitter()
    out: list[str | ThinkingEvent] = []
    for piece in filter(None, pieces):  # providers pass on no empty text
        out += splitter.feed(piece) if splitter.busy or "<" in piece else [piece]
    out += splitter.flush()
    assert all(p.text if isinstance(p, ThinkingEvent) else p for p in out), "an empty piece"
    text = "".join(p for p in out if isinstance(p, str))
    thinking = "".join(p.text for p in out if isinstance(p, ThinkingEvent))
    return text, thinking


CASES = [
    ("<think>why</think>\n\nAnswer", "Answer", "why"),
    ("no tags at all <b>", "no tags at all <b>", ""),
    ("a < b and <thin", "a < b and <thin", ""),  # a start of a tag never closed is text
    ("<think>open to the end", "", "open to the end"),
    ("<think>x</thi", "", "x</thi"),
    ("<think></think>Only answer", "Only answer", ""),
    (" \n<think>lead</think>\n\nA", "A", "lead"),
    # a `<think>` after the answer has begun is the answer's own text, never swallowed
    ("Before <think>mid</think> after", "Before <think>mid</think> after", ""),
    ("<think>1</think>A<think>2</think>B", "A<think>2</think>B", "1"),
    ('re.sub(r"<think>.*?</think>", "", s)', 're.sub(r"<think>.*?</think>", "", s)', ""),
    ("  <b>bold</b>", "  <b>bold</b>", ""),
]


@pytest.mark.parametrize(("whole", "text", "thinking"), CASES)
def test_tags_cut_anywhere(whole: str, text: str, thinking: str) -> None:
    assert split([whole]) == (text, thinking)
    assert split(list(whole)) == (text, thinking)
    for i in range(1, len(whole)):
        for j in range(i, len(whole)):
            assert split([whole[:i], whole[i:j], whole[j:]]) == (text, thinking), (i, j)


def test_anthropic_thinking_goes_back_before_its_tool_use() -> None:
    """Extended thinking with tools: the thinking blocks (signature, and the redacted
    one's data) return unchanged at the head of the assistant turn."""

    async def calls() -> list[ToolCall]:
        wire = FakeWire([transcript("anthropic/thinking_tool_use.txt")])
        request = ChatRequest(model="m", messages=[ChatMessage("user", "hi")])
        stream = provider("anthropic", wire).stream_chat(request)
        return [p async for p in stream if type(p) is ToolCall]

    (call,) = asyncio.run(calls())
    request = ChatRequest(
        model="claude",
        messages=[
            ChatMessage("user", "6*7?"),
            ChatMessage("assistant", "", (call,)),
            ChatMessage("tool", "42", tool_call_id=call.id),
        ],
        thinking_budget=2048,
        max_tokens=4096,
    )
    body = orjson.loads(anthropic_body(request))
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    blocks = body["messages"][1]["content"]
    assert [b["type"] for b in blocks] == ["thinking", "redacted_thinking", "tool_use"]
    assert blocks[0]["thinking"] == "Let me think 😀."
    assert blocks[0]["signature"] == "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"
    assert blocks[1]["data"] == "EmwKAhgBEgy3va3pzix/LafPsn4a"


def test_gemini_thought_signature_goes_back_on_its_call() -> None:
    call = ToolCall("call_0", "calculator", {"expression": "6*7"}, {"thoughtSignature": "c2ln"})
    other = ToolCall("call_1", "search", {"q": "x"})
    body = contents(
        [
            ChatMessage("system", "be brief"),
            ChatMessage("user", "go"),
            ChatMessage("assistant", "", (call, other)),
            ChatMessage("tool", "42", tool_call_id="call_0"),
            ChatMessage("tool", "found", tool_call_id="call_1"),
        ]
    )
    assert body == [
        {"role": "user", "parts": [{"text": "go"}]},
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "calculator", "args": {"expression": "6*7"}},
                    "thoughtSignature": "c2ln",
                },
                {"functionCall": {"name": "search", "args": {"q": "x"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "calculator", "response": {"result": "42"}}},
                {"functionResponse": {"name": "search", "response": {"result": "found"}}},
            ],
        },
    ]
