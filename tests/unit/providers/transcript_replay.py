"""Replay a model server's recorded answer body through a provider, in-process: the
provider's `Endpoint` talks to a fake wire that hands out the body in the reads a test
chooses, so a parser is fed exactly the cuts a network could make."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tailwinds.engine.events import ThinkingEvent
from tailwinds.errors import ProviderError
from tailwinds.messages import ChatMessage, ToolCall, Usage
from tailwinds.providers.anthropic_messages import AnthropicMessagesProvider
from tailwinds.providers.azure_openai import azure_chat
from tailwinds.providers.base import ChatRequest, ProviderLimits
from tailwinds.providers.gemini import GeminiChatProvider
from tailwinds.providers.ollama_native import OllamaChatProvider
from tailwinds.providers.openai_chat import OpenAIChatProvider

TRANSCRIPTS = Path(__file__).parents[2] / "fixtures" / "transcripts"
API_KEY = "sk-test-" + "K3y" * 12
BASE_URL = "http://model.test"


class FakeResponse:
    """What `WireClient.post` returns, reading from a list of chunks."""

    def __init__(self, chunks: list[bytes], status: int = 200) -> None:
        self.status = status
        self.headers: dict[str, str] = {}
        self._chunks = list(chunks)

    async def read(self) -> bytes:
        return self._chunks.pop(0) if self._chunks else b""

    async def read_at_most(self, limit: int) -> bytes:
        return b"".join(self._chunks)[:limit]

    def set_idle_timeout(self, seconds: float) -> None:
        pass

    def close(self) -> None:
        pass


class FakeWire:
    def __init__(self, chunks: list[bytes], status: int = 200) -> None:
        self.chunks = chunks
        self.status = status
        self.requests: list[bytes] = []

    async def post(
        self, url: str, headers: dict[str, str], body: bytes, connect_timeout_s: float
    ) -> FakeResponse:
        self.requests.append(body)
        return FakeResponse(self.chunks, self.status)


def provider(kind: str, wire: FakeWire, limits: ProviderLimits | None = None) -> Any:
    limits = limits or ProviderLimits(retries=0)
    if kind == "openai":
        return OpenAIChatProvider(wire, BASE_URL + "/v1", API_KEY, limits)  # type: ignore[arg-type]
    if kind == "azure":
        return azure_chat(wire, BASE_URL, "gpt-4o", "2024-10-21", API_KEY, limits)  # type: ignore[arg-type]
    if kind == "gemini":
        return GeminiChatProvider(wire, BASE_URL, API_KEY, limits)  # type: ignore[arg-type]
    if kind == "anthropic":
        return AnthropicMessagesProvider(wire, BASE_URL, API_KEY, limits)  # type: ignore[arg-type]
    return OllamaChatProvider(wire, BASE_URL, limits)  # type: ignore[arg-type]


@dataclass
class Outcome:
    """What a stream came to: its text joined, its calls, its usage, its error's code
    and message."""

    text: str = ""
    calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None
    code: str | None = None
    message: str = ""
    thinking: str = ""


async def replay(kind: str, chunks: list[bytes], status: int = 200) -> Outcome:
    request = ChatRequest(model="m", messages=[ChatMessage("user", "hi")])
    stream: AsyncIterator[Any] = provider(kind, FakeWire(chunks, status)).stream_chat(request)
    outcome = Outcome()
    text: list[str] = []
    thinking: list[str] = []
    try:
        async for piece in stream:
            if type(piece) is str:
                assert piece, "an empty text piece"
                text.append(piece)
            elif type(piece) is ToolCall:
                outcome.calls.append(piece)
            elif type(piece) is ThinkingEvent:
                assert piece.text, "an empty thinking piece"
                thinking.append(piece.text)
            else:
                assert type(piece) is Usage
                outcome.usage = piece
    except ProviderError as exc:
        outcome.code = exc.code
        outcome.message = exc.message
    outcome.text = "".join(text)
    outcome.thinking = "".join(thinking)
    return outcome


def cuts(body: bytes) -> list[tuple[str, list[bytes]]]:
    """The body whole, byte by byte, and in two reads at every position."""
    out = [("whole", [body]), ("bytes", [body[i : i + 1] for i in range(len(body))])]
    out += [(f"cut {i}", [body[:i], body[i:]]) for i in range(1, len(body))]
    return out


def transcript(name: str) -> bytes:
    return (TRANSCRIPTS / name).read_bytes()


Check = Callable[[Outcome], None]
