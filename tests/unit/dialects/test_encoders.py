"""Each dialect's encoder on the sequences the real clients are strict about (the
integration tests run the clients themselves): a failure, a run with no text, sources
without a name, and the same bytes from relayed frames as from events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from tailwinds.dialects import Encoder, agui, ai_sdk, openai_chat, transcode
from tailwinds.engine.events import (
    EndEvent,
    ErrorEvent,
    Event,
    MetadataEvent,
    SourceDocumentsEvent,
    StartEvent,
    ThinkingEvent,
    TokenEvent,
    UsedToolsEvent,
    encode_event,
)

FAILED: list[Event] = [
    StartEvent("c", "m"),
    TokenEvent("Hel"),
    ErrorEvent("provider_timeout", "The model server did not answer in time."),
    EndEvent(),
]
NO_TEXT: list[Event] = [StartEvent("c", "m"), ErrorEvent("aborted", "aborted"), EndEvent()]
ANSWER: list[Event] = [
    StartEvent("c", "m"),
    SourceDocumentsEvent([{"pageContent": "Tulips bloom.", "metadata": {}}]),
    UsedToolsEvent([{"tool": "calculator", "toolInput": {"expression": "1+1"}, "toolOutput": "2"}]),
    TokenEvent('a "quoted"\nline'),
    MetadataEvent({"chatId": "c", "messageId": "m", "question": "q", "usage": {}}),
    EndEvent(),
]


def frames(encoder: Encoder, events: list[Event]) -> list[Any]:
    body = b"".join(encoder.encode(e) for e in events) + encoder.close()
    out: list[Any] = []
    for block in body.decode().split("\n\n")[:-1]:
        assert block.startswith("data: ") and "\n" not in block, block
        payload = block[len("data: ") :]
        out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


def test_openai_failure_is_an_error_chunk_then_done() -> None:
    out = frames(openai_chat.ChunkEncoder("flow"), FAILED)
    assert out[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert out[1]["choices"][0]["delta"] == {"content": "Hel"}
    assert out[2] == {
        "error": {
            "message": "The model server did not answer in time.",
            "type": "server_error",
            "code": "provider_timeout",
        }
    }
    assert out[3:] == ["[DONE]"]  # no finish_reason: the SDKs would end silently on it


def test_openai_answer_keeps_text_and_extension() -> None:
    out = frames(openai_chat.ChunkEncoder("flow", include_usage=True), ANSWER)
    extensions = [c.get("tailwinds") for c in out[:-1]]
    assert extensions[1] == {"sourceDocuments": ANSWER[1].documents}  # type: ignore[union-attr]
    assert extensions[2]["usedTools"][0]["tool"] == "calculator"
    assert out[3]["choices"][0]["delta"]["content"] == 'a "quoted"\nline'
    assert out[4]["choices"][0]["finish_reason"] == "stop"
    assert out[4]["tailwinds"] == {"chatId": "c", "messageId": "m"}  # not the question again
    assert out[5]["choices"] == [] and out[5]["usage"]["total_tokens"] == 0
    assert out[6] == "[DONE]"


def test_agui_failure_ends_with_run_error() -> None:
    out = frames(agui.EventEncoder("t", "r"), FAILED)
    assert [e["type"] for e in out] == [
        "RUN_STARTED",
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
        "RUN_ERROR",
    ]
    assert out[-1] == {
        "type": "RUN_ERROR",
        "message": "The model server did not answer in time.",
        "code": "provider_timeout",
    }


def test_agui_answer_has_no_nulls() -> None:
    out = frames(agui.EventEncoder("t", "r"), ANSWER)
    assert [e["type"] for e in out] == [
        "RUN_STARTED",
        "CUSTOM",
        "TOOL_CALL_START",
        "TOOL_CALL_ARGS",
        "TOOL_CALL_END",
        "TOOL_CALL_RESULT",
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_END",
        "RUN_FINISHED",
    ]
    assert "null" not in json.dumps(out)
    assert out[-1]["result"] == {"chatId": "c", "messageId": "m"}
    assert "usage" not in out[-1]  # no counts reported: left out, not zeros or nulls


def test_ai_sdk_failure_before_any_text() -> None:
    out = frames(ai_sdk.ChunkEncoder(), NO_TEXT)
    assert out == [
        {"type": "start", "messageId": "m"},
        {"type": "error", "errorText": "aborted"},
        {"type": "finish", "finishReason": "error"},
        "[DONE]",
    ]


def test_ai_sdk_source_without_a_name_still_has_its_title() -> None:
    out = frames(ai_sdk.ChunkEncoder(), ANSWER)
    [source] = [c for c in out[:-1] if c["type"] == "source-document"]
    assert source["title"] == "Tulips bloom." and source["mediaType"] == "text/plain"
    assert "filename" not in source
    types = [c["type"] for c in out[:-1]]
    assert types.index("text-start") < types.index("text-delta") < types.index("text-end")


def test_relayed_frames_give_the_same_bytes() -> None:
    async def collect(stream: AsyncIterator[Any], encoder: Encoder) -> bytes:
        return b"".join([chunk async for chunk in transcode(stream, encoder)])

    async def events() -> AsyncIterator[Event]:
        for event in ANSWER:
            yield event

    async def relayed() -> AsyncIterator[bytes]:
        wire = b"".join(encode_event(e) for e in ANSWER)
        for n in range(0, len(wire), 7):  # cut anywhere
            yield wire[n : n + 7]

    # ids the encoders draw themselves (tool call ids) differ run to run: compare shapes
    def shape(body: bytes) -> list[str]:
        return [json.loads(f[6:])["type"] for f in body.decode().split("\n\n") if f[6:7] == "{"]

    direct = asyncio.run(collect(events(), agui.EventEncoder("t", "r")))
    again = asyncio.run(collect(relayed(), agui.EventEncoder("t", "r")))
    assert shape(direct) == shape(again) and len(shape(direct)) == 10
    assert asyncio.run(collect(relayed(), ai_sdk.ChunkEncoder())).endswith(b"data: [DONE]\n\n")


def reasoning_run() -> list[Event]:
    return [
        StartEvent("c", "m"),
        ThinkingEvent("Let me "),
        ThinkingEvent("think."),
        TokenEvent("Answer"),
        EndEvent(),
    ]


def test_reasoning_in_openai() -> None:
    out = frames(openai_chat.ChunkEncoder("flow"), reasoning_run())
    deltas = [c["choices"][0]["delta"] for c in out[1:4]]
    assert deltas == [
        {"reasoning_content": "Let me "},
        {"reasoning_content": "think."},
        {"content": "Answer"},
    ]


def test_reasoning_in_agui_is_closed_before_the_text() -> None:
    out = frames(agui.EventEncoder("t", "r"), reasoning_run())
    assert [e["type"] for e in out] == [
        "RUN_STARTED",
        "REASONING_START",
        "REASONING_MESSAGE_START",
        "REASONING_MESSAGE_CONTENT",
        "REASONING_MESSAGE_CONTENT",
        "REASONING_MESSAGE_END",
        "REASONING_END",
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_END",
        "RUN_FINISHED",
    ]
    assert out[2]["role"] == "reasoning" and len({e["messageId"] for e in out[1:7]}) == 1


def test_reasoning_in_ai_sdk_then_text() -> None:
    run = reasoning_run()
    run.insert(4, ThinkingEvent("More."))
    out = frames(ai_sdk.ChunkEncoder(), run)
    assert [(c["type"], c.get("id")) for c in out[1:-2]] == [
        ("reasoning-start", "reasoning-1"),
        ("reasoning-delta", "reasoning-1"),
        ("reasoning-delta", "reasoning-1"),
        ("reasoning-end", "reasoning-1"),
        ("text-start", "text-m"),
        ("text-delta", "text-m"),
        ("reasoning-start", "reasoning-2"),
        ("reasoning-delta", "reasoning-2"),
        ("reasoning-end", "reasoning-2"),
        ("text-end", "text-m"),
    ]
