"""The one SSE encoder and our decoder: every event encodes, and any text survives the
round trip, whatever the chunking."""

from __future__ import annotations

import json
import typing

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tailwinds.engine.events import (
    ActionEvent,
    EndEvent,
    ErrorEvent,
    Event,
    MetadataEvent,
    SourceDocumentsEvent,
    StartEvent,
    ThinkingEvent,
    TokenEvent,
    UsedToolsEvent,
    decode_event,
    encode_event,
)
from tailwinds.sse import SSEDecoder, SSEProtocolError

SAMPLES: dict[type, object] = {
    StartEvent: StartEvent("c", "m"),
    TokenEvent: TokenEvent("hi"),
    ThinkingEvent: ThinkingEvent("hmm"),
    SourceDocumentsEvent: SourceDocumentsEvent([{"pageContent": "x", "metadata": {}}]),
    UsedToolsEvent: UsedToolsEvent([{"tool": "t", "toolInput": {}, "toolOutput": "o"}]),
    ActionEvent: ActionEvent("a", "t", {"x": 1}, "2026-01-01T00:00:00Z"),
    MetadataEvent: MetadataEvent({"chatId": "c"}),
    ErrorEvent: ErrorEvent("aborted", "stopped"),
    EndEvent: EndEvent(),
}
NAMES = {
    StartEvent: "start",
    TokenEvent: "token",
    ThinkingEvent: "thinking",
    SourceDocumentsEvent: "sourceDocuments",
    UsedToolsEvent: "usedTools",
    ActionEvent: "action",
    MetadataEvent: "metadata",
    ErrorEvent: "error",
    EndEvent: "end",
}


@pytest.mark.parametrize("event_type", typing.get_args(Event))
def test_every_event_type_has_an_encoding(event_type: type) -> None:
    frame = encode_event(SAMPLES[event_type])  # type: ignore[arg-type]
    event_line, data_line, blank, end = frame.decode().split("\n")
    assert event_line == f"event: {NAMES[event_type]}"
    assert data_line.startswith("data: ")
    json.loads(data_line[6:])
    assert blank == "" and end == ""


@pytest.mark.parametrize("event_type", typing.get_args(Event))
def test_every_event_decodes_back(event_type: type) -> None:
    event = SAMPLES[event_type]
    frame = encode_event(event).decode()  # type: ignore[arg-type]
    data = frame.split("\n")[1][len("data: ") :]
    assert decode_event(NAMES[event_type], data) == event


def test_exact_bytes() -> None:
    assert (
        encode_event(TokenEvent('a "b"\n')) == b'event: token\ndata: {"token":"a \\"b\\"\\n"}\n\n'
    )
    assert encode_event(ErrorEvent("aborted", "x")) == (
        b'event: error\ndata: {"error":"x","code":"aborted"}\n\n'
    )
    assert encode_event(EndEvent()) == b"event: end\ndata: {}\n\n"
    assert encode_event(ThinkingEvent('a "b"\n')) == (
        b'event: thinking\ndata: {"thinking":"a \\"b\\"\\n"}\n\n'
    )
    assert encode_event(StartEvent("c", "m")) == (
        b'event: start\ndata: {"chatId":"c","messageId":"m"}\n\n'
    )


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for point in points:
        pieces.append(data[last:point])
        last = point
    pieces.append(data[last:])
    return pieces


@given(st.lists(st.text(), min_size=1, max_size=8), st.lists(st.integers(0, 10_000), max_size=12))
def test_any_text_survives_encode_then_decode_in_any_chunks(
    texts: list[str], cuts: list[int]
) -> None:
    stream = b"".join(encode_event(TokenEvent(t)) for t in texts) + encode_event(EndEvent())
    decoder = SSEDecoder()
    messages = []
    for piece in chunked(stream, cuts):
        messages.extend(decoder.feed(piece))
    decoder.close()
    assert [m.event for m in messages] == ["token"] * len(texts) + ["end"]
    assert [json.loads(m.data)["token"] for m in messages[:-1]] == texts


@given(st.binary(max_size=300), st.lists(st.integers(0, 400), max_size=6))
def test_any_bytes_give_events_or_a_protocol_error(data: bytes, cuts: list[int]) -> None:
    decoder = SSEDecoder()
    try:
        for piece in chunked(data, cuts):
            for message in decoder.feed(piece):
                assert isinstance(message.data, str)
                assert isinstance(message.event, str)
    except SSEProtocolError:
        pass


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_decoder_accepts_every_line_ending(newline: bytes) -> None:
    raw = b"event: a" + newline + b"data: 1" + newline + b"data: 2" + newline + newline
    for cut in range(len(raw) + 1):
        decoder = SSEDecoder()
        messages = decoder.feed(raw[:cut]) + decoder.feed(raw[cut:])
        assert [(m.event, m.data) for m in messages] == [("a", "1\n2")]


def test_decoder_keeps_unicode_line_separators_inside_data() -> None:
    decoder = SSEDecoder()
    raw = 'data: {"t":"a\u2028b\u0085c"}\n\n'.encode()
    assert [m.data for m in decoder.feed(raw)] == ['{"t":"a\u2028b\u0085c"}']


def test_decoder_skips_comments_and_reads_ids() -> None:
    decoder = SSEDecoder()
    messages = decoder.feed(b": ping\n\nid: 7\ndata:x\n\n")
    assert [(m.data, m.id) for m in messages] == [("x", "7")]


def test_decoder_refuses_invalid_utf8_and_an_unfinished_event() -> None:
    with pytest.raises(SSEProtocolError):
        SSEDecoder().feed(b"data: \xff\n\n")
    decoder = SSEDecoder()
    decoder.feed(b"data: half")
    with pytest.raises(SSEProtocolError):
        decoder.close()


@given(st.lists(st.text(), min_size=1, max_size=8), st.lists(st.integers(0, 10_000), max_size=12))
def test_feed_data_sees_what_feed_sees(texts: list[str], cuts: list[int]) -> None:
    stream = (
        b"".join(encode_event(TokenEvent(t)) for t in texts)
        + b": ping\n\nevent: x\nid: 3\ndata: a\ndata: b\n\n"
    )
    full, fast = SSEDecoder(), SSEDecoder()
    messages, datas = [], []
    for piece in chunked(stream, cuts):
        messages.extend(full.feed(piece))
        datas.extend(fast.feed_data(piece))
    assert [m.data.encode() for m in messages] == datas
    assert (messages[-1].event, messages[-1].id, messages[-1].data) == ("x", "3", "a\nb")


@pytest.mark.parametrize("event", list(SAMPLES.values()))
def test_decode_is_encode_reversed(event: Event) -> None:
    """A relayed frame (queue mode) comes back as the event it was."""
    name, data = encode_event(event).decode().split("\n")[:2]
    assert decode_event(name[len("event: ") :], data[len("data: ") :]) == event
