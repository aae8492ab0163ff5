"""An OpenAI-compatible mock model server for load: raw asyncio, no framework, hundreds of
concurrent streams on keep-alive connections.

The model name sets the stream: `bench:<tokens>:<interval_ms>`. Each token's text is the
`time.monotonic_ns()` at which it was written (then a space), so a client on the same
machine can tell how long the server in between held it.

    python bench/mock_llm.py --port 9100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/event-stream; charset=utf-8\r\n"
    b"Cache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
CHUNK_HEAD = (
    b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","model":"bench",'
    b'"choices":[{"index":0,"delta":{"content":"'
)
CHUNK_TAIL = b'"},"finish_reason":null}]}\n\n'
FINISH = (
    b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","model":"bench",'
    b'"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
)
DONE = b"data: [DONE]\n\n"


def chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def read_request(reader: asyncio.StreamReader) -> dict[str, object] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b"{}"
    return json.loads(body)


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            request = await read_request(reader)
            if request is None:
                return
            _, count, interval_ms = str(request.get("model", "bench:64:0")).split(":")
            interval = int(interval_ms) / 1000
            writer.write(HEAD)
            for i in range(int(count)):
                if interval and i:
                    await asyncio.sleep(interval)
                writer.write(chunked(CHUNK_HEAD + b"%d " % time.monotonic_ns() + CHUNK_TAIL))
                if not interval:
                    await writer.drain()
            writer.write(chunked(FINISH) + chunked(DONE) + b"0\r\n\r\n")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def serve(host: str, port: int) -> None:
    server = await asyncio.start_server(handle, host, port, backlog=4096)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
