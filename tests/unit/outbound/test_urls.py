"""Allow-lists compared on the URL the client will request: scheme, IDNA host, port,
path on segment boundaries after decoding and dot-segment removal."""

from __future__ import annotations

import pytest

from tailwinds.outbound.addresses import Refused
from tailwinds.outbound.urls import (
    AllowList,
    allow_list_problems,
    normalised_path,
    parse_target,
)

# (allow-list, URL, admitted)
TABLE = [
    (["http://local"], "http://local/x", True),
    (["http://local"], "http://localhost/x", False),
    (["http://local"], "http://local.evil.io/x", False),
    (["https://api.example.com/"], "https://api.example.com.evil.io/", False),
    (["https://api.example.com/"], "https://API.Example.COM:443/v1", True),
    (["https://api.example.com/"], "https://api.example.com:8443/v1", False),
    (["https://api.example.com/"], "http://api.example.com/v1", False),
    (["https://api.example.com:8443/"], "https://api.example.com:8443/v1", True),
    (["http://h/public/"], "http://h/public/doc", True),
    (["http://h/public/"], "http://h/public", True),
    (["http://h/public/"], "http://h/public/../private/key", False),
    (["http://h/public/"], "http://h/public/%2e%2e/private", False),
    (["http://h/public/"], "http://h/public%2F..%2Fprivate", False),
    (["http://h/public/"], "http://h/public/a%2F..%2F..%2Fprivate", False),
    (["http://h/public/"], "http://h/./public/./doc", True),
    (["http://h/public"], "http://h/publicity", False),
    (["http://h/public"], "http://h/public/x", True),
    (["https://*.example.com/"], "https://a.b.example.com/", True),
    (["https://*.example.com/"], "https://example.com/", False),
    (["https://*.example.com/"], "https://badexample.com/", False),
    (["http://bücher.de/"], "http://xn--bcher-kva.de./x", True),
    (["http://xn--bcher-kva.de/"], "http://BÜCHER.de/x", True),
    (["http://", "https://"], "https://anything.example/x", True),
    (["http://"], "https://anything.example/x", False),
]


@pytest.mark.parametrize(("allow", "url", "admitted"), TABLE)
def test_allow_list_table(allow: list[str], url: str, admitted: bool) -> None:
    target = parse_target(url)
    if admitted:
        AllowList(allow).check(target)
    else:
        with pytest.raises(Refused, match="allow-list"):
            AllowList(allow).check(target)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://\uff11\uff12\uff17.\uff10.\uff10.\uff11:8/", "127.0.0.1"),
        ("http://127\u30020\u30020\u30021/", "127.0.0.1"),
        ("http://[::FFFF:127.0.0.1]/", "::ffff:7f00:1"),
        ("http://Example.COM./", "example.com"),
    ],
)
def test_targets_are_what_the_client_connects_to(url: str, host: str) -> None:
    assert parse_target(url).host == host


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/", "file:///etc/passwd", "http://user:pw@example.com/", "/relative"],
)
def test_targets_refused(url: str) -> None:
    with pytest.raises(Refused):
        parse_target(url)


def test_normalised_path() -> None:
    assert normalised_path("/a/b/../c/./d") == "/a/c/d"
    assert normalised_path("/../../x") == "/x"
    assert normalised_path("/a/b/..") == "/a/"
    assert normalised_path("") == "/"


def test_bad_entries_are_named() -> None:
    problems = allow_list_problems(
        ["https://ok.example/", "ftp://x/", "https://a.example/?q=1", "https://a*b.example/"]
    )
    assert [n for n, _ in problems] == [1, 2, 3]
