"""The body of a prediction request, parsed and checked before anything else runs: each
refusal a 400 naming the field (`request_caps` has the caps)."""

from __future__ import annotations

import json
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tailwinds.engine.validation import describe_validation_error
from tailwinds.errors import InvalidRequest
from tailwinds.providers.lenient_json import paired
from tailwinds.runs.request_caps import MAX_HISTORY, MAX_TEXT, check_id
from tailwinds.store.chatflows import Chatflow


class HistoryItem(BaseModel):
    role: Literal["userMessage", "apiMessage"]
    content: str = Field(max_length=MAX_TEXT)


class PredictionRequest(BaseModel):
    """The body of `POST /api/v1/predictions/{chatflowId}` (unknown fields are ignored, as
    Flowise's clients send a few of their own)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    question: str | None = Field(None, max_length=MAX_TEXT)
    streaming: bool = False
    chat_id: str | None = Field(None, alias="chatId", min_length=1, max_length=255)
    override_config: dict[str, Any] = Field(default_factory=dict, alias="overrideConfig")
    history: list[HistoryItem] | None = Field(None, max_length=MAX_HISTORY)
    # keep the run going this long while its client is away, and let it resume the stream
    # (the chatflow's own setting when left out)
    resume_grace_s: float | None = Field(None, alias="resumeGraceSeconds", ge=0, le=3600)
    # files given with the question: read by runs/uploads.py
    uploads: list[Any] | None = Field(None, max_length=20)


def parse_request(body: bytes) -> PredictionRequest:
    return request_from(load_body(body))


def request_from(raw: Any) -> PredictionRequest:
    """The request from the body's JSON value (parsed already), checked."""
    if not isinstance(raw, dict):
        raise InvalidRequest("expected a JSON object", field="request body")
    try:
        request = PredictionRequest.model_validate(raw)
    except ValidationError as exc:
        raise InvalidRequest(describe_validation_error(exc)) from exc
    if request.chat_id is not None:
        check_id(request.chat_id, "chatId")
    if request.question is None:
        raise InvalidRequest("required", field="question")
    if not request.question.strip():
        raise InvalidRequest("must not be empty", field="question")
    return request


def resume_grace_s(request: PredictionRequest, chatflow: Chatflow) -> float:
    if not request.streaming:
        return 0.0  # an answer that is not a stream cannot be resumed: its client gone, it stops
    if request.resume_grace_s is not None:
        return request.resume_grace_s
    return chatflow.resume_grace_s or 0.0


def check_overrides(overrides: dict[str, Any], allowed: list[str]) -> None:
    for name in overrides:
        if name not in allowed:
            hint = ", ".join(allowed) if allowed else "none; set allowedOverrides on the chatflow"
            raise InvalidRequest(
                f"not allowed by this chatflow (allowed: {hint})", field=f"overrideConfig.{name}"
            )


def load_body(body: bytes) -> Any:
    """The body's JSON. A string holding half of a UTF-16 surrogate pair (`"\\ud83d"`, what
    JavaScript sends for a string cut inside an emoji) is valid JSON that orjson refuses:
    such a body is read by the standard library instead, the halves made U+FFFD."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "surrogate" not in str(exc):
            raise InvalidRequest(f"malformed JSON: {exc}", field="request body") from exc
        try:
            return _paired(json.loads(body))
        except (ValueError, RecursionError) as lenient:
            raise InvalidRequest(f"malformed JSON: {exc}", field="request body") from lenient


def _paired(value: Any) -> Any:
    if isinstance(value, str):
        return paired(value)
    if isinstance(value, list):
        return [_paired(item) for item in value]
    if isinstance(value, dict):
        return {paired(key): _paired(item) for key, item in value.items()}
    return value
