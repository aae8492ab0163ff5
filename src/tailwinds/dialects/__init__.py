"""Wire dialects: the one event model, written the way other clients read streams.

The Prediction API's own dialect (`engine/events.py`'s `encode_event`) is the fast path: a
worker encodes it once and every API node relays its bytes untouched. Any other dialect
(Flowise's, OpenAI-compatible chat completions, AG-UI, the AI SDK's UI message stream) is
one `Encoder` here, fed the same events at the edge: from the runner directly, or decoded
back from relayed frames. One encoder per dialect, never a second runner.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from tailwinds.engine.events import ActionEvent, Event, ThinkingEvent, decode_event
from tailwinds.sse import SSEDecoder


def reasoning_text(event: Event) -> str | None:
    """The reasoning text `event` carries if it is the `thinking` event, else None."""
    return event.text if type(event) is ThinkingEvent else None


def action_data(event: Event) -> dict[str, Any] | None:
    """`{"actionId", "tool", "toolInput", "expiresAt"}` if `event` is the `action` event (a
    tool call waiting for a person's decision), else None. Every dialect carries it, in
    its own extension place: without the action id nobody can decide, and the run would
    wait out its whole expiry in silence."""
    if type(event) is not ActionEvent:
        return None
    return {
        "actionId": event.action_id,
        "tool": event.tool,
        "toolInput": event.tool_input,
        "expiresAt": event.expires_at,
    }


class Encoder(Protocol):
    """One stream's encoder (it may keep state: ids, whether text has started).

    `encode` returns the bytes of zero or more complete frames for one event (`b""`: the
    dialect has no place for it). `close` returns what the dialect sends after the last
    event, if anything (OpenAI's `data: [DONE]`)."""

    def encode(self, event: Event) -> bytes: ...

    def close(self) -> bytes: ...


async def transcode(
    stream: AsyncIterator[Event] | AsyncIterator[bytes], encoder: Encoder
) -> AsyncIterator[bytes]:
    """The stream in `encoder`'s dialect: the runner's events, or frames of our own
    dialect (a relayed or resumed stream), which are decoded back to events first.
    Closing this generator closes `stream`, which stops the run it drives."""
    decoder: SSEDecoder | None = None
    try:
        async for item in stream:
            if type(item) is bytes:
                if decoder is None:
                    decoder = SSEDecoder()
                for message in decoder.feed(item):
                    body = encoder.encode(decode_event(message.event, message.data))
                    if body:
                        yield body
            else:
                body = encoder.encode(item)  # type: ignore[arg-type]
                if body:
                    yield body
        tail = encoder.close()
        if tail:
            yield tail
    finally:
        await stream.aclose()  # type: ignore[union-attr]
