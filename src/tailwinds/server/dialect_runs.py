"""What every route of another dialect (OpenAI-compatible, AG-UI, AI SDK) does with the
prediction it read from its body: admit it as the Prediction API would (the same keys,
rate limits, chat turns), then stream the run through the dialect's encoder, or collect
its answer. The dialect modules (`tailwinds.dialects.*`) know the wire; this knows the
service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tailwinds.dialects import Encoder, transcode
from tailwinds.engine.events import Event
from tailwinds.errors import ChatflowNotFound, InvalidRequest
from tailwinds.runs.admission import Admission, withdraw
from tailwinds.runs.chatflow_access import CHATFLOW_MAX_AGE_S
from tailwinds.runs.prediction_request import PredictionRequest
from tailwinds.server.answers import CLIENT_CLOSED_REQUEST, collect_answer
from tailwinds.server.disconnect import before_disconnect, unless_disconnected
from tailwinds.server.state import AppState
from tailwinds.server.streaming import SSEResponse
from tailwinds.store.chatflows import Chatflow


async def admitted(
    request: Request, state: AppState, chatflow_id: str, prediction: PredictionRequest
) -> Admission | None:
    """The prediction admitted (None: the client left while it waited for its chat)."""
    service = state.predictions
    authorization = request.headers.get("authorization")
    done, admission = await before_disconnect(
        request.receive,
        service.admit_request(chatflow_id, prediction, authorization),
        undo=withdraw,
    )
    return admission if done else None


def gone() -> Response:
    return Response(status_code=CLIENT_CLOSED_REQUEST)


async def stream_response(
    state: AppState,
    admission: Admission,
    encoder: Encoder,
    headers: dict[str, str] | None = None,
) -> SSEResponse:
    """The run's stream in `encoder`'s dialect, with the usual keep-alives (`: ping`
    comments, which every SSE reader skips), write bound and stop on disconnect."""
    stream = await state.predictions.stream(admission)
    settings = state.settings
    return SSEResponse(
        transcode(stream, encoder),
        settings.keepalive_s,
        settings.client_write_timeout_s(),
        headers=headers,
    )


async def collected_answer(
    request: Request, state: AppState, admission: Admission
) -> dict[str, Any] | None:
    """The run's answer as `collect_answer` gathers it (its failure raised as the
    `TailwindsError` it was), or None when the client left first (the run is stopped)."""
    events: AsyncIterator[Event] = await state.predictions.answer_events(admission)
    answered, answer = await unless_disconnected(request.receive, collect_answer(events))
    return answer if answered else None


async def chatflow_named(state: AppState, model: str) -> Chatflow:
    """The chatflow `model` names: its id, or a name exactly one chatflow has (400 listing
    the ids when several have it, 404 when none)."""
    chatflow = await state.chatflows.get(model, max_age_s=CHATFLOW_MAX_AGE_S)
    if chatflow is not None:
        return chatflow
    named = [c for c in await state.chatflows.list() if c.name == model]
    if len(named) == 1:
        return named[0]
    if named:
        ids = ", ".join(sorted(c.id for c in named))
        raise InvalidRequest(
            f"{len(named)} chatflows are named {model!r}: use one's id ({ids})", field="model"
        )
    raise ChatflowNotFound(model)
