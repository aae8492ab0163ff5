"""The OpenAI-compatible API: `POST /v1/chat/completions` (a chatflow as a model) and
`GET /v1/models` (the chatflows the caller may use). Errors come in OpenAI's shape
(`{"error": {"message", "type", "param", "code"}}`) with the Prediction API's statuses."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from tailwinds.dialects import openai_chat
from tailwinds.errors import RequestError, TailwindsError
from tailwinds.server import dialect_runs
from tailwinds.server.auth import require_admin
from tailwinds.server.direct_routes import direct
from tailwinds.server.errors import ERROR_RESPONSES, json_response
from tailwinds.server.state import State


class OpenAIError(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str


class OpenAIErrorBody(BaseModel):
    """Every refusal of the OpenAI-compatible routes, in OpenAI's shape."""

    error: OpenAIError


# the Prediction API's statuses, in OpenAI's shape (documented for the OpenAPI schema)
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {**doc, "model": OpenAIErrorBody} for status, doc in ERROR_RESPONSES.items()
}
_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": openai_chat.ChatCompletionRequest.model_json_schema()}
        },
    }
}

router = APIRouter(prefix="/v1", tags=["openai-compatible"], responses=_ERRORS)


def openai_error(error: TailwindsError) -> Response:
    headers = {}
    retry_after = getattr(error, "retry_after_s", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return json_response(openai_chat.error_body(error), error.status, headers)


@router.post(
    "/chat/completions",
    openapi_extra=_BODY_DOC,
    responses={
        200: {
            "description": "One `chat.completion`, or with `stream` its chunks as "
            "server-sent events",
            "content": {"application/json": {}, "text/event-stream": {}},
        }
    },
)
@direct
async def chat_completions(request: Request, state: State) -> Response:
    """A chat completion from the chatflow `model` names (its id, or its unique name):
    `chat.completion.chunk`s with `"stream": true`, else one `chat.completion`. See
    docs/PROTOCOL.md, "OpenAI-compatible chat completions"."""
    try:
        body = openai_chat.parse_chat_request(await request.body())
        chatflow = await dialect_runs.chatflow_named(state, body.model)
        chat_id = request.headers.get(openai_chat.CHAT_ID_HEADER)
        prediction = openai_chat.to_prediction(body, chat_id, chatflow.allowed_overrides)
        admission = await dialect_runs.admitted(request, state, chatflow.id, prediction)
        if admission is None:
            return dialect_runs.gone()
        if body.stream:
            include_usage = body.stream_options is not None and body.stream_options.include_usage
            encoder = openai_chat.ChunkEncoder(body.model, include_usage)
            return await dialect_runs.stream_response(state, admission, encoder)
        answer = await dialect_runs.collected_answer(request, state, admission)
        if answer is None:
            return dialect_runs.gone()
        return json_response(openai_chat.completion(body.model, answer))
    except TailwindsError as exc:
        return openai_error(exc)


@router.get("/models")
async def models(request: Request, state: State) -> Response:
    """The chatflows the caller manages (the admin token; without one, a caller on this
    machine): all of them. Anyone else: those of the API key in `Authorization: Bearer`.
    Chatflows without a key are usable by anyone who knows their id, but listed only to
    managers: the list would otherwise hand their ids to whoever asks."""
    chatflows = await state.chatflows.list()
    if not await _manages(request):
        key_ids = {c.api_key_id for c in chatflows if c.api_key_id is not None}
        try:
            opened = await state.predictions.access.opened_keys(
                request.headers.get("authorization"), key_ids
            )
        except TailwindsError as exc:  # too many wrong keys from this client
            return openai_error(exc)
        chatflows = [
            c
            for c in chatflows
            if c.api_key_id is not None and (opened is None or c.api_key_id in opened)
        ]
    listing = {
        "object": "list",
        "data": [
            {
                "id": c.id,
                "object": "model",
                "created": int(c.created_date.timestamp()),
                "owned_by": "tailwinds",
                "name": c.name,
            }
            for c in chatflows
        ],
    }
    return json_response(listing)


async def _manages(request: Request) -> bool:
    try:
        await require_admin(request)
    except RequestError:
        return False
    return True
