"""Numbered frames: the `id:` line that makes a stream resumable, ahead of the event's own
frame from the one encoder."""

from __future__ import annotations

from tailwinds.engine.events import EndEvent, ErrorEvent, Event, encode_event


def numbered(seq: int, event: Event) -> bytes:
    return b"id: %d\n" % seq + encode_event(event)


def closing_frames(code: str, message: str) -> bytes:
    """`error` then `end`, unnumbered: what a relay says when the run's events stop coming
    (they are not part of the run's log, so a resume does not replay them)."""
    return encode_event(ErrorEvent(code, message)) + encode_event(EndEvent())


def parse_last_event_id(raw: str | None) -> int:
    """The sequence number a client last saw (`Last-Event-ID`), 0 for none."""
    if not raw:
        return 0
    try:
        seq = int(raw.strip())
    except ValueError:
        from tailwinds.errors import InvalidRequest

        raise InvalidRequest(
            f"expected the number of an `id:` line, got {raw[:40]!r}", field="Last-Event-ID"
        ) from None
    return max(seq, 0)
