"""Every provider's stream parser against recorded-shape answers
(tests/fixtures/transcripts/<provider>/*.txt), each fed whole, byte by byte and cut in two
reads at every position: the outcome (text, tool calls, usage, error) never depends on
where the network cut the body."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from tailwinds.messages import ToolCall, Usage
from tests.unit.providers.transcript_replay import Outcome, cuts, replay, transcript


@dataclass(frozen=True)
class Expect:
    text: str = ""
    calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None
    code: str | None = None  # the error's code; None: the answer is whole
    message: str = ""  # a part of the error's message
    thinking: str = ""  # the reasoning, apart from the text


CUT = "provider_bad_response"
TWO_CALLS = [
    ToolCall("call_0", "calculator", {"expression": "1+1"}),
    ToolCall("call_1", "calculator", {"expression": "2+3"}),
]
EXPECTED: dict[str, Expect] = {
    # OpenAI-compatible chat completions
    "openai/text.txt": Expect("Héllo\u2028 wörld 😀", usage=Usage(5, 4, 9)),
    "openai/text_crlf.txt": Expect("a\nbç"),
    "openai/finish_without_done.txt": Expect("whole"),
    "openai/tool_call.txt": Expect(
        calls=[ToolCall("call_1", "calculator", {"expression": "6*7"})], usage=Usage(5, 4, 9)
    ),
    "openai/tool_name_repeated.txt": Expect(
        calls=[ToolCall("call_1", "calculator", {"expression": "6*7"})]
    ),
    "openai/tool_parallel.txt": Expect(
        calls=[
            ToolCall("call_a", "search", {"q": "wé"}),
            ToolCall("call_b", "calculator", {"expression": "1+1"}),
        ]
    ),
    "openai/tool_no_index.txt": Expect(
        calls=[
            ToolCall("call_a", "search", {"q": "x"}),
            ToolCall("call_b", "calculator", {"expression": "2"}),
        ]
    ),
    "openai/tool_shared_index.txt": Expect(
        calls=[ToolCall("call_a", "search", {"q": "a"}), ToolCall("call_b", "search", {"q": "b"})]
    ),
    "openai/tool_late_id.txt": Expect(
        calls=[ToolCall("call_late", "calculator", {"expression": "3"})]
    ),
    "openai/tool_arguments_surrogates.txt": Expect(
        calls=[ToolCall("call_1", "echo", {"text": "😀"})]
    ),
    "openai/surrogate_halves.txt": Expect("a😀b😁"),
    "openai/error_field_first.txt": Expect(
        code="provider_rejected", message="exceeds the available context size"
    ),
    "openai/error_field_after_token.txt": Expect(
        "Hello", code="provider_unavailable", message="slot crashed"
    ),
    "openai/error_object_code.txt": Expect(
        code="provider_rejected", message="exceeds the available context size"
    ),
    "openai/error_object_string_code.txt": Expect(
        "Hi", code="provider_rate_limited", message="Rate limit reached"
    ),
    "openai/error_object_status_text.txt": Expect(code="provider_rejected", message="(404)"),
    "openai/error_event.txt": Expect(
        "Hi", code="provider_unavailable", message="upstream overloaded"
    ),
    "openai/error_string.txt": Expect(code="provider_auth", message="Invalid API key"),
    "openai/finish_reason_error.txt": Expect(
        "Par", code="provider_unavailable", message="finish_reason 'error'"
    ),
    "openai/done_without_finish.txt": Expect("cut", code=CUT, message="no finish_reason"),
    "openai/end_without_finish.txt": Expect("cut", code=CUT, message="end of body"),
    "openai/malformed_chunk.txt": Expect("x", code=CUT, message="malformed chunk"),
    # a 200 answer that is one JSON document, not a stream: the error it carries
    "openai/json_error_body.txt": Expect(
        code="provider_rejected", message="maximum context length is 8192 tokens"
    ),
    "openai/json_error_bare_in_sse.txt": Expect(
        code="provider_auth", message="Incorrect API key provided"
    ),
    "openai/json_error_overloaded.txt": Expect(
        code="provider_unavailable", message="The server is overloaded"
    ),
    "openai/json_not_a_stream.txt": Expect(code=CUT, message="not the event stream asked for"),
    # the last event without its blank line: taken when whole, dropped when cut
    "openai/unterminated_done.txt": Expect("whole"),
    "openai/unterminated_finish.txt": Expect("whole", usage=Usage(5, 1, 6)),
    "openai/unterminated_cut_event.txt": Expect("cut", code=CUT, message="end of body"),
    # usage counts that are not ints in 0..2**31-1 are dropped, the answer kept
    "openai/usage_junk.txt": Expect("Hel", usage=Usage(None, 3, None)),
    "openai/usage_past_int32.txt": Expect("Hel"),
    "openai/usage_not_an_object.txt": Expect("Hel"),
    # whole calls one after the other with no ids: apart; one call's pieces: one call
    "openai/tool_whole_calls_shared_index_no_ids.txt": Expect(calls=TWO_CALLS),
    "openai/tool_whole_calls_no_index_no_ids.txt": Expect(calls=TWO_CALLS),
    "openai/tool_calls_name_alone_then_arguments.txt": Expect(calls=TWO_CALLS),
    "openai/tool_name_repeated_after_arguments.txt": Expect(
        calls=[ToolCall("call_1", "calculator", {"expression": "6*7"})]
    ),
    "openai/tool_arguments_nested_object_piece.txt": Expect(
        calls=[ToolCall("call_1", "calculator", {"expression": "1", "opts": {"deg": True}})]
    ),
    # reasoning: a field of its own, or <think> tags in the text cut anywhere
    "openai/reasoning_content.txt": Expect(
        "Hello there!",
        usage=Usage(12, 30, 42, 21),
        thinking="The user greets. Answer kindly 😀.",
    ),
    "openai/reasoning_field.txt": Expect("Hi", thinking="Short thought."),
    "openai/think_tags.txt": Expect(
        "Hello <b>world</b> <thin", thinking="\nLet me think <carefully>."
    ),
    # Anthropic Messages
    "anthropic/thinking.txt": Expect(
        "Hello!", usage=Usage(11, 30, 41), thinking="Let me think 😀."
    ),
    "anthropic/thinking_tool_use.txt": Expect(
        calls=[ToolCall("toolu_1", "calculator", {"expression": "6*7"})],
        usage=Usage(11, 30, 41),
        thinking="Let me think 😀.",
    ),
    "anthropic/text.txt": Expect("Héllo\u2028 😀", usage=Usage(11, 3, 14)),
    "anthropic/tool_use.txt": Expect(
        "Let me check.",
        calls=[
            ToolCall("toolu_1", "search", {"q": "wé"}),
            ToolCall("toolu_2", "calculator", {"expression": "6*7"}),
        ],
        usage=Usage(11, 3, 14),
    ),
    "anthropic/tool_use_unclosed.txt": Expect(
        calls=[ToolCall("toolu_1", "calculator", {"expression": "1"})], usage=Usage(11, 3, 14)
    ),
    "anthropic/surrogate_halves.txt": Expect("a😀b", usage=Usage(11, 3, 14)),
    "anthropic/error_overloaded.txt": Expect(
        "Hel", code="provider_unavailable", message="Overloaded"
    ),
    "anthropic/error_invalid_request.txt": Expect(
        code="provider_rejected", message="prompt is too long"
    ),
    "anthropic/no_message_stop.txt": Expect("cut", code=CUT, message="message_stop"),
    "anthropic/json_error_body.txt": Expect(
        code="provider_rejected", message="all messages must have non-empty content"
    ),
    "anthropic/json_error_overloaded.txt": Expect(
        code="provider_unavailable", message="Overloaded"
    ),
    "anthropic/unterminated_message_stop.txt": Expect("Hello", usage=Usage(11, 3, 14)),
    "anthropic/unterminated_cut_event.txt": Expect("Hello", code=CUT, message="message_stop"),
    "anthropic/usage_junk.txt": Expect("Hello"),
    "anthropic/usage_not_an_object.txt": Expect("Hello"),
    # Azure OpenAI: its prompt filter chunk, content filter results, a filtered answer
    "azure/text.txt": Expect("Héllo 😀", usage=Usage(9, 3, 12, 0)),
    "azure/content_filter.txt": Expect("Par", code="provider_rejected", message="content filter"),
    # Google Gemini: thought parts apart, whole function calls, safety stops
    "gemini/text.txt": Expect("Héllo 😀", usage=Usage(8, 8, 16, 5), thinking="**Plan**\nGreet 😀."),
    "gemini/function_calls.txt": Expect(
        calls=[
            ToolCall("call_0", "calculator", {"expression": "6*7"}),
            ToolCall("call_1", "search", {"q": "wé"}),
        ],
        usage=Usage(8, 4, 12),
    ),
    "gemini/prompt_blocked.txt": Expect(code="provider_rejected", message="blockReason SAFETY"),
    "gemini/finish_safety.txt": Expect(
        "Hel", code="provider_rejected", message="finishReason SAFETY"
    ),
    "gemini/error_midstream.txt": Expect("Hel", code="provider_unavailable", message="overloaded"),
    "gemini/no_finish.txt": Expect("Hello", code=CUT, message="before a finishReason"),
    "gemini/max_tokens.txt": Expect("Hi", usage=Usage(8, 1, 9)),
    "gemini/json_error_body.txt": Expect(
        code="provider_rate_limited", message="Resource has been exhausted"
    ),
    # Ollama native /api/chat
    "ollama/thinking.txt": Expect("Hello!", usage=Usage(7, 3, 10), thinking="Hmm, a greeting 😀."),
    "ollama/think_tags.txt": Expect("Hi you", usage=Usage(7, 3, 10), thinking="Greeting."),
    "ollama/text.txt": Expect("Héllo\u2028 😀", usage=Usage(7, 3, 10)),
    "ollama/tool_calls.txt": Expect(
        calls=[
            ToolCall("call_0_0", "search", {"q": "wé"}),
            ToolCall("call_0_1", "calculator", {"expression": "6*7"}),
        ],
        usage=Usage(7, 3, 10),
    ),
    "ollama/surrogate_halves.txt": Expect("a😀b", usage=Usage(7, 3, 10)),
    "ollama/error_not_found.txt": Expect(code="provider_rejected", message="not found"),
    "ollama/error_midstream.txt": Expect(
        "Hel", code="provider_unavailable", message="unexpected EOF"
    ),
    "ollama/no_done.txt": Expect("cut", code=CUT, message="before done"),
    "ollama/no_trailing_newline.txt": Expect("Hello", usage=Usage(7, 3, 10)),
    "ollama/error_no_trailing_newline.txt": Expect(code="provider_rejected", message="not found"),
    "ollama/cut_last_line.txt": Expect("Hel", code=CUT, message="before done"),
    "ollama/usage_junk.txt": Expect("Hel"),
    "ollama/usage_float.txt": Expect("Hel", usage=Usage(None, 3, None)),
}


def check(outcome: Outcome, expect: Expect, how: str) -> None:
    assert outcome.text == expect.text, how
    assert outcome.calls == expect.calls, how
    assert outcome.thinking == expect.thinking, how
    assert outcome.code == expect.code, (how, outcome.message)
    assert expect.message in outcome.message, how
    if expect.code is None:
        assert outcome.usage == expect.usage, how


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_transcript_cut_anywhere(name: str) -> None:
    body = transcript(name)
    expect = EXPECTED[name]
    kind = name.split("/")[0]

    async def main() -> None:
        for how, chunks in cuts(body):
            check(await replay(kind, chunks), expect, how)

    asyncio.run(main())


def test_every_transcript_is_checked() -> None:
    from tests.unit.providers.transcript_replay import TRANSCRIPTS

    found = {str(p.relative_to(TRANSCRIPTS)) for p in TRANSCRIPTS.glob("*/*.txt")}
    assert found == set(EXPECTED)


def test_no_key_in_errors_even_past_the_cut() -> None:
    """The key echoed by the server is removed before the message is cut (security case
    12's kind), in a malformed chunk, an error object and an error answer."""
    from tests.unit.providers.transcript_replay import API_KEY

    key = API_KEY.encode()
    bodies: list[tuple[str, bytes, int]] = [
        ("openai", b"data: " + b"z" * 175 + key + b"\n\n", 200),
        ("openai", b'data: {"error":{"message":"' + b"x" * 480 + key + b'"}}\n\n', 200),
        ("openai", b'{"error":{"message":"' + b"x" * 440 + b"Bearer " + key + b'"}}', 401),
        ("anthropic", b"event: error\ndata: " + b"y" * 190 + key + b"\n\n", 200),
        # an error answered with 200 as one JSON document, and any other JSON document
        ("openai", b'{"error":{"message":"' + b"x" * 480 + key + b'"}}', 200),
        ("anthropic", b'{"type":"error","error":{"message":"' + b"v" * 480 + key + b'"}}', 200),
        ("openai", b'{"choices":"' + b"u" * 160 + key + b'"}', 200),
        # no key is configured for Ollama: the key is found by its shape
        ("ollama", b'{"error":"' + b"w" * 490 + b" " + key + b'"}\n', 200),
    ]

    async def main() -> list[Outcome]:
        return [await replay(kind, [body], status) for kind, body, status in bodies]

    for outcome in asyncio.run(main()):
        assert outcome.code is not None
        text = outcome.message
        assert not any(API_KEY[:n] in text for n in range(8, len(API_KEY))), text


def test_answer_cut_by_its_stream_byte_cap() -> None:
    """A node that reads a model's answer for itself is bounded too: past the stream
    byte cap, `answer_too_long`."""
    from tailwinds.providers.base import ProviderLimits
    from tests.unit.providers import transcript_replay as replay_module

    body = b'data: {"choices":[{"delta":{"content":"' + b"b" * 1000 + b'"}}]}\n\n'
    wire = replay_module.FakeWire([body] * 100)
    limits = ProviderLimits(retries=0, max_stream_bytes=20_000)

    async def main() -> tuple[int, str | None]:
        from tailwinds.errors import ProviderError
        from tailwinds.messages import ChatMessage
        from tailwinds.providers.base import ChatRequest

        request = ChatRequest(model="m", messages=[ChatMessage("user", "hi")])
        pieces = 0
        try:
            async for _ in replay_module.provider("openai", wire, limits).stream_chat(request):
                pieces += 1
        except ProviderError as exc:
            return pieces, exc.code
        return pieces, None

    pieces, code = asyncio.run(main())
    assert code == "answer_too_long"
    assert pieces < 25


def test_tool_arguments_are_bounded() -> None:
    from tailwinds.providers import tool_calls

    piece = '{"a":"' + "x" * 1000
    body = b"".join(
        b'data: {"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c","function":'
        b'{"name":"f","arguments":' + _json(piece if n == 0 else "x" * 1000) + b"}}]}}]}\n\n"
        for n in range(tool_calls.MAX_ARGUMENTS_CHARS // 1000 + 2)
    )

    async def main() -> Outcome:
        return await replay("openai", [body])

    outcome = asyncio.run(main())
    assert outcome.code == "answer_too_long"
    assert outcome.calls == []


def _json(value: Any) -> bytes:
    import orjson

    return orjson.dumps(value)


@pytest.mark.parametrize("kind", ["openai", "anthropic", "ollama"])
def test_any_bytes_end_as_an_answer_or_a_provider_error(kind: str) -> None:
    """Whatever a server sends, the parser gives pieces or a `ProviderError`, never
    another exception (which would be reported as the flow's own failure)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    lines = st.sampled_from(
        [
            b"data: [DONE]\n\n",
            b'data: {"choices":[{"delta":{"content":"\\ud83d"}}]}\n\n',
            b'data: {"choices":[{"delta":{"tool_calls":[{"index":[1]}]}}]}\n\n',
            b'data: {"choices":[{"delta":{"tool_calls":"x"}}]}\n\n',
            b'data: {"error":{"code":"abc"}}\n\n',
            b'data: {"choices":[{"delta":{"content":5}}]}\n\n',
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
            b'"delta":{"text":[1]}}\n\n',
            b'{"message":{"content":{"a":1}}}\n',
            b"error: 7\n\n",
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":3,'
            b'"delta":{"type":"input_json_delta","partial_json":"{"}}\n\n',
            b'{"message":{"tool_calls":[{"function":{}}]}}\n',
            b'{"error":null}\n',
            b"\xff\xfe\n\n",
        ]
    )

    @settings(max_examples=150, deadline=None)
    @given(st.lists(st.one_of(lines, st.binary(max_size=40)), max_size=6))
    def check_any(chunks: list[bytes]) -> None:
        asyncio.run(replay(kind, chunks))

    check_any()


def test_long_ndjson_lines_arrive_whole_and_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from tailwinds.providers import ollama_native

    monkeypatch.setattr(ollama_native, "LONG_LINE_BYTES", 16)
    body = transcript("ollama/text.txt")

    async def main() -> list[Outcome]:
        return [
            await replay("ollama", [body[i : i + size] for i in range(0, len(body), size)])
            for size in (1, 5, 17, 100)
        ]

    for outcome in asyncio.run(main()):
        check(outcome, EXPECTED["ollama/text.txt"], "pieces")
    monkeypatch.setattr(ollama_native, "MAX_LINE_BYTES", 64)
    outcome = asyncio.run(replay("ollama", [b'{"message":{"content":"' + b"x" * 30, b"x" * 40]))
    assert outcome.code == "provider_bad_response"
    assert "longer than 64 bytes" in outcome.message
