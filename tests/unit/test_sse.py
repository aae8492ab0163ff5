"""The SSE decoder's bounds and the failures it reports beside the events' data."""

from __future__ import annotations

import pytest

from tailwinds import sse
from tailwinds.sse import SSEDecoder, SSEProtocolError


def test_an_error_field_is_kept_beside_the_data() -> None:
    """llama.cpp's server (2025) sent `error: {...}` then `data: [DONE]`."""
    decoder = SSEDecoder()
    assert decoder.feed_data(b'data: {"a":1}\n\nerror: {"code":400}\n\ndata: [DONE]\n\n') == [
        b'{"a":1}',
        b"[DONE]",
    ]
    assert decoder.error == b'{"code":400}'


def test_an_error_event_is_kept_apart_in_data_mode_only() -> None:
    body = b'data: 1\n\nevent: error\ndata: {"message":"overloaded"}\n\ndata: 2\n\n'
    decoder = SSEDecoder()
    assert decoder.feed_data(body) == [b"1", b"2"]
    assert decoder.error == b'{"message":"overloaded"}'
    events = SSEDecoder().feed(body)
    assert [(e.event, e.data) for e in events] == [
        ("message", "1"),
        ("error", '{"message":"overloaded"}'),
        ("message", "2"),
    ]


def test_runs_of_blank_lines_change_nothing() -> None:
    """Runs are collapsed in big reads only: the events are the same wherever the cut."""
    body = (
        b"data: a\n"
        + b"\n" * 5000
        + b": comment\n\n\n\nevent: x\ndata: b\n"
        + b"\n" * 3000
        + b"data: c\n\n"
    )
    expected = [("message", "a"), ("x", "b"), ("message", "c")]
    for cut in range(len(body)):
        decoder = SSEDecoder()
        got = decoder.feed(body[:cut]) + decoder.feed(body[cut:])
        assert [(e.event, e.data) for e in got] == expected


def test_a_flood_of_blank_lines_is_cheap() -> None:
    decoder = SSEDecoder()
    for _ in range(100):
        assert decoder.feed_data(b"\n" * 65536) == []
    assert decoder.feed_data(b"data: x\n\n") == [b"x"]


def test_lines_and_events_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse, "MAX_LINE_BYTES", 100)
    monkeypatch.setattr(sse, "_LONG_LINE_BYTES", 50)
    monkeypatch.setattr(sse, "MAX_EVENT_BYTES", 250)
    with pytest.raises(SSEProtocolError, match="line longer"):
        SSEDecoder().feed_data(b"data: " + b"x" * 200)
    decoder = SSEDecoder()
    decoder.feed_data(b"data: " + b"y" * 90 + b"\n" + b"data: " + b"y" * 90 + b"\n")
    with pytest.raises(SSEProtocolError, match="event longer"):
        decoder.feed_data(b"data: " + b"y" * 90 + b"\n")


def test_a_long_line_read_in_many_pieces_arrives_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse, "_LONG_LINE_BYTES", 8)
    body = (
        b"data: " + "é".encode() * 40 + b"\n\nevent: x\ndata: short\n\ndata: " + b"z" * 30 + b"\n\n"
    )
    expected = [("message", "é" * 40), ("x", "short"), ("message", "z" * 30)]
    for size in (1, 3, 7, 16, 64):
        decoder = SSEDecoder()
        got = []
        for i in range(0, len(body), size):
            got += decoder.feed(body[i : i + size])
        decoder.close()
        assert [(e.event, e.data) for e in got] == expected, size
    decoder = SSEDecoder()
    decoder.feed(b"data: " + b"y" * 20)
    with pytest.raises(SSEProtocolError, match="middle of an event"):
        decoder.close()
    monkeypatch.setattr(sse, "MAX_LINE_BYTES", 30)
    decoder = SSEDecoder()
    decoder.feed(b"data: " + b"y" * 20)
    with pytest.raises(SSEProtocolError, match="line longer"):
        decoder.feed(b"y" * 20)


@pytest.mark.parametrize(
    "body", [b"data: a\n\ndata: b", b"data: a\n\ndata: b\n", b"data: a\n\ndata: b\r"]
)
def test_end_gives_the_event_left_open_at_the_end(body: bytes) -> None:
    decoder = SSEDecoder()
    assert decoder.feed_data(body) == [b"a"]
    assert decoder.end_data() == [b"b"]
    assert decoder.end_data() == []


def test_end_gives_nothing_when_every_event_was_closed() -> None:
    decoder = SSEDecoder()
    assert [m.data for m in decoder.feed(b"event: x\ndata: a\n\n")] == ["a"]
    assert decoder.end() == []
