"""The AG-UI dialect (https://docs.ag-ui.com, the `@ag-ui/core` 1.0 schemas): a
`RunAgentInput` read as a prediction, and the run's events written as AG-UI events, one
`data: <json>` frame each, as `@ag-ui/client`'s `HttpAgent` reads them.

    start             RUN_STARTED {threadId, runId}
    first token       TEXT_MESSAGE_START {messageId, role: "assistant"}
    token             TEXT_MESSAGE_CONTENT {messageId, delta}
    thinking          REASONING_START + REASONING_MESSAGE_START {messageId, role: "reasoning"}
                      (first of a span), REASONING_MESSAGE_CONTENT {messageId, delta};
                      REASONING_MESSAGE_END + REASONING_END before the next text, tool
                      call or RUN_FINISHED
    usedTools         TOOL_CALL_START / TOOL_CALL_ARGS / TOOL_CALL_END / TOOL_CALL_RESULT
                      for each step (the tool has run by then: all four at once)
    sourceDocuments   CUSTOM {name: "sourceDocuments", value: [documents]}
    action            CUSTOM {name: "action", value: {actionId, tool, toolInput, expiresAt}}
    end               TEXT_MESSAGE_END (if one started), RUN_FINISHED {threadId, runId,
                      result: {chatId, messageId, sessionId, chatflowId}, usage}
    error             RUN_ERROR {message, code} (and nothing after it)

The client sends the whole thread in `messages` on every run: they are the history (the
thread's stored memory is not read as well), `threadId` is the chat id. Optional fields
are left out, never `null` (the client's schemas refuse `null`).
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from tailwinds.dialects import action_data, reasoning_text
from tailwinds.dialects.conversation import data_frame, parse_body, prediction, text_of
from tailwinds.engine.events import (
    EndEvent,
    ErrorEvent,
    Event,
    MetadataEvent,
    SourceDocumentsEvent,
    StartEvent,
    TokenEvent,
    UsedToolsEvent,
)
from tailwinds.runs.prediction_request import PredictionRequest
from tailwinds.runs.request_caps import MAX_HISTORY


class AguiMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | None = Field(None, max_length=255)
    role: str = Field(max_length=32)
    content: Any = None


class RunAgentInput(BaseModel):
    """The fields of AG-UI's `RunAgentInput` a chatflow takes (`tools`, `context`, `state`
    and `forwardedProps` are accepted and ignored: the chatflow has its own tools)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    thread_id: str = Field(alias="threadId", min_length=1, max_length=255)
    run_id: str = Field(alias="runId", min_length=1, max_length=255)
    messages: list[AguiMessage] = Field(max_length=MAX_HISTORY + 1)


def parse_run_input(body: bytes) -> RunAgentInput:
    return parse_body(body, RunAgentInput)


def to_prediction(run: RunAgentInput, allowed_overrides: list[str]) -> PredictionRequest:
    messages = [
        (m.role, text_of(m.content, f"messages[{n}].content", other_parts=m.role != "user"))
        for n, m in enumerate(run.messages)
    ]
    return prediction(
        messages,
        chat_id=run.thread_id,
        chat_id_field="threadId",
        allowed_overrides=allowed_overrides,
        streaming=True,
    )


class EventEncoder:
    """One run's AG-UI events (see the module's docstring)."""

    def __init__(self, thread_id: str, run_id: str) -> None:
        self.thread_id = thread_id
        self.run_id = run_id
        self.message_id = str(uuid.uuid4())  # until `start` names it
        self.text_open = False
        self.reasoning_id = ""  # the open reasoning message's, if one is open
        self.failed = False
        self.metadata: dict[str, Any] = {}
        self._content_head = b""
        self._content_tail = b"}\n\n"

    def encode(self, event: Event) -> bytes:
        if type(event) is TokenEvent:
            body = self._content_head + orjson.dumps(event.text) + self._content_tail
            if self.text_open and not self.reasoning_id:
                return body
            head = self._end_reasoning()
            if not self.text_open:
                self.text_open = True
                start = {"type": "TEXT_MESSAGE_START", "messageId": self.message_id}
                head += data_frame({**start, "role": "assistant"})
            return head + body
        if type(event) is StartEvent:
            self._start(event.message_id)
            return data_frame(
                {"type": "RUN_STARTED", "threadId": self.thread_id, "runId": self.run_id}
            )
        if type(event) is UsedToolsEvent:
            return self._end_reasoning() + b"".join(self._tool_call(s) for s in event.tools)
        if type(event) is SourceDocumentsEvent:
            return data_frame(
                {"type": "CUSTOM", "name": "sourceDocuments", "value": event.documents}
            )
        if type(event) is MetadataEvent:
            self.metadata = event.data
            return b""
        if type(event) is ErrorEvent:
            self.failed = True
            return data_frame({"type": "RUN_ERROR", "message": event.message, "code": event.code})
        if type(event) is EndEvent:
            if self.failed:
                return b""
            body = self._end_reasoning()  # RUN_FINISHED is refused while one is open
            if self.text_open:
                self.text_open = False
                body += data_frame({"type": "TEXT_MESSAGE_END", "messageId": self.message_id})
            finished: dict[str, Any] = {
                "type": "RUN_FINISHED",
                "threadId": self.thread_id,
                "runId": self.run_id,
                "result": {
                    k: v for k, v in self.metadata.items() if k not in ("usage", "question")
                },
            }
            usage = _usage(self.metadata.get("usage") or {})
            if usage:
                finished["usage"] = [usage]
            return body + data_frame(finished)
        reasoning = reasoning_text(event)
        if reasoning is not None:
            body = b""
            if not self.reasoning_id:
                self.reasoning_id = rid = str(uuid.uuid4())
                body = data_frame({"type": "REASONING_START", "messageId": rid}) + data_frame(
                    {"type": "REASONING_MESSAGE_START", "messageId": rid, "role": "reasoning"}
                )
            content = {"messageId": self.reasoning_id, "delta": reasoning}
            return body + data_frame({"type": "REASONING_MESSAGE_CONTENT", **content})
        action = action_data(event)
        if action is not None:  # a tool call waits for a person's decision
            return self._end_reasoning() + data_frame(
                {"type": "CUSTOM", "name": "action", "value": action}
            )
        return b""  # an event this dialect has no place for

    def close(self) -> bytes:
        return b""

    def _end_reasoning(self) -> bytes:
        if not self.reasoning_id:
            return b""
        rid, self.reasoning_id = self.reasoning_id, ""
        return data_frame({"type": "REASONING_MESSAGE_END", "messageId": rid}) + data_frame(
            {"type": "REASONING_END", "messageId": rid}
        )

    def _start(self, message_id: str) -> None:
        self.message_id = message_id
        self._content_head = (
            b'data: {"type":"TEXT_MESSAGE_CONTENT","messageId":'
            + orjson.dumps(message_id)
            + b',"delta":'
        )

    def _tool_call(self, step: dict[str, Any]) -> bytes:
        call_id = str(uuid.uuid4())
        arguments = step.get("toolInput")
        output = step.get("toolOutput")
        return b"".join(
            data_frame(e)
            for e in (
                {
                    "type": "TOOL_CALL_START",
                    "toolCallId": call_id,
                    "toolCallName": str(step.get("tool", "")),
                    "parentMessageId": self.message_id,
                },
                {
                    "type": "TOOL_CALL_ARGS",
                    "toolCallId": call_id,
                    "delta": arguments
                    if isinstance(arguments, str)
                    else orjson.dumps(arguments).decode(),
                },
                {"type": "TOOL_CALL_END", "toolCallId": call_id},
                {
                    "type": "TOOL_CALL_RESULT",
                    "messageId": str(uuid.uuid4()),
                    "toolCallId": call_id,
                    "content": output if isinstance(output, str) else orjson.dumps(output).decode(),
                    "role": "tool",
                },
            )
        )


def _usage(usage: dict[str, Any]) -> dict[str, int]:
    """AG-UI's TokenUsage from ours: the counts the provider reported, no `null`s."""
    names = {
        "promptTokens": "inputTokens",
        "completionTokens": "outputTokens",
        "totalTokens": "totalTokens",
    }
    return {theirs: usage[ours] for ours, theirs in names.items() if usage.get(ours) is not None}
