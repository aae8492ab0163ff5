"""Replay a model server's recorded HTTP answer (status line, head and body) through the
real HTTP client's parser (`tailwinds.wire`, httptools), in-process: no socket, no
server. The bytes reach the connection in the reads a test chooses, one read per turn of
the event loop, so the head, the chunked framing and the body are each cut wherever a
network could cut them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson

from tailwinds.wire import WireClient, WireResponse
from tailwinds.wire.client import _Connection

TRANSCRIPTS = Path(__file__).parents[2] / "fixtures" / "transcripts"


def http_answer(text: bytes, chunk_size: int = 7) -> bytes:
    """A fixture as the bytes a server sends: its head lines (LF in the file) joined by
    CRLF, then its body after the first blank line. The length is counted here (files stay
    editable): Content-Length is added unless the head says `Transfer-Encoding: chunked`,
    which frames the body in `chunk_size` pieces, or `Connection: close`, where the body
    ends with the connection, or the file gives its own (a body cut short)."""
    head, _, body = text.partition(b"\n\n")
    body = body.removesuffix(b"\n")
    lines = head.split(b"\n")
    lowered = head.lower()
    if b"transfer-encoding: chunked" in lowered:
        pieces = [body[i : i + chunk_size] for i in range(0, len(body), chunk_size)]
        body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    elif b"connection: close" not in lowered and b"content-length:" not in lowered:
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def http_transcript(name: str) -> bytes:
    return http_answer((TRANSCRIPTS / name).read_bytes())


class _Transport:
    """What the connection calls on its transport: the feeder waits while reading is
    paused and stops once the client closed the connection."""

    def __init__(self) -> None:
        self.reading = asyncio.Event()
        self.reading.set()
        self.closed = False

    def pause_reading(self) -> None:
        self.reading.clear()

    def resume_reading(self) -> None:
        self.reading.set()

    def close(self) -> None:
        self.closed = True
        self.reading.set()

    def write(self, data: bytes) -> None:
        pass


class ReplayWire:
    """Stands for `WireClient`: each `post` answers with the next list of reads in
    `answers` (the last one again when they run out), parsed by a real `WireResponse`."""

    def __init__(self, answers: list[list[bytes]]) -> None:
        self.answers = answers
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self.closed_early = 0  # connections the client closed before the answer ended
        self._client = WireClient()
        self._feeders: list[asyncio.Task[None]] = []

    async def post(
        self, url: str, headers: dict[str, str], body: bytes, connect_timeout_s: float
    ) -> WireResponse:
        self.requests.append((url, headers, orjson.loads(body)))
        reads = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        conn = _Connection(self._client, ("http", "model.test", 80), asyncio.get_running_loop())
        transport = _Transport()
        conn.connection_made(transport)  # type: ignore[arg-type]
        response = conn.response = WireResponse(conn)
        self._feeders.append(asyncio.create_task(self._feed(conn, transport, reads)))
        await response._head
        return response

    async def _feed(self, conn: _Connection, transport: _Transport, reads: list[bytes]) -> None:
        for data in reads:
            await transport.reading.wait()
            if transport.closed:
                self.closed_early += 1
                return
            conn.data_received(data)
            await asyncio.sleep(0)
        if not transport.closed:
            conn.connection_lost(None)  # the server is done: close-delimited bodies end here

    async def drain(self) -> None:
        """Wait for every feeder: none may be left holding a connection."""
        await asyncio.gather(*self._feeders)
