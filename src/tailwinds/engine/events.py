"""The one event model of a prediction, and its one SSE encoder.

The encoder lives beside the events, not in the server, so that workers can encode
without the server and API nodes relay the same bytes untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

# the providers yield it as it is (messages.py): one event model, no copy per piece
from tailwinds.messages import ThinkingEvent


@dataclass(slots=True)
class StartEvent:
    chat_id: str
    message_id: str


@dataclass(slots=True)
class TokenEvent:
    text: str


@dataclass(slots=True)
class SourceDocumentsEvent:
    documents: list[dict[str, Any]]


@dataclass(slots=True)
class UsedToolsEvent:
    tools: list[dict[str, Any]]


@dataclass(slots=True)
class ActionEvent:
    """A tool call that waits for a person's decision (engine/approvals.py):
    `expires_at` is ISO 8601 UTC, when it is rejected as timed out."""

    action_id: str
    tool: str
    tool_input: dict[str, Any]
    expires_at: str


@dataclass(slots=True)
class MetadataEvent:
    data: dict[str, Any]


@dataclass(slots=True)
class ErrorEvent:
    code: str
    message: str


@dataclass(slots=True)
class EndEvent:
    extra: dict[str, Any] = field(default_factory=dict)


Event = (
    StartEvent
    | TokenEvent
    | ThinkingEvent
    | SourceDocumentsEvent
    | UsedToolsEvent
    | ActionEvent
    | MetadataEvent
    | ErrorEvent
    | EndEvent
)

_TOKEN_HEAD = b'event: token\ndata: {"token":'
_TOKEN_TAIL = b"}\n\n"
_THINKING_HEAD = b'event: thinking\ndata: {"thinking":'


def encode_event(event: Event) -> bytes:
    """One complete SSE frame: `event:` line, one line of JSON `data:`, blank line.

    orjson never writes a raw newline (it escapes \\n, \\r and control characters), so
    data is always a single line whatever the text holds.
    """
    if type(event) is TokenEvent:
        # bytes concatenation, not a dict or ServerSentEvent per token (ARCHITECTURE.md)
        return _TOKEN_HEAD + orjson.dumps(event.text) + _TOKEN_TAIL
    if type(event) is ThinkingEvent:
        return _THINKING_HEAD + orjson.dumps(event.text) + _TOKEN_TAIL
    name, data = _payload(event)
    return b"event: " + name + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _payload(event: Event) -> tuple[bytes, Any]:
    match event:
        case StartEvent(chat_id=chat_id, message_id=message_id):
            return b"start", {"chatId": chat_id, "messageId": message_id}
        case SourceDocumentsEvent(documents=documents):
            return b"sourceDocuments", documents
        case UsedToolsEvent(tools=tools):
            return b"usedTools", tools
        case ActionEvent(action_id=action_id, tool=tool, tool_input=tool_input):
            return b"action", {
                "actionId": action_id,
                "tool": tool,
                "toolInput": tool_input,
                "expiresAt": event.expires_at,
            }
        case MetadataEvent(data=data):
            return b"metadata", data
        case ErrorEvent(code=code, message=message):
            return b"error", {"error": message, "code": code}
        case EndEvent(extra=extra):
            return b"end", extra
    raise TypeError(f"not an event: {event!r}")


def decode_event(name: str, data: str) -> Event:
    """The event a frame carries, back from its name and JSON data: for a node that gets
    frames from elsewhere and needs the events (a non-streaming answer in queue mode)."""
    payload = orjson.loads(data)
    match name:
        case "token":
            return TokenEvent(payload["token"])
        case "thinking":
            return ThinkingEvent(payload["thinking"])
        case "start":
            return StartEvent(payload["chatId"], payload["messageId"])
        case "sourceDocuments":
            return SourceDocumentsEvent(payload)
        case "usedTools":
            return UsedToolsEvent(payload)
        case "action":
            return ActionEvent(
                payload["actionId"], payload["tool"], payload["toolInput"], payload["expiresAt"]
            )
        case "metadata":
            return MetadataEvent(payload)
        case "error":
            return ErrorEvent(payload.get("code", "error"), payload.get("error", ""))
        case "end":
            return EndEvent(payload or {})
    raise ValueError(f"not an event name: {name!r}")


KEEPALIVE = b": ping\n\n"
