"""A strict reader of Tailwinds' event stream for tests, independent of `tailwinds.sse`:
every frame must be exactly `event: <name>\\ndata: <one line of JSON>\\n\\n` (PROTOCOL.md),
or a comment."""

from __future__ import annotations

import json
from typing import Any

import requests


def parse_frames(raw: bytes) -> list[tuple[str, Any]]:
    return [(name, data) for _, name, data in parse_numbered(raw)]


def parse_numbered(raw: bytes) -> list[tuple[int | None, str, Any]]:
    """Frames with the number of their `id:` line (a resumable stream), None without."""
    text = raw.decode("utf-8")
    assert "\r" not in text.replace("\\r", ""), "raw CR in the stream"
    assert text.endswith("\n\n"), f"stream does not end with a blank line: {text[-80:]!r}"
    frames = []
    for block in text[:-2].split("\n\n"):
        lines = block.split("\n")
        if all(line.startswith(":") for line in lines):
            continue  # keep-alive comments
        number = None
        if lines[0].startswith("id: "):
            number = int(lines.pop(0)[len("id: ") :])
        assert len(lines) == 2, f"frame is not exactly two lines: {block!r}"
        event, data = lines
        assert event.startswith("event: "), block
        assert data.startswith("data: "), block
        frames.append((number, event[len("event: ") :], json.loads(data[len("data: ") :])))
    return frames


def numbered_tokens(frames: list[tuple[int | None, str, Any]]) -> str:
    """The answer text of frames from `parse_numbered`."""
    return "".join(data["token"] for _, name, data in frames if name == "token")


def tokens_of(frames: list[tuple[str, Any]]) -> str:
    return "".join(data["token"] for name, data in frames if name == "token")


def thinking_of(frames: list[tuple[str, Any]]) -> str:
    return "".join(data["thinking"] for name, data in frames if name == "thinking")


def streamed(
    server_url: str, chatflow_id: str, body: dict[str, Any], timeout_s: float = 30
) -> list[tuple[str, Any]]:
    """A streamed prediction's frames, after checking it answered 200 and that its frames
    come in the protocol's order (`check_order`)."""
    response = requests.post(
        f"{server_url}/api/v1/predictions/{chatflow_id}",
        json={**body, "streaming": True},
        timeout=timeout_s,
    )
    assert response.status_code == 200, response.text
    frames = parse_frames(response.content)
    check_order(frames)
    return frames


def check_order(frames: list[tuple[str, Any]]) -> None:
    """start first, end last and once, metadata after all tokens, error followed by end."""
    names = [name for name, _ in frames]
    assert names[0] == "start" and names.count("start") == 1, names
    assert names[-1] == "end" and names.count("end") == 1, names
    if "error" in names:
        assert names[-2] == "error" and names.count("error") == 1, names
        assert "metadata" not in names, names
    else:
        assert names[-2] == "metadata" and names.count("metadata") == 1, names
    for name, data in frames:
        if name != "token":
            assert not (isinstance(data, dict) and "token" in data), (name, data)
