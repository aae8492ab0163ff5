"""`Host` parsing and same-origin checks, as the Host and cross-site middlewares use them."""

from __future__ import annotations

import pytest

from tailwinds.server.headers import same_origin, split_host


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("localhost", ("localhost", None)),
        ("LocalHost:3000", ("localhost", 3000)),
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("[::1]:3000", ("[::1]", 3000)),
        ("[::1]", ("[::1]", None)),
        ("example.com.", ("example.com", None)),
        ("example.com:abc", ("example.com", -1)),
        ("example.com:99999999", ("example.com", -1)),
    ],
)
def test_split_host(host: str, expected: tuple[str, int | None]) -> None:
    assert split_host(host) == expected


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        (b"http://localhost:3000", b"localhost:3000", True),
        (b"http://127.0.0.1:3000", b"127.0.0.1:3000", True),
        (b"https://tw.example.com", b"tw.example.com", True),  # behind a TLS proxy
        (b"https://tw.example.com", b"tw.example.com:443", True),
        (b"http://tw.example.com", b"tw.example.com:80", True),
        (b"http://[::1]:3000", b"[::1]:3000", True),
        (b"http://localhost:3001", b"localhost:3000", False),
        (b"http://evil.example:3000", b"127.0.0.1:3000", False),
        (b"http://127.0.0.1:3000", b"evil.example:3000", False),
        (b"https://tw.example.com", b"tw.example.com:80", False),
        (b"null", b"localhost:3000", False),
        (b"file://", b"localhost", False),
        (b"http://localhost:3000", None, False),
        (b"chrome-extension://abc", b"abc", False),
    ],
)
def test_same_origin(origin: bytes, host: bytes | None, same: bool) -> None:
    assert same_origin(origin, host) is same
