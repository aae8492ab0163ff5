"""The SDK's streams end at `end`, whatever the connection does next (a proxy may hold it
open, or close it late): the sync and async clients, a resumed stream, and the
`tailwinds predict` command, against a stand-in server that never closes."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from click.testing import CliRunner

from tailwinds.cli import main
from tailwinds.client import AsyncTailwinds, End, Metadata, Start, Tailwinds, Timeouts, Token
from tailwinds.engine.events import EndEvent, MetadataEvent, StartEvent, TokenEvent
from tailwinds.transport.frames import numbered

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
START = StartEvent("c1", "m1")
METADATA = MetadataEvent({"chatId": "c1", "messageId": "m1", "question": "q", "sessionId": "c1"})
WHOLE = [numbered(1, START), numbered(2, TokenEvent("Hel")), numbered(3, TokenEvent("lo"))]
WHOLE += [numbered(4, METADATA), numbered(5, EndEvent())]
# a client that waits for the close instead waits this long, then fails
IDLE_S = 4.0


def chunked(frames: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(frame), frame) for frame in frames)


@contextmanager
def stand_in(post: bytes, get: bytes = b"", cut_post: bool = False) -> Iterator[str]:
    """Answers a POST with `post` and a GET with `get`, then holds the connection open
    (or, with `cut_post`, closes it after the POST's bytes: a dropped stream)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.1)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(65536)
            if request.startswith(b"POST"):
                conn.sendall(post)
                if cut_post:
                    conn.close()
                    continue
            else:
                conn.sendall(get)
            held.append(conn)
        for conn in held:
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


TIMEOUTS = Timeouts(connect_s=2, first_event_s=IDLE_S, idle_s=IDLE_S)


def test_the_sync_client_returns_at_end() -> None:
    with stand_in(HEAD + chunked(WHOLE)) as url, Tailwinds(url, timeout=TIMEOUTS) as client:
        started = time.monotonic()
        with client.stream("flow", "q") as stream:
            events = list(stream)
        with client.stream("flow", "q") as stream:
            text = stream.text()
            assert list(stream) == []  # over: a second loop has nothing left, and waits not
            assert stream.text() == "Hello"
        elapsed = time.monotonic() - started
    assert [type(e) for e in events] == [Start, Token, Token, Metadata, End]
    assert text == "Hello"
    assert elapsed < IDLE_S, elapsed


def test_the_async_client_returns_at_end() -> None:
    async def run() -> tuple[list[type], str, float]:
        async with AsyncTailwinds(url, timeout=TIMEOUTS) as client:
            started = time.monotonic()
            async with client.stream("flow", "q") as stream:
                kinds = [type(event) async for event in stream]
            async with client.stream("flow", "q") as stream:
                text = await stream.text()
                assert [event async for event in stream] == []
            return kinds, text, time.monotonic() - started

    with stand_in(HEAD + chunked(WHOLE)) as url:
        kinds, text, elapsed = asyncio.run(run())
    assert kinds == [Start, Token, Token, Metadata, End]
    assert text == "Hello"
    assert elapsed < IDLE_S, elapsed


def test_a_resumed_stream_returns_at_end_too() -> None:
    # the first connection drops after the first token; the resumed one stays open
    first, rest = WHOLE[:2], WHOLE[2:]
    with stand_in(HEAD + chunked(first), HEAD + chunked(rest), cut_post=True) as url:
        started = time.monotonic()
        with Tailwinds(url, timeout=TIMEOUTS) as client, client.stream("flow", "q") as stream:
            text = stream.text()
        assert text == "Hello"

        async def run() -> str:
            async with (
                AsyncTailwinds(url, timeout=TIMEOUTS) as client,
                client.stream("flow", "q") as stream,
            ):
                return await stream.text()

        assert asyncio.run(run()) == "Hello"
        assert time.monotonic() - started < 2 * IDLE_S


def test_the_predict_command_returns_at_end() -> None:
    with stand_in(HEAD + chunked(WHOLE)) as url:
        started = time.monotonic()
        result = CliRunner().invoke(main, ["predict", "flow", "q", "--url", url])
        elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert "Hello" in result.output
    # the SDK's default idle timeout is a minute: this is the end, not a timeout
    assert elapsed < IDLE_S, elapsed
