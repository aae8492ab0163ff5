"""A prediction in Flowise's dialect: the body read as Flowise's clients write it, the same
service, the answer written as they read it (`dialects/flowise.py`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from tailwinds.dialects.flowise import flowise_answer, flowise_stream
from tailwinds.dialects.flowise_request import parse_flowise_request
from tailwinds.errors import RateLimited, TailwindsError
from tailwinds.runs.admission import withdraw
from tailwinds.server.answers import CLIENT_CLOSED_REQUEST, collect_answer
from tailwinds.server.disconnect import before_disconnect, unless_disconnected
from tailwinds.server.errors import json_response
from tailwinds.server.state import AppState
from tailwinds.server.streaming import sse_response

# the statuses whose body Flowise's widget shows as it is (`Bot.tsx`, `onopen`)
PLAIN_TEXT_STATUSES = frozenset({401, 403, 429})


async def flowise_prediction(chatflow_id: str, request: Request, state: AppState) -> Response:
    """`POST /api/v1/prediction/{id}`: with `streaming` a stream of Flowise's frames, else
    our JSON answer plus `chatMessageId`. A 401, 403 or 429 has a plain-text body."""
    try:
        return await _predict(chatflow_id, request, state)
    except TailwindsError as exc:
        if exc.status not in PLAIN_TEXT_STATUSES:
            raise
        headers = {}
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after_s)
        return PlainTextResponse(exc.message, status_code=exc.status, headers=headers)


async def _predict(chatflow_id: str, request: Request, state: AppState) -> Response:
    body = await request.body()  # at most TAILWINDS_MAX_BODY_BYTES: see body_limit.py
    service = state.predictions
    parsed = parse_flowise_request(body)
    admitted, admission = await before_disconnect(
        request.receive,
        service.admit_request(chatflow_id, parsed, request.headers.get("authorization")),
        undo=withdraw,
    )
    if admission is None or not admitted:
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    if admission.streaming:
        return sse_response(flowise_stream(await service.stream(admission)), state.settings)
    events = await service.answer_events(admission)
    answered, answer = await unless_disconnected(request.receive, collect_answer(events))
    if not answered or answer is None:
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    return json_response(flowise_answer(answer))
