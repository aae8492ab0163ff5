"""The Prediction API: parse, call the service, return (Flowise's routes: `flowise.py`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from tailwinds.dialects.choice import FLOWISE, TAILWINDS, requested_dialect
from tailwinds.dialects.flowise import flowise_stream
from tailwinds.runs.admission import withdraw
from tailwinds.runs.prediction_request import PredictionRequest
from tailwinds.server.answers import CLIENT_CLOSED_REQUEST, own_answer_response
from tailwinds.server.auth import require_admin
from tailwinds.server.direct_routes import direct
from tailwinds.server.disconnect import before_disconnect
from tailwinds.server.flowise_predictions import flowise_prediction
from tailwinds.server.routes.feedback import with_feedback
from tailwinds.server.state import AppState, State
from tailwinds.server.streaming import sse_response
from tailwinds.transport.frames import parse_last_event_id

router = APIRouter(prefix="/api/v1", tags=["predictions"])

_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": PredictionRequest.model_json_schema(by_alias=True)}
        },
    }
}


@router.post("/predictions/{chatflow_id}", openapi_extra=_BODY_DOC)
@direct
async def predict(chatflow_id: str, request: Request, state: State) -> Response:
    """Answer `question` with the chatflow: one JSON answer, or with `"streaming": true` a
    stream of server-sent events (start, token…, metadata, end). `?dialect=flowise` (or
    `Accept: …; dialect=flowise`) answers in Flowise's dialect instead (docs/PROTOCOL.md)."""
    if _dialect(request, TAILWINDS) == FLOWISE:
        return await flowise_prediction(chatflow_id, request, state)
    return await own_prediction(chatflow_id, request, state)


def _dialect(request: Request, default: str) -> str:
    return requested_dialect(
        request.query_params.get("dialect"), request.headers.get("accept"), default
    )


async def own_prediction(chatflow_id: str, request: Request, state: AppState) -> Response:
    """A prediction in our own dialect."""
    body = await request.body()  # at most TAILWINDS_MAX_BODY_BYTES: see body_limit.py
    service = state.predictions
    # the turn may wait for its chat (`concurrentTurns: "queue"`): a client that leaves
    # meanwhile gives its place back and starts no run
    admitted, admission = await before_disconnect(
        request.receive,
        service.admit(chatflow_id, body, request.headers.get("authorization")),
        undo=withdraw,
    )
    if admission is None or not admitted:
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    if admission.streaming:
        return sse_response(await service.stream(admission), state.settings)
    return await own_answer_response(service, admission, request.receive)


@router.get(
    "/predictions/{chatflow_id}/stream/{message_id}",
    responses={
        200: {"description": "The events after Last-Event-ID, then the live rest"},
        204: {"description": "The stream had ended by Last-Event-ID: nothing more will come"},
    },
)
async def resume(
    chatflow_id: str,
    message_id: str,
    request: Request,
    state: State,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> Response:
    """Resume a stream asked with `resumeGraceSeconds`: the events after `Last-Event-ID`
    (all of them without it), then the live rest, in the dialect asked for as on the
    prediction (`?dialect=flowise`). Any API node can serve it in queue mode.
    `204` when the stream had ended by `Last-Event-ID`: an `EventSource` stops on it, where
    an empty `200` would make it reconnect every few seconds for ever."""
    frames = await state.predictions.resume(
        chatflow_id,
        message_id,
        parse_last_event_id(last_event_id),
        request.headers.get("authorization"),
    )
    if frames is None:
        return Response(status_code=204)
    if _dialect(request, TAILWINDS) == FLOWISE:
        return sse_response(flowise_stream(frames), state.settings)
    return sse_response(frames, state.settings)


class AbortBody(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    chat_id: str = Field(alias="chatId", min_length=1)


@router.post("/predictions/{chatflow_id}/abort")
async def abort(
    chatflow_id: str, body: AbortBody, request: Request, state: State
) -> dict[str, Any]:
    """Stop the running predictions of a chat: their streams end with `error`
    `{code: "aborted"}` then `end`. Needs the same key as the prediction."""
    await state.predictions.authorized_chatflow(chatflow_id, request.headers.get("authorization"))
    aborted = await state.predictions.abort(chatflow_id, body.chat_id)
    return {"chatId": body.chat_id, "aborted": aborted}


@router.put("/chatmessage/abort/{chatflow_id}/{chat_id}", include_in_schema=False)
async def abort_flowise(
    chatflow_id: str, chat_id: str, request: Request, state: State
) -> dict[str, Any]:
    await state.predictions.authorized_chatflow(chatflow_id, request.headers.get("authorization"))
    return {"chatId": chat_id, "aborted": await state.predictions.abort(chatflow_id, chat_id)}


@router.get("/chatmessage/{chatflow_id}", dependencies=[Depends(require_admin)])
async def chat_messages(
    chatflow_id: str,
    chatId: str,
    state: State,
) -> list[dict[str, Any]]:
    """The stored messages of one chat, oldest first; a rated answer carries `feedback`."""
    messages = await state.messages.list_chat(chatflow_id, chatId)
    return await with_feedback(state, chatflow_id, chatId, messages)
