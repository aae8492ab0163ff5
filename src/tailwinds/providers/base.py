"""What every chat provider shares: the request, the limits, and the mapping of the HTTP
client's failures to Tailwinds' provider errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from tailwinds.config import Settings
from tailwinds.engine.messages import ChatMessage, ToolCall, ToolSpec, Usage
from tailwinds.errors import (
    ProviderAuth,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from tailwinds.wire import ConnectionClosed


@dataclass(slots=True)
class ChatRequest:
    model: str
    messages: list[ChatMessage]
    temperature: float | None = None
    max_tokens: int | None = None
    tools: list[ToolSpec] | None = None


class ChatProvider(Protocol):
    def stream_chat(self, request: ChatRequest) -> AsyncIterator[str | ToolCall | Usage]:
        """Text pieces as the model produces them, the tool calls it asks for (whole, once
        their arguments are complete), then its usage where it reports one."""
        ...


@dataclass(slots=True, frozen=True)
class ProviderLimits:
    connect_timeout_s: float = 10.0
    first_token_timeout_s: float = 60.0
    idle_timeout_s: float = 60.0
    retries: int = 2
    retry_backoff_s: float = 0.5

    @classmethod
    def from_settings(cls, settings: Settings) -> ProviderLimits:
        return cls(
            connect_timeout_s=settings.provider_connect_timeout_s,
            first_token_timeout_s=settings.provider_first_token_timeout_s,
            idle_timeout_s=settings.provider_idle_timeout_s,
            retries=settings.provider_retries,
            retry_backoff_s=settings.provider_retry_backoff_s,
        )

    def retry_delay_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        delay = self.retry_backoff_s * (2**attempt)
        if retry_after_s is not None and retry_after_s <= 4 * delay + 5:
            delay = max(delay, retry_after_s)
        return delay


# statuses worth another try, before the first token only
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


def error_for_status(status: int, message: str, provider: str) -> ProviderError:
    text = (
        f"{provider} answered {status}: {message}" if message else f"{provider} answered {status}"
    )
    if status in (401, 403):
        return ProviderAuth(text)
    if status == 429:
        return ProviderRateLimited(text)
    if status in RETRYABLE_STATUSES or status >= 500:
        return ProviderUnavailable(text)
    return ProviderRejected(text)


def error_for_exception(exc: BaseException, provider: str) -> ProviderError:
    """The one mapping of the HTTP client's exceptions to ours."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, TimeoutError):
        return ProviderTimeout(f"{provider} did not answer in time")
    if isinstance(exc, ConnectionClosed):
        return ProviderUnavailable(f"{provider} closed the connection in the middle of the answer")
    if isinstance(exc, OSError):
        return ProviderUnavailable(f"cannot connect to {provider}: {exc}")
    return ProviderUnavailable(f"{provider} request failed: {exc}")


def function_tools(tools: list[ToolSpec]) -> list[dict[str, Any]]:
    """Tools as OpenAI's chat completions and Ollama's chat both take them."""
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
        }
        for t in tools
    ]
