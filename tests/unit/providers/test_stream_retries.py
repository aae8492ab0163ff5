"""A retryable error the server reports inside its 200 answer before any token (an
Anthropic `overloaded_error` as the first event, an OpenAI error chunk, an error answered
as one JSON document, an Ollama error line) is tried again, as a 5xx status is; after a
token, or for a refusal, it is not."""

from __future__ import annotations

import asyncio

import pytest

from tailwinds.errors import ProviderError
from tailwinds.messages import ChatMessage, ToolCall, Usage
from tailwinds.providers.base import ChatRequest, ProviderLimits
from tests.unit.providers.transcript_replay import FakeResponse, Outcome, provider

OPENAI_OK = (
    b'data: {"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}\n\n'
    b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
)
ANTHROPIC_OK = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"Hi"}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)
OLLAMA_OK = b'{"message":{"role":"assistant","content":"Hi"},"done":true}\n'
OVERLOADED = (
    b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",'
    b'"message":"Overloaded"}}\n\n'
)


class SequenceWire:
    """Answers each request with the next body in turn (the last one again after)."""

    def __init__(self, bodies: list[bytes]) -> None:
        self.bodies = bodies
        self.requests = 0

    async def post(
        self, url: str, headers: dict[str, str], body: bytes, connect_timeout_s: float
    ) -> FakeResponse:
        answer = self.bodies[min(self.requests, len(self.bodies) - 1)]
        self.requests += 1
        return FakeResponse([answer[i : i + 7] for i in range(0, len(answer), 7)])


def run(kind: str, bodies: list[bytes], retries: int = 2) -> tuple[Outcome, int]:
    wire = SequenceWire(bodies)
    limits = ProviderLimits(retries=retries, retry_backoff_s=0)

    async def main() -> Outcome:
        outcome = Outcome()
        request = ChatRequest(model="m", messages=[ChatMessage("user", "hi")])
        try:
            async for piece in provider(kind, wire, limits).stream_chat(request):  # type: ignore[arg-type]
                if type(piece) is str:
                    outcome.text += piece
                elif type(piece) is ToolCall:
                    outcome.calls.append(piece)
                elif type(piece) is Usage:
                    outcome.usage = piece
        except ProviderError as exc:
            outcome.code, outcome.message = exc.code, exc.message
        return outcome

    return asyncio.run(main()), wire.requests


@pytest.mark.parametrize(
    ("kind", "first", "then"),
    [
        ("anthropic", OVERLOADED, ANTHROPIC_OK),
        ("openai", b'data: {"error":{"message":"upstream failed","code":503}}\n\n', OPENAI_OK),
        ("openai", b'{"error":{"message":"busy","type":"server_error"}}', OPENAI_OK),
        ("openai", b'data: {"error":{"message":"slow down","code":429}}\n\n', OPENAI_OK),
        ("anthropic", b'{"type":"error","error":{"type":"overloaded_error"}}', ANTHROPIC_OK),
        ("ollama", b'{"error":"unexpected server error"}\n', OLLAMA_OK),
    ],
)
def test_retryable_error_before_the_first_token_is_retried(
    kind: str, first: bytes, then: bytes
) -> None:
    outcome, requests = run(kind, [first, then])
    assert (outcome.text, outcome.code, requests) == ("Hi", None, 2), outcome.message


def test_tries_are_bounded_and_the_last_error_is_reported() -> None:
    outcome, requests = run("anthropic", [OVERLOADED], retries=2)
    assert (outcome.code, requests) == ("provider_unavailable", 3)
    assert "Overloaded" in outcome.message


@pytest.mark.parametrize(
    ("kind", "body", "code"),
    [
        # after a token: what was said cannot be taken back
        (
            "anthropic",
            ANTHROPIC_OK.split(b"event: message_stop")[0] + OVERLOADED,
            "provider_unavailable",
        ),
        # a refusal: another try would be refused the same way
        (
            "openai",
            b'{"error":{"message":"too long","code":"context_length_exceeded"}}',
            "provider_rejected",
        ),
        ("ollama", b'{"error":"model \\"x\\" not found"}\n', "provider_rejected"),
    ],
)
def test_no_retry_after_a_token_or_for_a_refusal(kind: str, body: bytes, code: str) -> None:
    outcome, requests = run(kind, [body, b""])
    assert (outcome.code, requests) == (code, 1), outcome.message


def test_whitespace_before_an_event_stream_is_looked_past_within_a_bound() -> None:
    """A flood of blank lines before the first event is read as the event stream it
    starts, never held whole while waiting for its first byte."""
    outcome, _ = run("openai", [b"\n" * 10_000 + OPENAI_OK])
    assert (outcome.text, outcome.code) == ("Hi", None)
    outcome, _ = run("openai", [b"\n" * 10_000 + b'{"error":{"message":"x","code":503}}'])
    assert outcome.code == "provider_bad_response"  # past the bound: not a JSON answer
