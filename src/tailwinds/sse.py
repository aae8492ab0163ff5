"""Server-sent events decoding from raw bytes. Imports nothing of ours.

Lines end at CR, LF or CRLF only, as the SSE grammar says. Never split with
`str.splitlines`: it also breaks at U+2028, U+0085 and friends, which orjson leaves raw
inside JSON strings, and so would cut a `data:` line in two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_LINE_BYTES = 8 * 1024 * 1024
# all the data lines of one event together
MAX_EVENT_BYTES = 8 * 1024 * 1024
_BLANK_RUNS = re.compile(rb"\n{3,}")
_SCAN_BLANK_RUNS_FROM = 4096  # bytes
_LONG_LINE_BYTES = 64 * 1024


class SSEProtocolError(ValueError):
    """The byte stream is not a valid event stream."""


@dataclass(slots=True)
class SSEMessage:
    event: str
    data: str
    id: str | None = None


class SSEDecoder:
    """Feed it chunks as they arrive, cut anywhere; it returns the complete events.

    Lines and events are bounded (`MAX_LINE_BYTES`, `MAX_EVENT_BYTES`): past them,
    `SSEProtocolError`."""

    __slots__ = (
        "_buf",
        "_data",
        "_event",
        "_id",
        "_long",
        "_long_size",
        "_skip_lf",
        "_started",
        "error",
    )

    def __init__(self) -> None:
        # `feed_data` only: the failure a server reported outside the data of its events,
        # as undecoded bytes: the data of an `event: error`, or the value of an `error:`
        # field, which the SSE grammar does not have but llama.cpp's server sent in 2025
        # (ggml-org/llama.cpp#16104) and decoders that skip unknown fields lose
        self.error: bytes | None = None
        self._buf = b""
        # a line longer than _LONG_LINE_BYTES still open: its pieces, and their size
        self._long: list[bytes] | None = None
        self._long_size = 0
        self._skip_lf = False
        self._started = False
        self._event = ""
        self._data: list[bytes] = []
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[SSEMessage]:
        names: list[tuple[str, str | None]] = []
        datas = self._feed(chunk, names)
        try:
            return [
                SSEMessage(event or "message", data.decode(), event_id)
                for data, (event, event_id) in zip(datas, names, strict=True)
            ]
        except UnicodeDecodeError as exc:
            raise SSEProtocolError(f"invalid UTF-8 in event stream: {exc}") from exc

    def feed_data(self, chunk: bytes) -> list[bytes]:
        """Only the data of each complete event, as undecoded bytes: all that a model
        server's stream needs, without a message object or a UTF-8 decode per event (the
        JSON parser checks the encoding)."""
        return self._feed(chunk, None)

    def _feed(self, chunk: bytes, names: list[tuple[str, str | None]] | None) -> list[bytes]:
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if b"\r" in chunk:
            # a CR at the end may be the first half of a CRLF cut by the chunking
            self._skip_lf = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if self._long is not None:
            # a long line: its pieces are kept apart until it ends, so it is copied once,
            # not once per read
            self._long.append(chunk)
            self._long_size += len(chunk)
            if b"\n" not in chunk:
                if self._long_size > MAX_LINE_BYTES:
                    raise SSEProtocolError(f"line longer than {MAX_LINE_BYTES} bytes")
                return []
            buf = b"".join(self._long)
            self._long = None
        else:
            buf = self._buf + chunk if self._buf else chunk
        if not self._started and buf:
            if len(buf) < 3 and b"\xef\xbb\xbf".startswith(buf):
                self._buf = buf
                return []
            self._started = True
            if buf.startswith(b"\xef\xbb\xbf"):
                buf = buf[3:]
        if len(buf) > _SCAN_BLANK_RUNS_FROM and b"\n\n\n" in buf:
            # blank lines after the first dispatch nothing: one is kept, so a flood of them
            # (a decompression bomb is made of them) is not a Python loop per line; only
            # in big reads, where the search is cheap for the events it covers
            buf = _BLANK_RUNS.sub(b"\n\n", buf)
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        if len(self._buf) > _LONG_LINE_BYTES:
            if len(self._buf) > MAX_LINE_BYTES:
                raise SSEProtocolError(f"line longer than {MAX_LINE_BYTES} bytes")
            self._long = [self._buf]
            self._long_size = len(self._buf)
            self._buf = b""
        out: list[bytes] = []
        data = self._data
        for line in lines:
            if line[:6] == b"data: ":  # the common line first, without the general parse
                data.append(line[6:])
            elif line:
                self._field(line)
            elif data:
                payload = data[0] if len(data) == 1 else b"\n".join(data)
                if names is not None:
                    names.append((self._event, self._id))
                    out.append(payload)
                elif self._event == "error":
                    self.error = payload
                else:
                    out.append(payload)
                data.clear()
                self._event = ""
            else:
                self._event = ""
        if data and sum(map(len, data)) > MAX_EVENT_BYTES:  # an event open across reads
            raise SSEProtocolError(f"event longer than {MAX_EVENT_BYTES} bytes")
        return out

    def end(self) -> list[SSEMessage]:
        """At end of stream: the event still open (its last line, or only the blank line
        that dispatches it, never came), as if they had. The SSE standard discards it
        (WHATWG HTML, "Parsing an event stream": "Once the end of the file is reached, any
        pending data must be discarded"); servers that leave out the last blank line are
        common, so the caller gets it and decides whether it is whole."""
        return self.feed(b"\n\n")

    def end_data(self) -> list[bytes]:
        """`end`, as `feed_data` gives events: the data only."""
        return self.feed_data(b"\n\n")

    def close(self) -> None:
        """Call at end of stream: an event with no closing blank line is incomplete."""
        if self._buf or self._data or self._long:
            raise SSEProtocolError("stream ended in the middle of an event")

    def _field(self, line: bytes) -> None:
        name, sep, value = line.partition(b":")
        if not name and sep:
            return  # a comment line, such as a keep-alive
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
            return
        try:
            text = value.decode()
        except UnicodeDecodeError as exc:
            raise SSEProtocolError(f"invalid UTF-8 in event stream: {exc}") from exc
        if name == b"event":
            self._event = text
        elif name == b"id" and "\0" not in text:
            self._id = text
        elif name == b"error" and value:
            self.error = value
