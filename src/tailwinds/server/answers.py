"""The non-streaming answer as an HTTP response: the run's events collected into one JSON
object, unless the client leaves first."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.responses import Response
from starlette.types import Receive

from tailwinds.engine.events import Event
from tailwinds.runs.admission import Admission
from tailwinds.runs.answers import collect_answer
from tailwinds.runs.service import PredictionService
from tailwinds.runs.waiting import collect_until_action
from tailwinds.server.disconnect import unless_disconnected
from tailwinds.server.errors import json_response

# nginx's "client closed request": what the request metrics count for a client that left
CLIENT_CLOSED_REQUEST = 499


async def answer_response(events: AsyncIterator[Event], receive: Receive) -> Response:
    """`200` with the answer; when the client disconnects first, the run is cancelled at
    once (the model's request closed, the turn stored `aborted`) and the response, which
    nobody reads, is an empty 499."""
    answered, answer = await unless_disconnected(receive, collect_answer(events))
    if not answered:
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    return json_response(answer)


async def own_answer_response(
    service: PredictionService, admission: Admission, receive: Receive
) -> Response:
    """The JSON answer of our own route: where a tool call may wait for a person, `200`
    with `status` `"waiting"` and the `action` at the first one, the run going on
    (runs/waiting.py); otherwise `answer_response`."""
    events = await service.waiting_answer(admission)
    if events is None:
        return await answer_response(await service.answer_events(admission), receive)
    answered, answer = await unless_disconnected(receive, collect_until_action(events))
    if not answered:
        # the run outlives its readers: end it as a direct answer's would end
        await service.abort_run(admission.turn.message_id, "the client left before the answer")
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    return json_response(answer)
