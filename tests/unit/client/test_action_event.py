"""The SDK's `Action` event from the bytes of an `action` frame."""

from __future__ import annotations

from tailwinds.client import Action, EventReader
from tailwinds.engine.events import ActionEvent, encode_event


def test_action_frame_becomes_a_typed_action() -> None:
    frame = encode_event(ActionEvent("a1", "calculator", {"x": 1}, "2026-01-01T00:00:00Z"))
    reader = EventReader()
    events = reader.feed(frame[:7]) + reader.feed(frame[7:])
    assert events == [Action("a1", "calculator", {"x": 1}, "2026-01-01T00:00:00Z")]
