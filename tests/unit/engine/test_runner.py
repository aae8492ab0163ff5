"""The flow runner driven in-process by a scripted answering node (standing for a
provider): the order of events, the answer cap, errors mid-stream, abort, a consumer
that leaves, and the outcome stored before `end` goes out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from tailwinds.config import Settings
from tailwinds.engine.context import RunContext, Turn
from tailwinds.engine.events import (
    ErrorEvent,
    Event,
    MetadataEvent,
    StartEvent,
    TokenEvent,
    UsedToolsEvent,
)
from tailwinds.engine.runner import JOIN_EVERY, FlowRunner, RunResult
from tailwinds.engine.runs import RunRegistry
from tailwinds.errors import ProviderUnavailable, ServerShutdown, StorageFailed
from tailwinds.messages import Usage

FAIL = object()  # in a script: raise the next item
WAIT = object()  # in a script: block until cancelled


class ScriptedNode:
    """An answering node whose answer is `script`: strings, usage and events yielded,
    an exception raised after FAIL, a wait for ever at WAIT."""

    def __init__(self, script: list[Any]) -> None:
        self.script = script
        self.waiting = asyncio.Event()
        self.closed = False

    async def answer(self, ctx: RunContext) -> AsyncIterator[Any]:
        items = iter(self.script)
        try:
            for item in items:
                if item is FAIL:
                    raise next(items)
                if item is WAIT:
                    self.waiting.set()
                    await asyncio.Event().wait()
                yield item
        finally:
            self.closed = True  # the provider's request is closed however the run ends


class Harness:
    def __init__(self, script: list[Any], max_answer_chars: int = 1000) -> None:
        settings = Settings(max_answer_chars=max_answer_chars)
        self.runner = FlowRunner(SimpleNamespace(settings=settings))  # type: ignore[arg-type]
        self.node = ScriptedNode(script)
        self.flow = SimpleNamespace(answer=self.node)
        self.runs = RunRegistry()
        self.turn = Turn("q?", "chat-1", "session-1", "msg-1")
        self.ctx = RunContext(self.turn, self.runner.resources)
        self.cleaned = 0
        self.ctx.cleanups.append(self._cleanup)
        self.recorded: list[RunResult] = []
        self.record_error: Exception | None = None
        self.events: list[Event] = []
        self.seen_before_record: list[Event] = []

    def _cleanup(self) -> None:
        self.cleaned += 1

    async def record(self, result: RunResult) -> None:
        # what the consumer had seen when the outcome was stored
        self.seen_before_record = list(self.events)
        self.recorded.append(result)
        if self.record_error is not None:
            raise self.record_error

    def stream(self) -> AsyncIterator[Event]:
        return self.runner.run("cf-1", self.flow, self.ctx, self.runs, self.record)  # type: ignore[arg-type]

    async def collect(self) -> list[Event]:
        async for event in self.stream():
            self.events.append(event)
        return self.events


def kinds(events: list[Event]) -> list[str]:
    return [type(e).__name__.removesuffix("Event").lower() for e in events]


def test_start_tokens_metadata_end_and_the_outcome_stored_before_end() -> None:
    h = Harness(["Hel", "", "lo", Usage(3, 2, 5), " wörld"])
    events = asyncio.run(h.collect())
    assert kinds(events) == ["start", "token", "token", "token", "metadata", "end"]
    assert events[0] == StartEvent("chat-1", "msg-1")
    assert [e.text for e in events if isinstance(e, TokenEvent)] == ["Hel", "lo", " wörld"]
    metadata = events[-2]
    assert isinstance(metadata, MetadataEvent)
    assert metadata.data["usage"] == Usage(3, 2, 5).as_dict()
    assert metadata.data["chatId"] == "chat-1" and metadata.data["chatflowId"] == "cf-1"
    (result,) = h.recorded
    assert (result.status, result.text, result.tokens, result.error) == (
        "complete",
        "Hello wörld",
        3,
        None,
    )
    assert h.seen_before_record == events[:4]  # no metadata, no end before it was stored
    assert h.cleaned == 1 and h.node.closed
    assert h.runs.running() == []


def test_a_long_answer_is_held_in_joined_blocks_and_whole() -> None:
    tokens = [f"t{i} " for i in range(JOIN_EVERY * 5 + 3)]
    h = Harness(tokens)
    asyncio.run(h.collect())
    (result,) = h.recorded
    assert result.text == "".join(tokens)
    assert result.tokens == len(tokens)
    assert len(result.parts) < len(tokens) // 2


def test_tool_events_pass_through_and_are_stored() -> None:
    tools = [{"tool": "calculator", "toolInput": {"expression": "1+1"}, "toolOutput": "2"}]
    h = Harness([UsedToolsEvent(tools), "2"])
    events = asyncio.run(h.collect())
    assert kinds(events) == ["start", "usedtools", "token", "metadata", "end"]
    assert h.recorded[0].tools == tools


def test_the_answer_cap_cuts_inside_a_token_then_error_then_end() -> None:
    h = Harness(["abcdef", "ghijkl", "never"], max_answer_chars=10)
    events = asyncio.run(h.collect())
    assert kinds(events) == ["start", "token", "token", "error", "end"]
    assert [e.text for e in events if isinstance(e, TokenEvent)] == ["abcdef", "ghij"]
    error = events[-2]
    assert isinstance(error, ErrorEvent) and error.code == "answer_too_long"
    assert "10 characters" in error.message
    (result,) = h.recorded
    assert (result.status, result.text) == ("error", "abcdefghij")
    assert h.node.closed


def test_a_cap_reached_exactly_at_a_token_boundary_sends_no_empty_token() -> None:
    h = Harness(["abcde", "fghij", "k"], max_answer_chars=10)
    events = asyncio.run(h.collect())
    assert [e.text for e in events if isinstance(e, TokenEvent)] == ["abcde", "fghij"]
    assert kinds(events)[-2:] == ["error", "end"]


def test_a_provider_error_mid_stream_keeps_what_came_then_error_then_end() -> None:
    h = Harness(["Hel", FAIL, ProviderUnavailable("model.test closed the connection")])
    events = asyncio.run(h.collect())
    assert kinds(events) == ["start", "token", "error", "end"]
    assert events[-2] == ErrorEvent("provider_unavailable", "model.test closed the connection")
    (result,) = h.recorded
    assert (result.status, result.text, result.error.code) == (
        "error",
        "Hel",
        "provider_unavailable",
    )  # type: ignore[union-attr]


def test_a_bug_in_a_node_is_a_flow_error_without_its_details() -> None:
    h = Harness(["a", FAIL, KeyError("secret-internal-name")])
    events = asyncio.run(h.collect())
    assert kinds(events) == ["start", "token", "error", "end"]
    error = events[-2]
    assert isinstance(error, ErrorEvent)
    assert (error.code, error.message) == ("flow_error", "the flow failed: KeyError")
    assert "secret-internal-name" not in error.message


@pytest.mark.parametrize(
    ("error", "code", "status"),
    [(None, "aborted", "aborted"), (ServerShutdown(), "server_shutdown", "aborted")],
)
def test_an_abort_lands_in_the_waiting_node_and_ends_the_stream(
    error: ServerShutdown | None, code: str, status: str
) -> None:
    h = Harness(["partial", WAIT, "never"])

    async def main() -> list[Event]:
        consumer = asyncio.create_task(h.collect())  # one task drives the run, as a response does
        await h.node.waiting.wait()
        assert h.runs.abort_run("msg-1", error)
        return await consumer

    events = asyncio.run(main())
    assert kinds(events) == ["start", "token", "error", "end"]
    assert isinstance(events[2], ErrorEvent) and events[2].code == code
    (result,) = h.recorded
    assert (result.status, result.text) == (status, "partial")
    assert h.node.closed and h.cleaned == 1


def test_an_abort_before_the_run_starts_ends_it_at_once() -> None:
    h = Harness(["never"])
    h.runs.interrupt("msg-1", ServerShutdown())
    events = asyncio.run(h.collect())
    assert kinds(events) == ["start", "error", "end"]
    assert h.recorded[0].status == "aborted"


def test_a_consumer_that_leaves_still_gets_its_turn_stored_as_aborted() -> None:
    h = Harness(["a", "b", WAIT])

    async def main() -> None:
        stream = h.stream()
        async for event in stream:
            if isinstance(event, TokenEvent) and event.text == "b":
                break
        await stream.aclose()  # as a disconnected client's response does
        await h.runner.drain()

    asyncio.run(main())
    (result,) = h.recorded
    assert (result.status, result.text) == ("aborted", "ab")
    assert h.cleaned == 1 and h.node.closed
    assert h.runs.running() == []


@pytest.mark.parametrize("failure", [StorageFailed(), RuntimeError("db down")])
def test_an_answer_that_could_not_be_stored_ends_with_storage_failed(failure: Exception) -> None:
    h = Harness(["fine"])
    h.record_error = failure
    events = asyncio.run(h.collect())
    assert kinds(events) == ["start", "token", "error", "end"]
    assert isinstance(events[2], ErrorEvent) and events[2].code == "storage_failed"
