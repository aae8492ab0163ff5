"""The seam every dialect sits on: events in, the dialect's frames out, from the runner's
events or from relayed frames of our own dialect cut anywhere."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tailwinds.dialects import transcode
from tailwinds.engine.events import EndEvent, Event, StartEvent, TokenEvent, encode_event


class Names:
    """An encoder that writes each event's class name, and `done` at the close."""

    def encode(self, event: Event) -> bytes:
        if type(event) is EndEvent:
            return b""
        return type(event).__name__.encode() + b";"

    def close(self) -> bytes:
        return b"done"


EVENTS: list[Event] = [StartEvent("c", "m"), TokenEvent("a\nb"), TokenEvent("c"), EndEvent()]


class Closing:
    def __init__(self, items: list[bytes] | list[Event]) -> None:
        self.items = iter(items)
        self.closed = False

    def __aiter__(self) -> Closing:
        return self

    async def __anext__(self) -> bytes | Event:
        try:
            return next(self.items)
        except StopIteration:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        self.closed = True


def _all(stream: AsyncIterator[bytes]) -> bytes:
    async def gather() -> bytes:
        return b"".join([chunk async for chunk in stream])

    return asyncio.run(gather())


def test_events_are_encoded_and_the_dialect_closes() -> None:
    source = Closing(EVENTS)
    assert _all(transcode(source, Names())) == b"StartEvent;TokenEvent;TokenEvent;done"
    assert source.closed


@pytest.mark.parametrize("cut", [1, 3, 7, 50])
def test_relayed_frames_are_decoded_wherever_they_were_cut(cut: int) -> None:
    wire = b"".join(encode_event(event) for event in EVENTS)
    chunks = [wire[i : i + cut] for i in range(0, len(wire), cut)]
    out = _all(transcode(Closing(chunks), Names()))
    assert out == b"StartEvent;TokenEvent;TokenEvent;done"


def test_closing_early_closes_the_run() -> None:
    source = Closing(EVENTS)

    async def take_one() -> bytes:
        stream = transcode(source, Names())
        first = await anext(stream)
        await stream.aclose()  # type: ignore[attr-defined]
        return first

    assert asyncio.run(take_one()) == b"StartEvent;"
    assert source.closed
