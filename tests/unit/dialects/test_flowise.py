"""Flowise's dialect, encoder and request reading, without a server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tailwinds.dialects.choice import requested_dialect
from tailwinds.dialects.flowise import FlowiseEncoder, flowise_answer, flowise_stream
from tailwinds.dialects.flowise_request import parse_flowise_request
from tailwinds.engine.events import (
    ActionEvent,
    EndEvent,
    ErrorEvent,
    Event,
    MetadataEvent,
    StartEvent,
    ThinkingEvent,
    TokenEvent,
    UsedToolsEvent,
    encode_event,
)
from tailwinds.errors import InvalidRequest
from tailwinds.transport.frames import numbered


def frames(raw: bytes) -> list[dict[str, Any]]:
    out = []
    for block in raw.decode().split("\n\n")[:-1]:
        lines = block.split("\n")
        if lines[0].startswith("id: "):
            lines = lines[1:]
        assert lines[0] == "message:" and lines[1].startswith("data: ")
        out.append(json.loads(lines[1][6:]))
    return out


def encode_all(events: list[Any]) -> list[dict[str, Any]]:
    encoder = FlowiseEncoder()
    return frames(b"".join(encoder.encode(e) for e in events) + encoder.close())


def test_a_whole_run() -> None:
    usage = {"promptTokens": 3, "completionTokens": 2, "totalTokens": 5}
    meta = {"chatId": "c", "messageId": "m", "question": "q", "sessionId": "s", "usage": usage}
    got = encode_all(
        [StartEvent("c", "m"), TokenEvent("a"), TokenEvent("b"), MetadataEvent(meta), EndEvent()]
    )
    assert got == [
        {"event": "start", "data": "", "chatId": "c", "chatMessageId": "m"},
        {"event": "token", "data": "a"},
        {"event": "token", "data": "b"},
        {
            "event": "usageMetadata",
            "data": {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5},
        },
        {
            "event": "metadata",
            "data": {"chatId": "c", "chatMessageId": "m", "question": "q", "sessionId": "s"},
        },
        {"event": "end", "data": "[DONE]"},
    ]


def test_start_comes_first_even_before_used_tools() -> None:
    got = encode_all([UsedToolsEvent([{"tool": "t"}]), TokenEvent("x"), EndEvent()])
    assert [f["event"] for f in got] == ["start", "usedTools", "token", "end"]


def test_errors_are_strings_and_aborts_say_abort() -> None:
    failed = encode_all([StartEvent("c", "m"), ErrorEvent("model_error", "it broke"), EndEvent()])
    assert failed[1:] == [
        {"event": "error", "data": "it broke"},
        {"event": "end", "data": "[DONE]"},
    ]
    aborted = encode_all([StartEvent("c", "m"), ErrorEvent("aborted", "aborted"), EndEvent()])
    assert [f["event"] for f in aborted] == ["start", "abort", "end"]
    assert aborted[1]["data"] == "[DONE]"


def test_reasoning_as_flowise_thinking_and_unknown_events_dropped() -> None:
    got = encode_all(
        [
            StartEvent("c", "m"),
            ThinkingEvent("hm"),
            ThinkingEvent("m"),
            ActionEvent("a", "tool", {}, "2026-12-03T00:00:00Z"),  # no place for it
            TokenEvent("x"),
            EndEvent(),
        ]
    )
    assert [f["event"] for f in got] == [
        "start",
        "thinking",
        "thinking",
        "thinking",
        "token",
        "end",
    ]
    assert got[1]["data"] == "hm" and "duration" not in got[1]
    assert got[3]["data"] == "" and isinstance(got[3]["duration"], int)


def test_no_frame_holds_data_colon_past_its_prefix() -> None:
    raw = FlowiseEncoder().encode(TokenEvent('metadata: {"data": "data:x"}'))
    for line in raw.split(b"\n"):
        assert b"data:" not in line.removeprefix(b"data: "), line
    assert frames(raw)[-1]["data"] == 'metadata: {"data": "data:x"}'


async def _replay(items: list[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


def test_relayed_frames_keep_their_ids() -> None:
    events: list[Event] = [StartEvent("c", "m"), TokenEvent("t"), EndEvent()]
    relayed = [numbered(i + 1, e) for i, e in enumerate(events)]

    async def collect() -> bytes:
        return b"".join([chunk async for chunk in flowise_stream(_replay(relayed))])

    raw = asyncio.run(collect())
    assert raw.startswith(b"id: 1\nmessage:\ndata: ")
    assert b"id: 2\nmessage:" in raw and b"id: 3\nmessage:" in raw
    assert [f["event"] for f in frames(raw)] == ["start", "token", "end"]
    plain = asyncio.run(_collect_events(events))
    assert frames(plain) == frames(raw)
    assert encode_event(events[1]) not in plain


async def _collect_events(events: list[Event]) -> bytes:
    return b"".join([chunk async for chunk in flowise_stream(_replay(events))])


def test_the_json_answer_carries_chat_message_id() -> None:
    assert flowise_answer({"text": "x", "messageId": "m"})["chatMessageId"] == "m"


def test_request_bodies_in_flowise_spelling() -> None:
    body = {
        "question": "q",
        "overrideConfig": None,
        "chatId": None,
        "streaming": "true",
        "uploads": [],
        "history": [
            {"message": "hi", "type": "userMessage", "role": None, "content": None},
            {"role": "assistant", "content": None, "message": None},
        ],
    }
    request = parse_flowise_request(json.dumps(body).encode())
    assert request.streaming is True and request.chat_id is None
    assert request.override_config == {}
    assert [(h.role, h.content) for h in request.history or []] == [
        ("userMessage", "hi"),
        ("apiMessage", ""),
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"question": "q", "history": [{"type": "robot", "message": "x"}]}, "history"),
        ({"question": "q", "overrideConfig": []}, "overrideConfig"),
        ({"question": ""}, "question"),
        ([], "request body"),
    ],
)
def test_other_malformed_bodies_are_refused_naming_the_field(body: Any, field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_flowise_request(json.dumps(body).encode())
    assert field in str(caught.value)


def test_dialect_choice() -> None:
    assert requested_dialect(None, None, "flowise") == "flowise"
    assert requested_dialect("tailwinds", None, "flowise") == "tailwinds"
    assert requested_dialect(None, "text/event-stream; dialect=flowise", "tailwinds") == "flowise"
    assert (
        requested_dialect(None, "application/json, text/event-stream", "tailwinds") == "tailwinds"
    )
    with pytest.raises(InvalidRequest, match="dialect"):
        requested_dialect("nope", None, "tailwinds")
