"""The models' HTTP/1.1 client (`tailwinds.wire`) against a raw TCP server that writes
the answers byte for byte: framings, compression, the pool, failures, time-outs and
back-pressure, on both event loops the server runs on."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import gc
import gzip
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tailwinds.wire import ConnectionClosed, WireClient, WireError, WireResponse

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    if request.param == "uvloop":
        return uvloop.run
    return asyncio.run


class Server:
    """Accepts connections and hands each to `handler`; counts them and keeps the
    requests it read."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.closed = asyncio.Event()

    async def __aenter__(self) -> Server:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1/chat?x=1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self.closed.set()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        request = head + await reader.readexactly(length)
        self.requests.append(request)
        return request


def chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


async def read_body(client: WireClient, url: str, body: bytes = b"{}") -> tuple[int, bytes]:
    resp = await client.post(url, {"Content-Type": "application/json"}, body, 5)
    try:
        return resp.status, await resp.read_all(1 << 20)
    finally:
        resp.close()


def test_request_bytes_and_framings(run: Callable[..., Any]) -> None:
    answers = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(b"da", b"ta: 1\n\n"),
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
        % (len(gzip.compress(b"squeezed")), gzip.compress(b"squeezed")),
    ]

    async def main() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            for answer in answers:
                await server.read_request(reader)
                writer.write(answer)
                await writer.drain()
            await reader.read()

        async with Server(handler) as server:
            client = WireClient()
            assert await read_body(client, server.url, b'{"a":1}') == (200, b"hello")
            assert await read_body(client, server.url) == (200, b"data: 1\n\n")
            assert await read_body(client, server.url) == (200, b"squeezed")
            client.close()
        # one connection, kept alive across the three
        assert server.connections == 1
        host = server.url.split("/")[2]
        assert server.requests[0] == (
            b"POST /v1/chat?x=1 HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
            b'Content-Length: 7\r\n\r\n{"a":1}' % host.encode()
        )

    run(main())


def test_reading_a_body_up_to_a_limit(run: Callable[..., Any]) -> None:
    async def main() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                await server.read_request(reader)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel")
                await writer.drain()
                writer.write(b"lo")

        async with Server(handler) as server:
            client = WireClient()
            for limit, expected in ((5, b"hello"), (9, b"hello"), (3, b"hel")):
                resp = await client.post(server.url, {}, b"{}", 5)
                assert await resp.read_at_most(limit) == expected
                resp.close()
            resp = await client.post(server.url, {}, b"{}", 5)
            assert await resp.read_all(5) == b"hello"
            resp.close()
            resp = await client.post(server.url, {}, b"{}", 5)
            with pytest.raises(WireError, match="longer than 4 bytes"):
                await resp.read_all(4)
            resp.close()

    run(main())


def test_a_body_that_ends_with_the_connection(run: Callable[..., Any]) -> None:
    async def main() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil ")
            await writer.drain()
            writer.write(b"the end")

        async with Server(handler) as server:
            client = WireClient()
            assert await read_body(client, server.url) == (200, b"until the end")
            assert await read_body(client, server.url) == (200, b"until the end")
            assert server.connections == 2  # not reused: the server closed it

    run(main())


def test_cut_answers_and_bad_http_are_errors(run: Callable[..., Any]) -> None:
    async def main() -> None:
        replies = iter(
            [
                b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nonly this",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
                b"this is not http\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 1\r\n\r\nx",
            ]
        )

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(next(replies))
            await writer.drain()

        async with Server(handler) as server:
            client = WireClient()
            for expected in (ConnectionClosed, ConnectionClosed, WireError):
                with pytest.raises(expected):
                    await read_body(client, server.url)
            with pytest.raises(WireError, match="'br'"):
                await read_body(client, server.url)

    run(main())


async def seen_closed(client: WireClient) -> None:
    """Until the client has noticed that the server closed its pooled connections."""
    # the client's own flag: no event to wait on
    while any(not c.closed for idle in client._idle.values() for c in idle):  # noqa: ASYNC110
        await asyncio.sleep(0)


def test_a_pooled_connection_the_server_dropped_is_replaced(run: Callable[..., Any]) -> None:
    """Dropped while idle, as a keep-alive timeout does, and seen closed before the next
    request was written: nothing was sent on it, the request goes on a new connection."""

    async def main() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
            if server.connections == 1:
                return  # closed once idle
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

        async with Server(handler) as server:
            client = WireClient()
            assert await read_body(client, server.url) == (200, b"ok")
            await seen_closed(client)
            assert await read_body(client, server.url) == (200, b"ok")
            assert server.connections == 2

    run(main())


def test_a_post_that_went_out_is_never_sent_again(run: Callable[..., Any]) -> None:
    """A reused connection that drops after the request was written: the server may have
    read it (here it did), so the client raises instead of sending the POST again."""

    async def main() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
            await server.read_request(reader)  # read, acted on, then the server dies

        async with Server(handler) as server:
            client = WireClient()
            assert await read_body(client, server.url) == (200, b"ok")
            with pytest.raises(ConnectionClosed) as caught:
                await read_body(client, server.url)
            assert caught.value.maybe_processed
            assert len(server.requests) == 2 and server.connections == 1

    run(main())


def test_an_unread_answer_closes_its_connection(run: Callable[..., Any]) -> None:
    """How a cancelled run stops its model: the connection goes, it is not pooled."""

    async def main() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            while True:
                writer.write(chunked(b"token")[:-5])
                await writer.drain()
                await asyncio.sleep(0.01)

        async with Server(handler) as server:
            client = WireClient()
            resp = await client.post(server.url, {}, b"{}", 5)
            assert (await resp.read()).startswith(b"token")
            reading = asyncio.ensure_future(resp.read_all(1 << 30))
            await asyncio.sleep(0.05)
            reading.cancel()
            resp.close()
            await asyncio.wait_for(server.closed.wait(), 5)

    run(main())


def test_idle_timeout_and_connect_timeout(run: Callable[..., Any]) -> None:
    async def main() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for _ in range(5):  # steady tokens, each inside the idle timeout
                writer.write(b"1\r\nx\r\n")
                await writer.drain()
                await asyncio.sleep(0.1)
            await asyncio.sleep(10)

        async with Server(handler) as server:
            resp = await WireClient().post(server.url, {}, b"{}", 5)
            resp.set_idle_timeout(0.3)
            got = b""
            with pytest.raises(TimeoutError, match=r"nothing for 0\.3 s"):
                while chunk := await resp.read():
                    got += chunk
            assert got == b"xxxxx"
        # a port nobody listens on: refused (an OSError), not a hang
        with pytest.raises(OSError):
            await WireClient().post("http://127.0.0.1:9/", {}, b"", 2)

    run(main())


def test_connect_timeout(run: Callable[..., Any]) -> None:
    # a listener whose accept queue is full: Linux drops further SYNs, so a connect to it
    # neither succeeds nor is refused, the way a firewalled host behaves
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)

    async def main() -> None:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await WireClient().post(f"http://127.0.0.1:{port}/", {}, b"", 0.5)
        assert time.monotonic() - started < 10  # the timeout, not the kernel's SYN retries

    try:
        run(main())
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_back_pressure_stops_reading_until_the_reader_catches_up(
    run: Callable[..., Any],
) -> None:
    size = 4 * 1024 * 1024

    async def main() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
            writer.write(b"x" * size)
            await writer.drain()

        async with Server(handler) as server:
            resp = await WireClient().post(server.url, {}, b"{}", 5)
            await asyncio.sleep(0.3)  # the reader lags: at most the buffer's worth comes in
            assert sum(map(len, resp.chunks)) < size
            total = 0
            while chunk := await resp.read():
                total += len(chunk)
            assert total == size

    run(main())


def test_headers_that_would_split_the_request_are_refused(run: Callable[..., Any]) -> None:
    async def main() -> None:
        client = WireClient()
        with pytest.raises(WireError, match="line break"):
            await client.post("http://127.0.0.1:9/", {"Authorization": "Bearer k\r\nX: y"}, b"", 1)
        with pytest.raises(WireError, match="Latin-1"):
            await client.post("http://127.0.0.1:9/", {"Authorization": "Bearer ключ"}, b"", 1)
        with pytest.raises(WireError, match="not an http"):
            await client.post("ftp://127.0.0.1/", {}, b"", 1)

    run(main())


def test_read_answers_leave_nothing_for_the_collector(run: Callable[..., Any]) -> None:
    """Each answer is freed by reference counting alone: with thousands of streams, cycles
    would wait for the collector and hold their memory meanwhile."""

    async def main() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            for _ in range(5):
                await server.read_request(reader)
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                writer.write(chunked(b"data: x\n\n"))
                await writer.drain()

        async with Server(handler) as server:
            client = WireClient()
            gc.collect()
            gc.disable()
            try:
                for _ in range(5):
                    assert await read_body(client, server.url) == (200, b"data: x\n\n")
                left = [o for o in gc.get_objects() if type(o) is WireResponse]
            finally:
                gc.enable()
            assert left == []

    run(main())


def self_signed(directory: Path, host: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_tls_checks_the_certificate_and_the_name(run: Callable[..., Any], tmp_path: Path) -> None:
    cert_file, key_file = self_signed(tmp_path, "localhost")
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert_file, key_file)
    trusting = ssl.create_default_context(cafile=str(cert_file))

    async def main() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret")
            await writer.drain()

        server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=served)
        port = server.sockets[0].getsockname()[1]
        try:
            body = await read_body(WireClient(trusting), f"https://localhost:{port}/v1")
            assert body == (200, b"secret")
            # the system's CAs do not know this certificate: refused, not read
            with pytest.raises(ssl.SSLCertVerificationError):
                await read_body(WireClient(), f"https://localhost:{port}/v1")
            # a trusted certificate for another name: refused for the name (the certificate
            # is for "localhost", the URL names 127.0.0.1)
            with pytest.raises(ssl.SSLCertVerificationError, match="IP address mismatch"):
                await read_body(WireClient(trusting), f"https://127.0.0.1:{port}/v1")
        finally:
            server.close()

    run(main())
