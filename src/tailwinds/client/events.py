"""The SDK's event model: one small typed object per event of the Prediction API's stream."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    # of the completion tokens, those the model spent reasoning (when its provider says)
    reasoning_tokens: int | None = None

    @classmethod
    def from_json(cls, data: Any) -> Usage | None:
        if not isinstance(data, dict):
            return None
        return cls(
            data.get("promptTokens"),
            data.get("completionTokens"),
            data.get("totalTokens"),
            data.get("reasoningTokens"),
        )


@dataclass(frozen=True, slots=True)
class Start:
    chat_id: str
    message_id: str


@dataclass(frozen=True, slots=True)
class Token:
    text: str


@dataclass(frozen=True, slots=True)
class Thinking:
    """A piece of the model's reasoning, apart from the answer (`Token`s)."""

    text: str


@dataclass(frozen=True, slots=True)
class SourceDocuments:
    documents: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class UsedTools:
    tools: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Action:
    """A tool call that waits for a person: answer it with `stream.approve(event)` or
    `stream.reject(event)` (or `client.decide(...)`) before `expires_at` (ISO 8601 UTC)."""

    action_id: str
    tool: str
    tool_input: dict[str, Any]
    expires_at: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Action:
        return cls(data["actionId"], data["tool"], data["toolInput"], data["expiresAt"])


@dataclass(frozen=True, slots=True)
class Metadata:
    chat_id: str
    message_id: str
    session_id: str | None
    question: str | None
    usage: Usage | None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Error:
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class End:
    pass


Event = Start | Token | Thinking | SourceDocuments | UsedTools | Action | Metadata | Error | End


@dataclass(frozen=True, slots=True)
class Prediction:
    """A whole answer (`predict(..., streaming=False)`)."""

    text: str
    question: str
    chat_id: str
    message_id: str
    session_id: str | None
    usage: Usage | None
    source_documents: list[dict[str, Any]]
    used_tools: list[dict[str, Any]]
    raw: dict[str, Any]
    # the model's reasoning, when it sent some apart from the answer
    thinking: str | None = None
    # "waiting" (a tool call waits for `action`'s decision: `client.decide(...)` answers
    # with the rest) or "complete", for chatflows whose tools may ask for approval
    status: str | None = None
    action: Action | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Prediction:
        waiting = data.get("action")
        return cls(
            text=data.get("text", ""),
            question=data.get("question", ""),
            chat_id=data.get("chatId", ""),
            message_id=data.get("messageId", ""),
            session_id=data.get("sessionId"),
            usage=Usage.from_json(data.get("usage")),
            source_documents=data.get("sourceDocuments") or [],
            used_tools=data.get("usedTools") or [],
            raw=data,
            thinking=data.get("thinking"),
            status=data.get("status"),
            action=Action.from_json(waiting) if isinstance(waiting, dict) else None,
        )


def event_from(name: str, data: Any) -> Event | None:
    """The typed event for one SSE event; None for a name this SDK does not know yet."""
    if name == "token":
        return Token(data["token"])
    if name == "thinking":
        return Thinking(data["thinking"])
    if name == "start":
        return Start(data["chatId"], data["messageId"])
    if name == "metadata":
        return Metadata(
            chat_id=data.get("chatId", ""),
            message_id=data.get("messageId", ""),
            session_id=data.get("sessionId"),
            question=data.get("question"),
            usage=Usage.from_json(data.get("usage")),
            raw=data,
        )
    if name == "sourceDocuments":
        return SourceDocuments(data)
    if name == "usedTools":
        return UsedTools(data)
    if name == "action":
        return Action.from_json(data)
    if name == "error":
        return Error(data.get("code", "error"), data.get("error", ""))
    if name == "end":
        return End()
    return None
