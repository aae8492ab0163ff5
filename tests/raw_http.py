"""Requests written byte by byte over a plain socket, for what `requests` will not send
(chunked bodies of our choosing, endless heads, half-open requests), loopback only."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit


def connect(url: str, timeout_s: float = 10) -> socket.socket:
    parts = urlsplit(url)
    assert parts.hostname in ("127.0.0.1", "localhost")
    return socket.create_connection((parts.hostname, parts.port), timeout=timeout_s)


def read_answer(sock: socket.socket) -> tuple[int, bytes]:
    """Status and raw rest (headers and body) of one answer; reads until the body's end
    (Content-Length) or until the server closes."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while length is not None and len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, head + b"\r\n\r\n" + body


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed the connection (reads to the end)."""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def send_unfinished(
    url: str, path: str, headers: str, body: list[bytes], method: str = "POST"
) -> tuple[int, bytes]:
    """A request whose body never ends: `body` is sent (each part a chunk when `headers`
    says `Transfer-Encoding: chunked`, as is otherwise), then nothing more. An answer
    proves the server decided without waiting for the rest (else this times out)."""
    sock = connect(url, 20)
    host = urlsplit(url).netloc
    chunked = "transfer-encoding: chunked" in headers.lower()
    try:
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n{headers}\r\n".encode())
        for part in body:
            sock.sendall(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
        return read_answer(sock)
    finally:
        sock.close()
