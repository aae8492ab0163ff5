"""What a turn of conversation is made of, as nodes and providers see it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]

# the key a tool call's arguments are kept under when they were not a JSON object
INVALID_ARGUMENTS = "__invalid_json__"

# how deep a tool call's input may nest (a model's arguments, a person's edited input):
# the events and stored turns that carry it wrap it a few levels more, and the JSON
# encoder stops at 254 (a deeper input broke the stream mid-way, without `error`/`end`)
MAX_INPUT_DEPTH = 64


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether `value` (decoded JSON) holds lists or objects more than `limit` levels deep;
    iterative, so any depth is safe to ask about."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


@dataclass(slots=True, frozen=True)
class ToolCall:
    """A model's request to run a tool: one representation for every provider."""

    id: str
    name: str
    arguments: dict[str, Any]
    # what the provider needs back with this call when it is replayed to it (in an agent's
    # next round), and nothing else reads: Anthropic's signed `thinking` blocks before it,
    # Gemini's `thoughtSignature` on it. Not part of the call's identity.
    replay: dict[str, Any] | None = field(default=None, compare=False)


@dataclass(slots=True, frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments


@dataclass(slots=True, frozen=True)
class ImagePart:
    """An image given with a question (a prediction's `uploads`): what every provider's
    vision format is written from."""

    mime: str  # image/png, image/jpeg, image/gif, image/webp
    data: str  # base64, no data-URL prefix


@dataclass(slots=True, frozen=True)
class FileText:
    """The text of a file given with a question, read by the document stores' loaders."""

    name: str
    text: str


@dataclass(slots=True, frozen=True)
class ChatMessage:
    role: Role
    content: str
    # an assistant turn that asked for tools, and a tool turn that answers one of them
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    # images shown to the model with a user turn (the question's uploads)
    images: tuple[ImagePart, ...] = ()


@dataclass(slots=True)
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    # of the completion tokens, those spent reasoning, where the provider says
    reasoning_tokens: int | None = None

    def add(self, other: Usage) -> Usage:
        def plus(a: int | None, b: int | None) -> int | None:
            return None if a is None and b is None else (a or 0) + (b or 0)

        return Usage(
            plus(self.prompt_tokens, other.prompt_tokens),
            plus(self.completion_tokens, other.completion_tokens),
            plus(self.total_tokens, other.total_tokens),
            plus(self.reasoning_tokens, other.reasoning_tokens),
        )

    def as_dict(self) -> dict[str, Any]:
        counts: dict[str, Any] = {
            "promptTokens": self.prompt_tokens,
            "completionTokens": self.completion_tokens,
            "totalTokens": self.total_tokens,
        }
        if self.reasoning_tokens is not None:  # only from providers that report it
            counts["reasoningTokens"] = self.reasoning_tokens
        return counts


@dataclass(slots=True)
class ThinkingEvent:
    """A piece of the model's reasoning, apart from the answer: streamed as it comes, never
    stored as the answer nor sent back to the model as history."""

    text: str
