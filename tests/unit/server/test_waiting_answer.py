"""A JSON answer that may wait for a person (runs/waiting.py): what it collects up to and
after an action, and that a client leaving before it ends the run that outlives it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

from tailwinds.engine.events import (
    ActionEvent,
    EndEvent,
    Event,
    MetadataEvent,
    StartEvent,
    TokenEvent,
    UsedToolsEvent,
)
from tailwinds.runs.admission import Admission
from tailwinds.runs.service import PredictionService
from tailwinds.runs.waiting import collect_until_action
from tailwinds.server.answers import CLIENT_CLOSED_REQUEST, own_answer_response


def action(action_id: str) -> ActionEvent:
    return ActionEvent(action_id, "calculator", {"expression": "1"}, "2026-01-01T00:00:00Z")


RUN: list[Event] = [
    StartEvent("chat", "msg"),
    TokenEvent("Let me see. "),
    action("a1"),
    action("a2"),
    UsedToolsEvent([{"tool": "calculator", "decision": "approve"}]),
    TokenEvent("Result: 1"),
    MetadataEvent({"chatId": "chat", "messageId": "msg"}),
    EndEvent(),
]


async def events(items: list[Event]) -> AsyncIterator[Event]:
    for item in items:
        yield item


def test_the_first_answer_stops_at_the_first_action() -> None:
    answer = asyncio.run(collect_until_action(events(RUN)))
    assert answer == {
        "status": "waiting",
        "action": {
            "actionId": "a1",
            "tool": "calculator",
            "toolInput": {"expression": "1"},
            "expiresAt": "2026-01-01T00:00:00Z",
        },
        "chatId": "chat",
        "messageId": "msg",
        "text": "Let me see. ",
    }


def test_the_rest_after_a_decided_action() -> None:
    middle = asyncio.run(collect_until_action(events(RUN), after_action="a1"))
    assert middle["status"] == "waiting" and middle["action"]["actionId"] == "a2"
    assert middle["text"] == ""
    rest = asyncio.run(collect_until_action(events(RUN), after_action="a2"))
    assert rest["status"] == "complete" and rest["text"] == "Result: 1"
    assert rest["usedTools"] == [{"tool": "calculator", "decision": "approve"}]


class LeavingService:
    """A service whose run never answers, and which records the abort."""

    def __init__(self) -> None:
        self.aborted: list[str] = []

    async def waiting_answer(self, admission: Any) -> AsyncIterator[Event]:
        async def forever() -> AsyncIterator[Event]:
            yield StartEvent("chat", "msg")
            await asyncio.Event().wait()
            yield EndEvent()  # never

        return forever()

    async def abort_run(self, message_id: str, why: str) -> None:
        self.aborted.append(message_id)


class Admitted:
    class turn:
        message_id = "msg"


def test_a_client_that_leaves_before_the_first_answer_ends_the_run() -> None:
    service = LeavingService()

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    response = asyncio.run(
        own_answer_response(cast(PredictionService, service), cast(Admission, Admitted()), receive)
    )
    assert response.status_code == CLIENT_CLOSED_REQUEST
    assert service.aborted == ["msg"]
