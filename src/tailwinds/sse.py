"""Server-sent events decoding from raw bytes. Imports nothing of ours.

Lines end at CR, LF or CRLF only, as the SSE grammar says. Never split with
`str.splitlines`: it also breaks at U+2028, U+0085 and friends, which orjson leaves raw
inside JSON strings, and so would cut a `data:` line in two.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_LINE_BYTES = 8 * 1024 * 1024


class SSEProtocolError(ValueError):
    """The byte stream is not a valid event stream."""


@dataclass(slots=True)
class SSEMessage:
    event: str
    data: str
    id: str | None = None


class SSEDecoder:
    """Feed it chunks as they arrive, cut anywhere; it returns the complete events."""

    __slots__ = ("_buf", "_data", "_event", "_id", "_skip_lf", "_started")

    def __init__(self) -> None:
        self._buf = b""
        self._skip_lf = False
        self._started = False
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[SSEMessage]:
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if b"\r" in chunk:
            # a CR at the end may be the first half of a CRLF cut by the chunking
            self._skip_lf = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buf = self._buf + chunk if self._buf else chunk
        if not self._started and buf:
            if len(buf) < 3 and b"\xef\xbb\xbf".startswith(buf):
                self._buf = buf
                return []
            self._started = True
            if buf.startswith(b"\xef\xbb\xbf"):
                buf = buf[3:]
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        if len(self._buf) > MAX_LINE_BYTES:
            raise SSEProtocolError(f"line longer than {MAX_LINE_BYTES} bytes")
        out: list[SSEMessage] = []
        for line in lines:
            self._line(line, out)
        return out

    def close(self) -> None:
        """Call at end of stream: an event with no closing blank line is incomplete."""
        if self._buf or self._data:
            raise SSEProtocolError("stream ended in the middle of an event")

    def _line(self, line: bytes, out: list[SSEMessage]) -> None:
        if not line:
            if self._data:
                out.append(SSEMessage(self._event or "message", "\n".join(self._data), self._id))
                self._data = []
            self._event = ""
            return
        try:
            text = line.decode()
        except UnicodeDecodeError as exc:
            raise SSEProtocolError(f"invalid UTF-8 in event stream: {exc}") from exc
        name, sep, value = text.partition(":")
        if not name and sep:
            return  # a comment line, such as a keep-alive
        if value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
