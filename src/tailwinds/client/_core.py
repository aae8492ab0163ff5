"""The sans-IO core both clients share: how requests are built, how answers and errors
are read, and how stream bytes become typed events. No sockets here."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tailwinds.client.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    StreamProtocolError,
)
from tailwinds.client.events import (
    End,
    Error,
    Event,
    Metadata,
    Start,
    Thinking,
    Token,
    event_from,
)
from tailwinds.sse import SSEDecoder, SSEProtocolError

DEFAULT_CONNECT_S = 10.0
DEFAULT_FIRST_EVENT_S = 30.0
# the server sends a keep-alive comment after 15 s of silence
DEFAULT_IDLE_S = 60.0
# how long the server keeps a run going while we reconnect after a dropped connection
DEFAULT_RESUME_GRACE_S = 30.0
# pauses before each attempt to resume a broken stream
RESUME_BACKOFF_S = (0.1, 0.5, 1.0, 2.0)


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect_s: float = DEFAULT_CONNECT_S
    first_event_s: float = DEFAULT_FIRST_EVENT_S
    idle_s: float = DEFAULT_IDLE_S


def timeouts_from(timeout: Timeouts | float | None) -> Timeouts:
    """`Timeouts`, or one number of seconds for all three, or the defaults."""
    if timeout is None:
        return Timeouts()
    if isinstance(timeout, Timeouts):
        return timeout
    return Timeouts(connect_s=timeout, first_event_s=timeout, idle_s=timeout)


def prediction_body(
    question: str,
    *,
    streaming: bool,
    chat_id: str | None,
    override_config: dict[str, Any] | None,
    history: list[dict[str, str]] | None,
    resume_grace_s: float = 0,
) -> dict[str, Any]:
    body: dict[str, Any] = {"question": question, "streaming": streaming}
    if streaming and resume_grace_s > 0:
        body["resumeGraceSeconds"] = resume_grace_s
    if chat_id is not None:
        body["chatId"] = chat_id
    if override_config:
        body["overrideConfig"] = override_config
    if history is not None:
        body["history"] = history
    return body


CHATFLOW_FIELDS = (
    "name",
    "flowData",
    "apiKeyId",
    "allowedOverrides",
    "allowedOrigins",
    "rateLimit",
    "resumeGraceSeconds",
    "approvalTimeoutSeconds",
    "concurrentTurns",
    "mcpTool",
    "chatbotConfig",
)


def chatflow_payload(chatflow: dict[str, Any] | str) -> dict[str, Any]:
    """What to send to create a chatflow, from a dict or an export's JSON text (the
    server's own fields of an export, such as id and dates, are left out)."""
    data = chatflow if isinstance(chatflow, dict) else json.loads(chatflow)
    return {k: data[k] for k in CHATFLOW_FIELDS if k in data}


def headers(api_key: str | None, streaming: bool = False) -> dict[str, str]:
    result = {"Accept": "text/event-stream" if streaming else "application/json"}
    if api_key:
        result["Authorization"] = f"Bearer {api_key}"
    return result


def resume_path(chatflow_id: str, message_id: str) -> str:
    return f"/api/v1/predictions/{chatflow_id}/stream/{message_id}"


def action_path(chatflow_id: str, action_id: str) -> str:
    return f"/api/v1/predictions/{chatflow_id}/actions/{action_id}"


def action_body(
    decision: str, tool_input: dict[str, Any] | None, message: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"decision": decision}
    if tool_input is not None:
        body["toolInput"] = tool_input
    if message is not None:
        body["message"] = message
    return body


def resume_headers(api_key: str | None, last_event_id: str) -> dict[str, str]:
    return {**headers(api_key, streaming=True), "Last-Event-ID": last_event_id}


def error_for(status: int, headers: Any, body: bytes) -> APIError:
    """The typed error of a non-2xx answer, with the server's own message."""
    try:
        data = json.loads(body)
    except ValueError:
        data = {}
    message = data.get("error") if isinstance(data, dict) else None
    message = str(message or body[:500].decode(errors="replace") or f"HTTP {status}")
    code = data.get("code") if isinstance(data, dict) else None
    if status == 429:
        retry_after = headers.get("retry-after")
        try:
            seconds = float(retry_after) if retry_after else None
        except ValueError:
            seconds = None
        return RateLimitError(message, status=status, code=code, retry_after=seconds)
    cls = {
        400: BadRequestError,
        413: BadRequestError,
        422: BadRequestError,
        401: AuthenticationError,
        403: PermissionDeniedError,
        404: NotFoundError,
    }.get(status, ServerError if status >= 500 else APIError)
    return cls(message, status=status, code=code)


class EventReader:
    """Bytes in, as they come, cut anywhere (inside an event, inside a UTF-8 character);
    typed events out. Unknown event names are skipped, keep-alive comments ignored."""

    def __init__(self) -> None:
        self._decoder = SSEDecoder()
        self.chat_id: str | None = None
        self.message_id: str | None = None
        self.metadata: Metadata | None = None
        self.error: Error | None = None
        self.ended = False
        self.last_event_id: str | None = None
        self._parts: list[str] = []
        self._thinking: list[str] = []

    @property
    def resumable(self) -> bool:
        """A stream cut before its end that said where it was (numbered events)."""
        return not self.ended and self.message_id is not None and self.last_event_id is not None

    def reconnected(self) -> None:
        """A new connection starts at an event boundary: drop the half event of the old."""
        self._decoder = SSEDecoder()

    def feed(self, chunk: bytes) -> list[Event]:
        """The events completed by `chunk`, up to and with `end`: the stream's last event
        by the protocol, whatever the connection does after it (a proxy may hold it open
        or close it late), so nothing after it is read. Callers stop at `ended`."""
        if self.ended:
            return []
        try:
            messages = self._decoder.feed(chunk)
        except SSEProtocolError as exc:
            raise StreamProtocolError(str(exc)) from exc
        events: list[Event] = []
        for message in messages:
            if self.ended:
                break
            if message.id is not None:
                self.last_event_id = message.id
            try:
                event = event_from(message.event, json.loads(message.data))
            except (ValueError, KeyError, TypeError) as exc:
                raise StreamProtocolError(
                    f"bad {message.event!r} event: {message.data[:200]!r}"
                ) from exc
            if event is None:
                continue
            match event:
                case Token(text=text):
                    self._parts.append(text)
                case Thinking(text=text):
                    self._thinking.append(text)
                case Start(chat_id=chat_id, message_id=message_id):
                    self.chat_id, self.message_id = chat_id, message_id
                case Metadata():
                    self.metadata = event
                case Error():
                    self.error = event
                case End():
                    self.ended = True
            events.append(event)
        return events

    @property
    def text(self) -> str:
        return "".join(self._parts)

    @property
    def thinking(self) -> str:
        """The model's reasoning so far (`thinking` events), apart from the answer."""
        return "".join(self._thinking)
