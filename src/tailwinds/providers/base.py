"""What every chat provider shares: the request, the limits, and the mapping of the HTTP
client's failures to Tailwinds' provider errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from tailwinds.config import Settings
from tailwinds.errors import (
    ProviderAuth,
    ProviderBadResponse,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from tailwinds.messages import ChatMessage, ThinkingEvent, ToolCall, ToolSpec, Usage
from tailwinds.wire import ConnectionClosed, WireTooLarge


@dataclass(slots=True)
class ChatRequest:
    model: str
    messages: list[ChatMessage]
    temperature: float | None = None
    max_tokens: int | None = None
    tools: list[ToolSpec] | None = None
    # tokens the model may spend reasoning (Anthropic's `budget_tokens`, Gemini's
    # `thinkingBudget`); OpenAI's reasoning models take an effort instead
    thinking_budget: int | None = None
    reasoning_effort: str | None = None


# what a chat provider's stream yields
Piece = str | ToolCall | Usage | ThinkingEvent


@dataclass(slots=True)
class ResponseInfo:
    """What a model reported about its answer besides the answer itself, recorded by the
    parser as it goes (one per call: a provider object is made per call): for traces
    (tailwinds.tracing), never needed to answer."""

    model: str | None = None
    id: str | None = None
    finish_reasons: list[str] | None = None

    def saw(self, model: Any, response_id: Any) -> None:
        """The model and answer id a chunk names (checked: strings, bounded)."""
        if self.model is None and type(model) is str:
            self.model = model[:200]
        if self.id is None and type(response_id) is str:
            self.id = response_id[:200]

    def finished(self, reason: Any) -> None:
        if type(reason) is str:
            self.finish_reasons = [reason[:100]]


def response_info(provider: object) -> ResponseInfo | None:
    """The `ResponseInfo` of a provider built on `providers.http.Endpoint`, if any."""
    return getattr(getattr(provider, "endpoint", None), "response", None)


class ChatProvider(Protocol):
    def stream_chat(self, request: ChatRequest) -> AsyncIterator[Piece]:
        """Text pieces as the model produces them, its reasoning apart (`ThinkingEvent`),
        the tool calls it asks for (whole, once their arguments are complete), then its
        usage where it reports one."""
        ...


@dataclass(slots=True, frozen=True)
class ProviderLimits:
    connect_timeout_s: float = 10.0
    first_token_timeout_s: float = 60.0
    idle_timeout_s: float = 60.0
    retries: int = 2
    retry_backoff_s: float = 0.5
    # a streamed answer's body, in bytes: what the runner's character cap cannot see (a
    # node that reads a model's answer for itself, such as a condensed question)
    max_stream_bytes: int = 256 * 1_000_000

    @classmethod
    def from_settings(cls, settings: Settings) -> ProviderLimits:
        return cls(
            connect_timeout_s=settings.provider_connect_timeout_s,
            first_token_timeout_s=settings.provider_first_token_timeout_s,
            idle_timeout_s=settings.provider_idle_timeout_s,
            retries=settings.provider_retries,
            retry_backoff_s=settings.provider_retry_backoff_s,
            # ~25-300 bytes of SSE per token of a few characters: room for the whole answer
            max_stream_bytes=max(16_000_000, 256 * settings.max_answer_chars),
        )

    def retry_delay_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        delay = self.retry_backoff_s * (2**attempt)
        if retry_after_s is not None and retry_after_s <= 4 * delay + 5:
            delay = max(delay, retry_after_s)
        return delay


# a token count past this is junk (and past a PostgreSQL `integer` column)
MAX_TOKEN_COUNT = 2**31 - 1


def token_count(value: Any) -> int | None:
    """A usage number as the provider should have sent it: an int in 0..`MAX_TOKEN_COUNT`
    (a bool, float, string or anything larger is not one); else None. Usage is optional:
    a junk count is dropped, never a reason to fail or lose the turn."""
    return value if type(value) is int and 0 <= value <= MAX_TOKEN_COUNT else None


def reasoning_count(details: Any) -> Any:
    """OpenAI's `completion_tokens_details.reasoning_tokens`, when `details` is an object."""
    return details.get("reasoning_tokens") if type(details) is dict else None


def usage_of(
    prompt: Any, completion: Any, total: Any = None, reasoning: Any = None
) -> Usage | None:
    """The usage the provider reported, each count checked (`token_count`); when no total
    is given, the sum of the parts, unless one of them was junk (then unknown); None when
    nothing is left. `reasoning`, the completion tokens spent reasoning, is reported apart
    (never added: providers count it in the completion already)."""
    prompt_count, completion_count = token_count(prompt), token_count(completion)
    total_count = token_count(total)
    junk = (prompt is not None and prompt_count is None) or (
        completion is not None and completion_count is None
    )
    if total is None and not junk and (prompt_count, completion_count) != (None, None):
        total_count = token_count((prompt_count or 0) + (completion_count or 0))
    if prompt_count is None and completion_count is None and total_count is None:
        return None
    return Usage(prompt_count, completion_count, total_count, token_count(reasoning))


# statuses worth another try, before the first token only
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


def error_class_for_status(status: int) -> type[ProviderError]:
    if status in (401, 403):
        return ProviderAuth
    if status == 429:
        return ProviderRateLimited
    if status in RETRYABLE_STATUSES or status >= 500:
        return ProviderUnavailable
    return ProviderRejected


def error_for_status(status: int, message: str, provider: str) -> ProviderError:
    text = (
        f"{provider} answered {status}: {message}" if message else f"{provider} answered {status}"
    )
    return error_class_for_status(status)(text)


# what error objects say about themselves, as the HTTP status they stand for: OpenAI's
# `type`/`code` strings, Anthropic's `type` (its errors reference), llama.cpp server's
# `type` (tools/server/utils.hpp, `format_error_response`)
ERROR_TYPE_STATUS = {
    "invalid_request_error": 400,
    "context_length_exceeded": 400,
    "exceed_context_size_error": 400,
    "bad_request": 400,
    "not_supported_error": 400,
    "authentication_error": 401,
    "invalid_api_key": 401,
    "permission_error": 403,
    "permission_denied": 403,
    "not_found_error": 404,
    "model_not_found": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "api_error": 500,
    "server_error": 500,
    "internal_server_error": 500,
    "unavailable_error": 503,
    "service_unavailable": 503,
    "overloaded_error": 529,
    # Google's (Gemini's) `status`: the canonical gRPC codes (google.rpc.Code)
    "invalid_argument": 400,
    "failed_precondition": 400,
    "out_of_range": 400,
    "unauthenticated": 401,
    "not_found": 404,
    "resource_exhausted": 429,
    "internal": 500,
    "unavailable": 503,
    "deadline_exceeded": 504,
}


def status_of_error(error: Any, default: int = 500) -> int:
    """The HTTP status an error object reported inside a 200 stream stands for: its own
    numeric `code`/`status` (int or digits), else its `type`/`code` name, else words in its
    text. A 4xx is a refusal (not retried), never taken for a 503."""
    if isinstance(error, dict):
        for key in ("code", "status", "status_code"):
            value = error.get(key)
            if type(value) is str and value.isdigit():
                value = int(value)
            if type(value) is int and 400 <= value <= 599:
                return value
        # the code first: the more exact of the two (OpenAI's `invalid_api_key` and
        # `context_length_exceeded` both come with the type `invalid_request_error`)
        for key in ("code", "type", "status"):
            value = error.get(key)
            if type(value) is str and value.lower() in ERROR_TYPE_STATUS:
                return ERROR_TYPE_STATUS[value.lower()]
    text = str(error).lower()
    if "rate" in text and "limit" in text:
        return 429
    if "api key" in text or "unauthori" in text or "authentication" in text:
        return 401
    if "not found" in text:
        return 404
    if "context" in text and ("exceed" in text or "too long" in text or "length" in text):
        return 400
    return default


def error_for_exception(exc: BaseException, provider: str) -> ProviderError:
    """The one mapping of the HTTP client's exceptions to ours."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, WireTooLarge):
        return ProviderBadResponse(f"{provider} sent {exc}")
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
