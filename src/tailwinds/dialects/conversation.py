"""A conversation as other dialects send it (every message of the thread, each with a role)
read as one prediction: the last message, the user's, is the question; the user and
assistant messages before it are the history; system and developer messages become the
`systemMessage` override where the chatflow allows it (ignored, never refused, elsewhere:
chat front ends send one whatever the flow is)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from tailwinds.engine.validation import describe_validation_error
from tailwinds.errors import InvalidRequest
from tailwinds.runs.prediction_request import HistoryItem, PredictionRequest, load_body
from tailwinds.runs.request_caps import MAX_HISTORY, MAX_TEXT, check_id

# the chatflow input a system message overrides, where the chatflow allows it
SYSTEM_OVERRIDE = "systemMessage"
SYSTEM_ROLES = frozenset({"system", "developer"})


Body = TypeVar("Body", bound=BaseModel)


def parse_body(body: bytes, model: type[Body]) -> Body:
    """A dialect's JSON request body as `model`; `InvalidRequest` (400) naming the first
    field that is wrong otherwise (its `field`: the field's dotted path)."""
    raw = load_body(body)
    if not isinstance(raw, dict):
        raise InvalidRequest("expected a JSON object", field="request body")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        error = InvalidRequest(describe_validation_error(exc))
        error.field = ".".join(str(part) for part in exc.errors()[0]["loc"]) or None
        raise error from exc


def data_frame(payload: dict[str, Any]) -> bytes:
    """One SSE frame of `data:` alone (no event name), as OpenAI, AG-UI and the AI SDK
    write theirs (orjson writes no raw newline: one line whatever the text)."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def prediction(
    messages: Sequence[tuple[str, str]],
    *,
    chat_id: str | None,
    chat_id_field: str,
    allowed_overrides: list[str],
    streaming: bool,
    use_memory: bool = False,
    field: str = "messages",
    resume_grace_s: float = 0,
) -> PredictionRequest:
    """The prediction `messages` (`(role, text)`, oldest first) ask for. `use_memory`: the
    server's stored memory of `chat_id` is the history, not the messages before the
    question. `resume_grace_s`: how long the run goes on for a client that left, which
    may reconnect (0: a client that leaves stops its run). 400 naming `field` when there
    is no user question last."""
    if chat_id is not None:
        check_id(chat_id, chat_id_field)
    if not messages or messages[-1][0] != "user":
        raise InvalidRequest("the last message must be the user's question", field=field)
    question = messages[-1][1]
    if not question.strip():
        raise InvalidRequest("the last message must not be empty", field=field)
    if len(messages) > MAX_HISTORY + 1:
        raise InvalidRequest(f"at most {MAX_HISTORY + 1} messages", field=field)
    history: list[HistoryItem] = []
    system: str | None = None
    for n, (role, text) in enumerate(messages):
        if len(text) > MAX_TEXT:
            raise InvalidRequest(f"at most {MAX_TEXT} characters", field=f"{field}[{n}]")
        if n == len(messages) - 1:
            break
        if role in SYSTEM_ROLES:
            system = text if system is None else f"{system}\n\n{text}"
        elif role in ("user", "assistant") and text:
            kind: Literal["userMessage", "apiMessage"] = (
                "userMessage" if role == "user" else "apiMessage"
            )
            history.append(HistoryItem(role=kind, content=text))
        # tool messages: the chatflow runs its own tools and stores their steps
    overrides: dict[str, Any] = {}
    if system is not None and SYSTEM_OVERRIDE in allowed_overrides:
        overrides[SYSTEM_OVERRIDE] = system
    return PredictionRequest(
        question=question,
        streaming=streaming,
        chatId=chat_id,
        overrideConfig=overrides,
        history=None if use_memory else history,
        resumeGraceSeconds=resume_grace_s,
        uploads=None,
    )


def text_of(content: Any, field: str, *, other_parts: bool = False) -> str:
    """A message's text: a string, or a list of parts of which the `text` ones are read
    (`{"type": "text", "text": …}`); any other part is a 400 naming it, or with
    `other_parts` skipped (the AI SDK sends back the tool, source and step parts of the
    answers it got)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest("expected a string or a list of parts", field=field)
    texts = []
    for n, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind != "text" or not isinstance(part.get("text"), str):
            if other_parts:
                continue
            raise InvalidRequest(
                f"only text parts are supported, not {kind!r}", field=f"{field}[{n}]"
            )
        texts.append(part["text"])
    return "".join(texts)
