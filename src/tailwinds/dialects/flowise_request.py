"""A prediction body as Flowise's clients send it, read into our `PredictionRequest`.

What they send that our own dialect refuses (source: the PyPI `flowise` 1.0.4 `client.py`,
flowise-sdk 1.0.9, FlowiseChatEmbed's `Bot.tsx`): `"overrideConfig": null`, `"chatId":
null`, `"streaming": null` or `"true"`, and history items `{message, type, role,
content}`, the speaker in `role` or `type` and the text in `content` or `message` (null
meaning empty). Everything else is checked as on our own route: a 400 naming the field.
"""

from __future__ import annotations

from typing import Any

from tailwinds.runs.prediction_request import PredictionRequest, load_body, request_from

# fields whose null means "not given"
_NULLABLE = ("overrideConfig", "chatId", "streaming", "history", "uploads", "resumeGraceSeconds")


# the chat-completion spellings some callers put in `role`
_ROLES = {
    "user": "userMessage",
    "human": "userMessage",
    "assistant": "apiMessage",
    "ai": "apiMessage",
}


def parse_flowise_request(body: bytes) -> PredictionRequest:
    """The request in a Flowise client's spelling; `InvalidRequest` (400) names the field."""
    return request_from(flowise_body(load_body(body)))


def flowise_body(raw: Any) -> Any:
    """Flowise's spellings made ours; anything else is left for the checks to refuse."""
    if not isinstance(raw, dict):
        return raw
    body = {key: value for key, value in raw.items() if not (key in _NULLABLE and value is None)}
    history = body.get("history")
    if isinstance(history, list):
        body["history"] = [_history_item(item) for item in history]
    return body


def _history_item(item: Any) -> Any:
    if not isinstance(item, dict):
        return item
    role = item.get("role")
    if role is None:
        role = item.get("type")
    role = _ROLES.get(role, role) if isinstance(role, str) else role
    content = item.get("content")
    if content is None:
        content = item.get("message")
    return {"role": role, "content": "" if content is None else content}
