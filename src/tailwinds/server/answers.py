"""The non-streaming answer as an HTTP response: the run's events collected into one JSON
object, unless the client leaves first."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.responses import Response
from starlette.types import Receive

from tailwinds.engine.events import Event
from tailwinds.runs.answers import collect_answer
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
