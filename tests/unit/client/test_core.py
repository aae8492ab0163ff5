"""The SDK's sans-IO core: errors from answers, and events from bytes cut anywhere."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tailwinds.client import (
    AuthenticationError,
    BadRequestError,
    End,
    Error,
    EventReader,
    Metadata,
    NotFoundError,
    RateLimitError,
    ServerError,
    Start,
    StreamProtocolError,
    Token,
    _core,
)
from tailwinds.client._core import error_for
from tailwinds.engine.events import (
    EndEvent,
    ErrorEvent,
    MetadataEvent,
    StartEvent,
    TokenEvent,
    encode_event,
)

STREAM = b"".join(
    [
        encode_event(StartEvent("c1", "m1")),
        b": ping\n\n",
        encode_event(TokenEvent("Hé")),
        encode_event(TokenEvent("llo 😀\n")),
        b"event: future\ndata: {}\n\n",
        encode_event(
            MetadataEvent({"chatId": "c1", "messageId": "m1", "usage": {"totalTokens": 3}})
        ),
        encode_event(EndEvent()),
    ]
)


@given(st.lists(st.integers(0, len(STREAM)), max_size=10))
def test_any_chunking_gives_the_same_events(cuts: list[int]) -> None:
    reader = EventReader()
    events = []
    last = 0
    for cut in [*sorted(cuts), len(STREAM)]:
        events.extend(reader.feed(STREAM[last:cut]))
        last = cut
    assert [type(e) for e in events] == [Start, Token, Token, Metadata, End]
    assert reader.text == "Héllo 😀\n"
    assert reader.chat_id == "c1" and reader.ended
    assert reader.metadata is not None and reader.metadata.usage is not None
    assert reader.metadata.usage.total_tokens == 3


def test_error_event_and_bad_data() -> None:
    reader = EventReader()
    events = reader.feed(encode_event(ErrorEvent("provider_auth", "no")))
    assert events == [Error("provider_auth", "no")]
    with pytest.raises(StreamProtocolError):
        EventReader().feed(b"event: token\ndata: {not json}\n\n")


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (413, BadRequestError),
        (401, AuthenticationError),
        (404, NotFoundError),
        (502, ServerError),
    ],
)
def test_errors_carry_the_server_message(status: int, cls: type) -> None:
    error = error_for(status, {}, b'{"error": "question: required", "code": "invalid_request"}')
    assert isinstance(error, cls)
    assert (error.status, error.code, error.message) == (
        status,
        "invalid_request",
        "question: required",
    )


def test_rate_limit_has_retry_after() -> None:
    error = error_for(429, {"retry-after": "2"}, b'{"error": "busy", "code": "rate_limited"}')
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 2.0
    plain = error_for(500, {}, b"gateway exploded")
    assert plain.message == "gateway exploded"


def test_thinking_is_typed_and_kept_apart() -> None:
    from tailwinds.client import Prediction, Thinking
    from tailwinds.engine.events import ThinkingEvent

    reader = EventReader()
    events = reader.feed(
        encode_event(StartEvent("c1", "m1"))
        + encode_event(ThinkingEvent("Let me "))
        + encode_event(TokenEvent("Hi"))
        + encode_event(ThinkingEvent("think."))
        + encode_event(
            MetadataEvent({"chatId": "c1", "messageId": "m1", "usage": {"reasoningTokens": 7}})
        )
        + encode_event(EndEvent())
    )
    assert [type(e) for e in events] == [Start, Thinking, Token, Thinking, Metadata, End]
    assert reader.text == "Hi" and reader.thinking == "Let me think."
    assert reader.metadata is not None and reader.metadata.usage is not None
    assert reader.metadata.usage.reasoning_tokens == 7
    answer = Prediction.from_json({"text": "Hi", "thinking": "hmm", "chatId": "c"})
    assert answer.thinking == "hmm"


def test_a_chatflow_from_an_export_keeps_every_setting_the_api_takes() -> None:
    from tailwinds.manage.chatflow_fields import ChatflowBody

    exported = {field.alias or name: None for name, field in ChatflowBody.model_fields.items()} | {
        "id": "x",
        "version": 3,
        "createdDate": "2026-01-01",
        "updatedDate": "2026-01-02",
    }
    sent = _core.chatflow_payload(json.dumps(exported))
    assert set(sent) == {field.alias or name for name, field in ChatflowBody.model_fields.items()}
